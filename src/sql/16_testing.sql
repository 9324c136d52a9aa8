--------------------------------------------------------------------------
-- Testing handlers: wait for capture and delivery, invoke a function
--------------------------------------------------------------------------

CREATE FUNCTION streams._capture_mark() RETURNS pg_lsn
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'pgs_capture_mark';
COMMENT ON FUNCTION streams._capture_mark() IS
    'Internal: writes and flushes a WAL mark after every change committed so far; returns its end.';
CREATE FUNCTION streams._invoke_sql(caller oid, handler regprocedure, timeout_seconds integer, event jsonb,
                                    search_path text)
    RETURNS jsonb LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'pgs_invoke_sql';
COMMENT ON FUNCTION streams._invoke_sql(oid, regprocedure, integer, jsonb, text) IS
    'Internal: calls a SQL handler once as the given role with the given search_path, as a mapping would.';
CREATE FUNCTION streams._invoke_http(function_name text, owner oid, event jsonb)
    RETURNS jsonb LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'pgs_invoke_http';
COMMENT ON FUNCTION streams._invoke_http(text, oid, jsonb) IS
    'Internal: posts an event once to an HTTP function, as a mapping would.';
REVOKE ALL ON FUNCTION streams._capture_mark(), streams._invoke_sql(oid, regprocedure, integer, jsonb, text),
    streams._invoke_http(text, oid, jsonb) FROM PUBLIC;

-- The waits poll what the workers commit: in a transaction that has written
-- (whose locks a handler may wait for, and whose changes nobody sees yet) or
-- under a snapshot that never moves, they could only time out.
CREATE FUNCTION streams._check_wait(fn text, needs_fresh_snapshots boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        PERFORM streams._raise('25001', 'InvalidRequestContentException',
            format('streams.%s waits for committed changes and cannot be called in a transaction that has written', fn),
            'Commit first: call it in a transaction of its own (pg_regress runs every statement in one).');
    END IF;
    IF needs_fresh_snapshots AND current_setting('transaction_isolation') <> 'read committed' THEN
        PERFORM streams._raise('25001', 'InvalidRequestContentException',
            format('streams.%s needs READ COMMITTED: under %s its snapshot would never see delivery progress',
                   fn, upper(current_setting('transaction_isolation'))),
            'Call it outside an explicit REPEATABLE READ or SERIALIZABLE transaction.');
    END IF;
END $$;

CREATE FUNCTION streams._check_timeout_arg(fn text, timeout interval) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF timeout IS NULL OR timeout < interval '0' THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException',
            format('streams.%s: timeout must be a non-negative interval, not %s', fn, coalesce(timeout::text, 'null')));
    END IF;
END $$;

CREATE FUNCTION streams.wait_for_capture(timeout interval DEFAULT '30s') RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + timeout;
    slot     text := 'pg_streams_' || (SELECT d.oid FROM pg_database d WHERE d.datname = current_database());
    mark     pg_lsn;
    at       pg_lsn;
    pause    float8 := 0.002;
BEGIN
    PERFORM streams._check_timeout_arg('wait_for_capture', timeout);
    PERFORM streams._check_wait('wait_for_capture', false);
    mark := streams._capture_mark();
    LOOP
        SELECT s.confirmed_flush_lsn INTO at FROM pg_replication_slots s WHERE s.slot_name = slot;
        EXIT WHEN at >= mark;
        IF clock_timestamp() >= deadline THEN
            PERFORM streams._raise('P0001', 'TimeoutException',
                format('streams.wait_for_capture timed out after %s: capture is at %s, the changes committed before the call end at %s',
                       timeout, coalesce(at::text, 'nothing (no capture slot)'), mark),
                'Is the capture worker of this database running (pg_stat_activity, backend_type ''pg_streams capture'')? See the server log.');
        END IF;
        PERFORM pg_sleep(pause);
        pause := least(pause * 2, 0.05);
    END LOOP;
END $$;
COMMENT ON FUNCTION streams.wait_for_capture(interval) IS
    'Returns once every change committed before the call is readable in its stream; raises P0001 (TimeoutException) after timeout.';

