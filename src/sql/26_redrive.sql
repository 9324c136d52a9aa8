--------------------------------------------------------------------------
-- Redrive: failed batches delivered again
--------------------------------------------------------------------------
--
-- CALL streams.redrive_failed_batches(failure_table, options) takes the rows
-- of a failure table (streams.failed_batches or any table with a jsonb
-- column "record" holding OnFailure records), oldest stream position first
-- per shard, and delivers each row's payload again with the delivery rules
-- of the mapping that failed it: retries with backoff, bisect on function
-- errors, partial batch responses, and a new failure record where the
-- mapping sends failures. Each row is removed in the transaction that
-- redrives it: for SQL functions the handler's effects, the removal and any
-- new failure record commit together (a row is redriven exactly once, also
-- across a crash). For HTTP functions the row is first moved to
-- streams.redrive_in_doubt in a transaction of its own; a crash while its
-- requests are out leaves it there, reported and never sent again.

-- Rows of HTTP redrives whose requests were sent by a session that ended
-- before it could record the outcome.
CREATE TABLE streams.redrive_in_doubt (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    failure_table text        NOT NULL,
    record        jsonb       NOT NULL,
    function_name text        NOT NULL,
    owner         regrole     NOT NULL,
    started_at    timestamptz NOT NULL,
    pid           integer     NOT NULL
);
REVOKE ALL ON streams.redrive_in_doubt FROM PUBLIC;
GRANT SELECT, DELETE ON streams.redrive_in_doubt TO PUBLIC;
ALTER TABLE streams.redrive_in_doubt ENABLE ROW LEVEL SECURITY;
CREATE POLICY redrive_in_doubt_own ON streams.redrive_in_doubt USING (pg_has_role(owner, 'USAGE'));

-- What a failure record is redriven to: the mapping that failed it (by its
-- function and stream ARNs), the function to call, and the rules.
CREATE FUNCTION streams._redrive_target(doc jsonb, function_name text, max_retries integer) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    caller oid := streams._caller();
    m      streams.event_source_mapping;
    s      streams.stream;
    f      streams.function;
    fname  text := streams._function_name_of(doc->'requestContext'->>'functionArn');
BEGIN
    SELECT * INTO s FROM streams.stream st WHERE st.stream_arn = doc->'DDBStreamBatchInfo'->>'streamArn';
    IF FOUND THEN
        SELECT * INTO m FROM streams.event_source_mapping e WHERE e.stream_id = s.stream_id AND e.function_name = fname;
    END IF;
    IF function_name IS NULL AND m.mapping_id IS NULL THEN
        RETURN jsonb_build_object('problem', format('no event source mapping of function %s on stream %s',
                                                    coalesce(fname, 'null'), coalesce(doc->'DDBStreamBatchInfo'->>'streamArn', 'null')));
    END IF;
    IF m.mapping_id IS NOT NULL AND function_name IS NULL THEN
        -- Redriven as the mapping: only its owner's members may.
        IF NOT pg_has_role(caller, m.owner, 'USAGE') THEN
            RETURN jsonb_build_object('problem', format('must be a member of role %s, the owner of event source mapping %s',
                                                        m.owner, m.uuid));
        END IF;
        SELECT * INTO f FROM streams.function fn WHERE fn.function_name = m.function_name AND fn.owner = m.function_owner;
        IF NOT FOUND THEN
            RETURN jsonb_build_object('problem', format('function %s of event source mapping %s does not exist', m.function_name, m.uuid));
        END IF;
        IF streams._read_problem(s, m.owner) IS NOT NULL THEN
            RETURN jsonb_build_object('problem', streams._read_problem(s, m.owner));
        END IF;
    ELSE
        SELECT * INTO f FROM streams.function fn WHERE fn.function_name = streams._function_name_of(_redrive_target.function_name);
        IF NOT FOUND OR NOT pg_has_role(caller, f.owner, 'USAGE') THEN
            RETURN jsonb_build_object('problem', format('function %s does not exist or is not owned by a role you are a member of',
                                                        _redrive_target.function_name));
        END IF;
    END IF;
    RETURN jsonb_build_object(
        'mapping', m.uuid, 'function', f.function_name, 'function_arn', f.function_arn, 'http', f.kind = 'http',
        'max_retries', coalesce(max_retries, CASE WHEN m.maximum_retry_attempts >= 0 THEN m.maximum_retry_attempts ELSE 2 END, 2),
        'bisect', coalesce(m.bisect, false),
        'partial', coalesce('ReportBatchItemFailures' = ANY (m.response_types), false),
        'destination_table', CASE WHEN function_name IS NULL THEN m.destination_table::text END,
        'destination_function', CASE WHEN function_name IS NULL THEN m.destination_function END,
        -- User code runs as its owner, as the dispatcher runs it: the mapping's
        -- owner, or the named function's owner.
        'run_as', CASE WHEN m.mapping_id IS NOT NULL AND function_name IS NULL THEN m.owner ELSE f.owner END::oid);