-- Counters of the given mappings, summed.
CREATE FUNCTION streams._delivery_counters(ids integer[]) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object(
        'Records', coalesce(sum(ms.records_delivered), 0),
        'Filtered', coalesce(sum(ms.records_filtered), 0),
        'FailedRecords', coalesce(sum(ms.records_failed), 0),
        'Invocations', coalesce(sum(ms.invocations), 0),
        'FunctionErrors', coalesce(sum(ms.function_errors), 0))
    FROM streams.mapping_shard ms WHERE ms.mapping_id = ANY (ids)
$$;

CREATE FUNCTION streams.wait_for_delivery(uuid uuid DEFAULT NULL, timeout interval DEFAULT '30s') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    caller   oid := streams._caller();
    started  timestamptz := clock_timestamp();
    deadline timestamptz := clock_timestamp() + timeout;
    m        streams.event_source_mapping;
    ids      integer[];
    t_map    integer[];
    t_shard  integer[];
    t_lsn    bigint[];
    t_idx    integer[];
    p        record;
    pause    float8 := 0.002;
BEGIN
    PERFORM streams._check_timeout_arg('wait_for_delivery', timeout);
    PERFORM streams._check_wait('wait_for_delivery', true);
    IF uuid IS NOT NULL THEN
        SELECT * INTO m FROM streams.event_source_mapping e WHERE e.uuid = wait_for_delivery.uuid;
        IF NOT FOUND OR NOT pg_has_role(caller, m.owner, 'USAGE') THEN
            PERFORM streams._raise('42704', 'ResourceNotFoundException', 'The resource you requested does not exist.',
                'wait_for_delivery waits for mappings of roles the caller is a member of.');
        END IF;
        IF NOT m.enabled THEN
            PERFORM streams._raise('55000', 'ResourceConflictException',
                format('event source mapping %s is disabled: nothing will be delivered until it is enabled', uuid));
        END IF;
        ids := ARRAY[m.mapping_id];
    ELSE
        SELECT coalesce(array_agg(e.mapping_id), '{}') INTO ids FROM streams.event_source_mapping e
        WHERE e.enabled AND pg_has_role(caller, e.owner, 'USAGE');
    END IF;

    PERFORM streams.wait_for_capture(greatest(deadline - clock_timestamp(), interval '0'));

    -- What each shard of each mapping must have passed: its stream's last
    -- record now (all that was committed before the call is in the stream).
    SELECT array_agg(ms.mapping_id), array_agg(ms.shard), array_agg(l.last_lsn), array_agg(l.last_idx)
      INTO t_map, t_shard, t_lsn, t_idx
    FROM streams.mapping_shard ms
    JOIN streams.event_source_mapping e USING (mapping_id)
    CROSS JOIN LATERAL (SELECT r.last_lsn, r.last_idx FROM streams.record_batch r
                        WHERE r.stream_id = e.stream_id AND r.shard = ms.shard
                        ORDER BY r.last_lsn DESC, r.last_idx DESC LIMIT 1) l
    WHERE ms.mapping_id = ANY (ids);

    LOOP
        -- A shard that still has a record up to its target after its
        -- checkpoint (records before an AT_TIMESTAMP start do not count).
        SELECT t.m AS mapping_id, t.s AS shard, e.uuid, e.enabled, e.last_result, ms.last_error,
               CASE WHEN ms.ck_idx < 0 THEN 'its start' ELSE streams._seq(ms.ck_lsn, ms.ck_idx) END AS at_seq, streams._seq(t.l, t.i) AS target_seq,
               coalesce(streams._shard_id(st, t.s), t.s::text) AS shard_id
          INTO p
        FROM unnest(t_map, t_shard, t_lsn, t_idx) AS t(m, s, l, i)
        JOIN streams.mapping_shard ms ON ms.mapping_id = t.m AND ms.shard = t.s
        JOIN streams.event_source_mapping e ON e.mapping_id = t.m
        LEFT JOIN streams.stream st ON st.stream_id = e.stream_id
        WHERE (ms.ck_lsn, ms.ck_idx) < (t.l, t.i)
          AND EXISTS (SELECT 1 FROM streams.record_batch r,
                             unnest(r.lsns, r.idxs, r.arrivals) AS u(lsn, idx, arrival)
                      WHERE r.stream_id = e.stream_id AND r.shard = t.s
                        AND (r.last_lsn, r.last_idx) > (ms.ck_lsn, ms.ck_idx)
                        AND (r.first_lsn, r.first_idx) <= (t.l, t.i)
                        AND (u.lsn, u.idx) > (ms.ck_lsn, ms.ck_idx) AND (u.lsn, u.idx) <= (t.l, t.i)
                        AND (e.starting_timestamp IS NULL OR u.arrival >= e.starting_timestamp))
        LIMIT 1;
        EXIT WHEN NOT FOUND;
        IF NOT p.enabled THEN
            PERFORM streams._raise('55000', 'ResourceConflictException',
                format('event source mapping %s was disabled while streams.wait_for_delivery waited for it', p.uuid));
        END IF;
        IF clock_timestamp() >= deadline THEN
            PERFORM streams._raise('P0001', 'TimeoutException',
                format('streams.wait_for_delivery timed out after %s: event source mapping %s, shard %s is at %s, not yet at %s; LastProcessingResult: %s; last_error: %s',
                       timeout, p.uuid, p.shard_id, p.at_seq, p.target_seq, p.last_result, coalesce(p.last_error, 'none')),
                'See streams.event_source_mapping_stats for its retries and next_attempt_at.');
        END IF;
        PERFORM pg_sleep(pause);
        pause := least(pause * 2, 0.05);
    END LOOP;

    RETURN streams._delivery_counters(ids) || jsonb_build_object('Mappings', cardinality(ids));