END $$;

-- Calls function fname with event once, as role run_as (the mapping's
-- owner or the function's, see _redrive_target; the caller must be a member
-- of it), as a security-restricted operation. Returns
-- {"ok":true,"response":...} or {"ok":false,"error":...}; a failed SQL call's
-- effects are rolled back.
CREATE FUNCTION streams._redrive_invoke(fname text, event jsonb, search_path text, run_as oid) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    caller oid := streams._caller();
    f      streams.function := streams._find_function(fname);
    resp   jsonb;
    msg    text;
BEGIN
    IF NOT pg_has_role(caller, f.owner, 'USAGE') AND NOT EXISTS (
           SELECT 1 FROM streams.event_source_mapping e
           WHERE e.function_name = f.function_name AND e.function_owner = f.owner AND pg_has_role(caller, e.owner, 'USAGE'))
       AND NOT EXISTS (
           SELECT 1 FROM streams.event_source_mapping e
           WHERE e.destination_function = f.function_name AND e.destination_owner = f.owner AND pg_has_role(caller, e.owner, 'USAGE')) THEN
        PERFORM streams._raise('42501', 'AccessDeniedException', format('may not invoke function %s', f.function_name));
    END IF;
    IF run_as IS NULL OR NOT pg_has_role(caller, run_as, 'USAGE') THEN
        PERFORM streams._raise('42501', 'AccessDeniedException',
            format('may not run function %s as role %s', f.function_name, coalesce(run_as::regrole::text, 'null')));
    END IF;
    IF f.kind NOT IN ('sql', 'http') THEN
        RETURN jsonb_build_object('ok', false,
            'error', format('function %s is a %s target: redrive calls SQL and HTTP functions only', f.function_name, f.kind));
    END IF;
    IF f.kind = 'sql' AND streams._handler_oid(f) IS NULL THEN
        RETURN jsonb_build_object('ok', false,
            'error', format('handler %s of function %s does not exist', f.handler, f.function_name));
    END IF;
    BEGIN
        IF f.kind = 'sql' THEN
            resp := streams._invoke_sql(run_as, streams._handler_oid(f), f.timeout_seconds, event, search_path);
        ELSE
            resp := streams._invoke_http(f.function_name, f.owner, event);
        END IF;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
        RETURN jsonb_build_object('ok', false, 'error', msg);
    END;
    RETURN jsonb_build_object('ok', true, 'response', resp);
END $$;

-- Moves a row of an HTTP redrive into streams.redrive_in_doubt (and out).
CREATE FUNCTION streams._redrive_doubt(doc jsonb, failure_table text, fname text) RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO streams.redrive_in_doubt (failure_table, record, function_name, owner, started_at, pid)
    VALUES (failure_table, doc, fname, streams._caller(), clock_timestamp(), pg_backend_pid()) RETURNING id
$$;
CREATE FUNCTION streams._redrive_settled(doubt_id bigint) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    DELETE FROM streams.redrive_in_doubt WHERE id = doubt_id AND pid = pg_backend_pid()
$$;

-- The lowest failed record of a partial batch response (0-based), the
-- number of records when none failed, or -1 for an invalid response (as the
-- dispatcher reads batchItemFailures).
CREATE FUNCTION streams._redrive_first_failed(resp jsonb, records jsonb) RETURNS integer
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f      jsonb;
    pos    integer;
    lowest integer := jsonb_array_length(records);
BEGIN
    IF resp IS NULL OR jsonb_typeof(resp) <> 'object' OR resp->'batchItemFailures' IS NULL
       OR resp->'batchItemFailures' = 'null' THEN
        RETURN lowest;
    END IF;
    IF jsonb_typeof(resp->'batchItemFailures') <> 'array' THEN
        RETURN -1;
    END IF;
    FOR f IN SELECT * FROM jsonb_array_elements(resp->'batchItemFailures') LOOP
        IF jsonb_typeof(f) <> 'object' OR jsonb_typeof(f->'itemIdentifier') <> 'string' OR f->>'itemIdentifier' = '' THEN
            RETURN -1;
        END IF;
        SELECT o - 1 INTO pos FROM jsonb_array_elements(records) WITH ORDINALITY AS r(rec, o)
        WHERE rec->'dynamodb'->>'SequenceNumber' = f->>'itemIdentifier' LIMIT 1;
        IF pos IS NULL THEN
            RETURN -1;
        END IF;
        lowest := least(lowest, pos);
    END LOOP;
    RETURN lowest;
END $$;

-- A failure record for records, as the dispatcher writes them.
CREATE FUNCTION streams._redrive_failure_doc(old jsonb, records jsonb, function_arn text, invokes integer, error text)
RETURNS jsonb LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object(
        'requestContext', jsonb_build_object('requestId', gen_random_uuid(), 'functionArn', function_arn,
                                             'condition', 'RetryAttemptsExhausted', 'approximateInvokeCount', invokes),
        'responseContext', jsonb_build_object('statusCode', 200, 'executedVersion', '$LATEST',
                                              'functionError', CASE WHEN error IS NOT NULL THEN 'Unhandled' END),
        'version', '1.0',
        'timestamp', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'DDBStreamBatchInfo', (old->'DDBStreamBatchInfo') || jsonb_build_object(
            'startSequenceNumber', records->0->'dynamodb'->>'SequenceNumber',
            'endSequenceNumber', records->-1->'dynamodb'->>'SequenceNumber',
            'batchSize', jsonb_array_length(records)),
        'payload', jsonb_build_object('Records', records))
$$;