END $$;
COMMENT ON FUNCTION streams.wait_for_delivery(uuid, interval) IS
    'Returns once the mapping (NULL: every enabled mapping of roles the caller is a member of) has processed everything committed before the call, with the totals of those mappings (Records delivered, Filtered, FailedRecords, Invocations, FunctionErrors, Mappings); raises P0001 (TimeoutException) after timeout naming the shard and its last_error.';

-- invoke is called with the caller's search_path, which the handler (run
-- as the caller) gets; _invoke checks and calls.
CREATE FUNCTION streams._invoke(function_name text, event jsonb, search_path text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    caller oid := streams._caller();
    f      streams.function := streams._find_function(function_name);
BEGIN
    IF NOT pg_has_role(caller, f.owner, 'USAGE') THEN
        PERFORM streams._raise('42501', 'AccessDeniedException',
            format('must be a member of role %s, the owner of function %s, to invoke it', f.owner::regrole, f.function_name));
    END IF;
    IF event IS NULL THEN
        PERFORM streams._raise('22023', 'InvalidRequestContentException', 'event must not be null');
    END IF;
    IF f.kind = 'kafka' THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException',
            format('function %s is a Kafka topic: streams.invoke calls SQL and HTTP functions only', f.function_name));
    END IF;
    IF f.kind = 'sql' THEN
        IF streams._handler_oid(f) IS NULL THEN
            PERFORM streams._raise('42883', 'ResourceNotFoundException',
                format('handler %s of function %s does not exist', f.handler, f.function_name),
                'It was dropped or renamed, or it belongs to another role than when the function was created.');
        END IF;
        RETURN streams._invoke_sql(caller, streams._handler_oid(f), f.timeout_seconds, event, search_path);
    END IF;
    RETURN streams._invoke_http(f.function_name, f.owner, event);
END $$;
COMMENT ON FUNCTION streams._invoke(text, jsonb, text) IS 'Internal: streams.invoke.';

CREATE FUNCTION streams.invoke(function_name text, event jsonb) RETURNS jsonb
LANGUAGE sql VOLATILE AS $$
    SELECT streams._invoke(function_name, event, pg_catalog.current_setting('search_path'))
$$;
COMMENT ON FUNCTION streams.invoke(text, jsonb) IS
    'Calls a registered function once with the given event, as the caller (with its search_path), exactly as a mapping would (Lambda Invoke, RequestResponse); returns its response or raises its error. No retries, no checkpoint.';

CREATE FUNCTION streams._sample_event(tbl regclass, event_name text, new_row record, old_row record, view_type text)
    RETURNS jsonb LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'pgs_sample_event';
COMMENT ON FUNCTION streams._sample_event(regclass, text, record, record, text) IS
    'Internal: streams.sample_event from rows of the table.';

-- Row values given as JSON ({"column": value, ...}; values as jsonb_populate_record
-- takes them) become rows of the table, then a record as the decoder builds it.
CREATE FUNCTION streams.sample_event(tbl regclass, event_name text, new_image jsonb DEFAULT NULL,
                                     old_image jsonb DEFAULT NULL, view_type text DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    new_row record;
    old_row record;
    img     jsonb;
    which   text;
    bad     text;
BEGIN
    IF event_name IS NULL OR event_name NOT IN ('INSERT', 'MODIFY', 'REMOVE') THEN
        PERFORM streams._raise('22023', 'ValidationException',
            format('event_name must be INSERT, MODIFY or REMOVE, not %s', coalesce(event_name, 'null')));
    END IF;
    IF view_type IS NOT NULL AND view_type NOT IN ('KEYS_ONLY', 'NEW_IMAGE', 'OLD_IMAGE', 'NEW_AND_OLD_IMAGES') THEN
        PERFORM streams._raise('22023', 'ValidationException',
            format('view_type must be KEYS_ONLY, NEW_IMAGE, OLD_IMAGE or NEW_AND_OLD_IMAGES, not %s', view_type));
    END IF;
    IF event_name IN ('INSERT', 'MODIFY') AND new_image IS NULL THEN
        PERFORM streams._raise('22023', 'ValidationException', format('a %s record needs new_image', event_name));
    END IF;
    IF event_name = 'REMOVE' AND old_image IS NULL THEN
        PERFORM streams._raise('22023', 'ValidationException', 'a REMOVE record needs old_image');
    END IF;
    IF event_name = 'MODIFY' AND old_image IS NULL THEN
        old_image := new_image;   -- an update that changed nothing but was made
    END IF;
    FOREACH which IN ARRAY ARRAY['new_image', 'old_image'] LOOP
        img := CASE which WHEN 'new_image' THEN new_image ELSE old_image END;
        CONTINUE WHEN img IS NULL;
        IF jsonb_typeof(img) <> 'object' THEN
            PERFORM streams._raise('22023', 'ValidationException', format('%s must be a JSON object of column values', which));
        END IF;
        SELECT k INTO bad FROM jsonb_object_keys(img) k
        WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = k
                                                        AND a.attnum > 0 AND NOT a.attisdropped)
        LIMIT 1;
        IF FOUND THEN
            PERFORM streams._raise('22023', 'ValidationException', format('%s: %s has no column %I', which, tbl, bad));
        END IF;
    END LOOP;
    IF new_image IS NOT NULL THEN
        EXECUTE format('SELECT * FROM jsonb_populate_record(NULL::%s, $1)', tbl) INTO new_row USING new_image;
    END IF;
    IF old_image IS NOT NULL THEN
        EXECUTE format('SELECT * FROM jsonb_populate_record(NULL::%s, $1)', tbl) INTO old_row USING old_image;
    END IF;
    -- The record's envelope names the stream's view type; a sample built for
    -- another one says so.
    RETURN CASE WHEN view_type IS NULL THEN streams._sample_event(tbl, event_name, new_row, old_row, NULL)
                ELSE jsonb_set(streams._sample_event(tbl, event_name, new_row, old_row, view_type),
                               '{Records,0,dynamodb,StreamViewType}', to_jsonb(view_type)) END;
END $$;
COMMENT ON FUNCTION streams.sample_event(regclass, text, jsonb, jsonb, text) IS
    'A {"Records":[...]} event with one record of the table''s stream built by the decoder from row values given as JSON (sam local generate-event).';