-- Delivers the payload of one failure record with target t's rules; returns
-- counters and the failure records to write ({"failures":[...]}).
CREATE FUNCTION streams._redrive_deliver(doc jsonb, t jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    recs      jsonb := doc->'payload'->'Records';
    ranges    int[] := ARRAY[0, jsonb_array_length(doc->'payload'->'Records')];   -- pairs [from, to)
    a         integer;
    b         integer;
    mid       integer;
    part      jsonb;
    res       jsonb;
    ff        integer;
    attempts  integer := 0;
    invokes   integer := 0;
    delivered integer := 0;
    failed    integer := 0;
    failures  jsonb := '[]';
    err       text;
BEGIN
    WHILE cardinality(ranges) > 0 LOOP
        a := ranges[1]; b := ranges[2];
        part := (SELECT coalesce(jsonb_agg(r ORDER BY o), '[]') FROM jsonb_array_elements(recs) WITH ORDINALITY AS x(r, o)
                 WHERE o > a AND o <= b);
        res := streams._redrive_invoke(t->>'function', jsonb_build_object('Records', part), current_setting('search_path'),
                                       (t->>'run_as')::oid);
        invokes := invokes + 1;
        attempts := attempts + 1;
        err := NULL;
        IF (res->>'ok')::boolean THEN
            ff := CASE WHEN (t->>'partial')::boolean THEN streams._redrive_first_failed(res->'response', part) ELSE b - a END;
            IF ff = b - a THEN
                delivered := delivered + (b - a);
                ranges := ranges[3:]; attempts := 0;
                CONTINUE;
            ELSIF ff > 0 THEN
                -- The records before the lowest reported one are done; the rest is a new batch.
                delivered := delivered + ff;
                ranges[1] := a + ff; attempts := 0;
                CONTINUE;
            END IF;
            err := CASE WHEN ff < 0 THEN 'invalid batchItemFailures response' END;
        ELSE
            err := res->>'error';
        END IF;
        IF err IS NOT NULL AND (t->>'bisect')::boolean AND b - a > 1 THEN
            -- Halve; splitting does not use up retries.
            mid := a + (b - a + 1) / 2;
            ranges := ARRAY[a, mid, mid, b] || ranges[3:];
            attempts := 0;
            PERFORM pg_sleep(0.5);
        ELSIF attempts > (t->>'max_retries')::integer THEN
            failures := failures || jsonb_build_array(
                streams._redrive_failure_doc(doc, part, t->>'function_arn', attempts, coalesce(err, 'partial batch failure')));
            failed := failed + (b - a);
            ranges := ranges[3:]; attempts := 0;
        ELSE
            PERFORM pg_sleep(least(60, 0.5 * power(2, attempts - 1)));
        END IF;
    END LOOP;
    RETURN jsonb_build_object('delivered', delivered, 'failed', failed, 'invocations', invokes, 'failures', failures);
END $$;

CREATE PROCEDURE streams.redrive_failed_batches(failure_table regclass DEFAULT 'streams.failed_batches',
                                                options jsonb DEFAULT '{}', INOUT summary jsonb DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    k         text;
    fname     text;
    t_from    timestamptz;
    t_to      timestamptz;
    lim       bigint;
    retries   integer;
    m_uuid    uuid;
    r         record;
    t         jsonb;
    res       jsonb;
    doc       jsonb;
    n         bigint;
    doubt     bigint;
    total     bigint;
    seen      bigint := 0;
    redriven  bigint := 0;
    skipped   bigint := 0;
    refused   bigint := 0;
    delivered bigint := 0;
    failed    bigint := 0;
    invokes   bigint := 0;
    new_fail  bigint := 0;
    problems  jsonb := '[]';
    noticed   timestamptz := clock_timestamp();
BEGIN
    IF failure_table IS NULL THEN
        PERFORM streams._raise('22004', 'ValidationException', 'failure_table must not be null');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = failure_table AND a.attname = 'record'
                   AND a.atttypid = 'jsonb'::regtype AND NOT a.attisdropped) THEN
        PERFORM streams._raise('22023', 'ValidationException',
            format('%s has no jsonb column "record": not a failure table', failure_table));
    END IF;
    IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
        PERFORM streams._raise('22023', 'ValidationException', 'options must be a JSON object');
    END IF;
    FOR k IN SELECT jsonb_object_keys(options) LOOP
        IF k NOT IN ('UUID', 'FunctionName', 'From', 'To', 'Limit', 'MaximumRetryAttempts') THEN
            PERFORM streams._raise('22023', 'ValidationException',
                format('Unknown parameter in options: "%s", must be one of: UUID, FunctionName, From, To, Limit, MaximumRetryAttempts', k));
        END IF;
    END LOOP;
    BEGIN
        m_uuid := (options->>'UUID')::uuid;
        fname := options->>'FunctionName';
        t_from := (options->>'From')::timestamptz;
        t_to := (options->>'To')::timestamptz;
        lim := (options->>'Limit')::bigint;
        retries := (options->>'MaximumRetryAttempts')::integer;
    EXCEPTION WHEN OTHERS THEN
        PERFORM streams._raise('22023', 'ValidationException', format('invalid options %s: %s', options, SQLERRM));
    END;
    IF lim IS NOT NULL AND lim < 1 OR retries IS NOT NULL AND retries NOT BETWEEN 0 AND 10000 THEN
        PERFORM streams._raise('22023', 'ValidationException', 'Limit must be at least 1 and MaximumRetryAttempts between 0 and 10000');
    END IF;
    IF m_uuid IS NOT NULL THEN
        PERFORM streams.get_event_source_mapping(m_uuid);   -- exists
    END IF;

    EXECUTE format($q$SELECT count(*) FROM %s f WHERE jsonb_typeof(f.record->'payload'->'Records') = 'array'
                        AND ($1 IS NULL OR (f.record->>'timestamp')::timestamptz >= $1)
                        AND ($2 IS NULL OR (f.record->>'timestamp')::timestamptz < $2)$q$, failure_table)
        INTO total USING t_from, t_to;
    total := least(total, coalesce(lim, total));
    RAISE NOTICE 'pg_streams: redriving % failed batches of %', total, failure_table;
    COMMIT;
    FOR r IN EXECUTE format($q$SELECT f.ctid AS tid, f.record FROM %s f
                 WHERE jsonb_typeof(f.record->'payload'->'Records') = 'array'
                   AND ($1 IS NULL OR (f.record->>'timestamp')::timestamptz >= $1)
                   AND ($2 IS NULL OR (f.record->>'timestamp')::timestamptz < $2)
                 ORDER BY f.record->'DDBStreamBatchInfo'->>'streamArn', f.record->'DDBStreamBatchInfo'->>'shardId',
                          f.record->'DDBStreamBatchInfo'->>'startSequenceNumber', f.ctid$q$, failure_table)
             USING t_from, t_to LOOP
        EXIT WHEN lim IS NOT NULL AND seen >= lim;
        t := streams._redrive_target(r.record, fname, retries);
        IF m_uuid IS NOT NULL AND (t->>'mapping') IS DISTINCT FROM m_uuid::text THEN
            CONTINUE;   -- another mapping's
        END IF;
        seen := seen + 1;
        IF t ? 'problem' THEN
            refused := refused + 1;
            IF jsonb_array_length(problems) < 10 THEN
                problems := problems || to_jsonb(t->>'problem');
            END IF;
            CONTINUE;
        END IF;
        -- Claim the row: it is removed by the transaction that redrives it.
        EXECUTE format('DELETE FROM %s f WHERE f.ctid = $1 AND f.record = $2', failure_table) USING r.tid, r.record;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n = 0 THEN
            skipped := skipped + 1;   -- redriven or removed meanwhile
            COMMIT;
            CONTINUE;
        END IF;
        doubt := NULL;
        IF (t->>'http')::boolean THEN
            doubt := streams._redrive_doubt(r.record, failure_table::text, t->>'function');
            COMMIT;
        END IF;
        res := streams._redrive_deliver(r.record, t);
        FOR doc IN SELECT * FROM jsonb_array_elements(res->'failures') LOOP
            IF t->>'destination_function' IS NOT NULL THEN
                PERFORM streams._redrive_invoke(t->>'destination_function', doc, current_setting('search_path'),
                                                (t->>'run_as')::oid);
            ELSE
                EXECUTE format('INSERT INTO %s (record) VALUES ($1)', coalesce(t->>'destination_table', failure_table::text))
                    USING doc;
            END IF;
            new_fail := new_fail + 1;
        END LOOP;
        IF doubt IS NOT NULL THEN
            PERFORM streams._redrive_settled(doubt);
        END IF;
        COMMIT;
        redriven := redriven + 1;
        delivered := delivered + (res->>'delivered')::bigint;
        failed := failed + (res->>'failed')::bigint;
        invokes := invokes + (res->>'invocations')::bigint;
        IF clock_timestamp() - noticed >= interval '10 seconds' THEN
            RAISE NOTICE 'pg_streams: redrive of %: % of % batches done', failure_table, redriven, total;
            noticed := clock_timestamp();
        END IF;
    END LOOP;
    summary := jsonb_build_object(
        'BatchesRedriven', redriven, 'RecordsDelivered', delivered, 'RecordsFailedAgain', failed,
        'NewFailureRecords', new_fail, 'Invocations', invokes, 'BatchesSkipped', skipped,
        'BatchesRefused', refused, 'Problems', problems,
        'InDoubt', (SELECT count(*) FROM streams.redrive_in_doubt d
                    WHERE d.failure_table = redrive_failed_batches.failure_table::text AND d.pid <> pg_backend_pid()));
    RAISE NOTICE 'pg_streams: redrive of % done: % batches, % records delivered, % failed again',
        failure_table, redriven, delivered, failed;
END $$;
COMMENT ON PROCEDURE streams.redrive_failed_batches(regclass, jsonb, jsonb) IS
    'Delivers the failed batches of a failure table again, with their mapping''s rules, in stream order per shard; each row is removed by the transaction that redrives it.';
