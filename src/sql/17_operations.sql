--------------------------------------------------------------------------
-- Operating mappings: replay (reset a disabled mapping's position),
-- warnings about mappings that can block a shard forever
--------------------------------------------------------------------------

-- Moves a disabled mapping's position, so that a fixed handler can process
-- records again (or skip them). target: {"StartingPosition": "TRIM_HORIZON"
-- | "LATEST" | "AT_TIMESTAMP", "StartingPositionTimestamp": <epoch seconds>}
-- for every shard, or {"SequenceNumbers": {"<shardId>": "<SequenceNumber>"}}:
-- those shards go on at (and including) that record, the others stay.
CREATE FUNCTION streams.reset_event_source_mapping(uuid uuid, target jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m      streams.event_source_mapping := streams._find_esm(uuid);
    s      streams.stream;
    key    text;
    p_shard integer;
    seq    record;
    v      jsonb;
    moved  integer := 0;
BEGIN
    PERFORM streams._check_esm_owner(m);
    -- Serialized with update_event_source_mapping (which enables).
    SELECT * INTO m FROM streams.event_source_mapping e WHERE e.mapping_id = m.mapping_id FOR UPDATE;
    IF m.enabled OR m.state <> 'Disabled' THEN
        PERFORM streams._raise('55000', 'ResourceInUseException',
            format('event source mapping %s is %s: disable it and wait until its State is Disabled before resetting its position',
                   m.uuid, m.state),
            'SELECT streams.update_event_source_mapping(uuid, ''{"Enabled": false}''), then wait for State Disabled.');
    END IF;
    IF target IS NULL OR jsonb_typeof(target) <> 'object' THEN
        PERFORM streams._raise('22023', 'ValidationException', 'target must be a JSON object');
    END IF;
    FOR key IN SELECT jsonb_object_keys(target) LOOP
        IF key NOT IN ('StartingPosition', 'StartingPositionTimestamp', 'SequenceNumbers') THEN
            PERFORM streams._raise('22023', 'ValidationException',
                format('Unknown parameter in target: "%s", must be one of: StartingPosition, StartingPositionTimestamp, SequenceNumbers', key));
        END IF;
    END LOOP;
    IF (target ? 'StartingPosition') = (target ? 'SequenceNumbers') THEN
        PERFORM streams._raise('22023', 'ValidationException',
            'target needs exactly one of StartingPosition and SequenceNumbers');
    END IF;
    SELECT * INTO s FROM streams.stream st WHERE st.stream_id = m.stream_id;
    IF NOT FOUND THEN
        PERFORM streams._raise('42704', 'ResourceNotFoundException',
            format('the stream of event source mapping %s no longer exists', m.uuid));
    END IF;

    IF target ? 'StartingPosition' THEN
        SELECT p.starting_position, p.starting_timestamp INTO m.starting_position, m.starting_timestamp
          FROM streams._starting_position(target) AS p;
        UPDATE streams.mapping_shard ms
           SET (ck_lsn, ck_idx) = (SELECT c.lsn, c.idx FROM streams._starting_checkpoint(m, ms.shard) AS c),
               batch_end_lsn = NULL, batch_end_idx = NULL, pending_lsn = '{}', pending_idx = '{}', attempts = 0,
               retry_at = NULL, window_start = NULL, window_state = NULL, window_early = false, window_floor = NULL
         WHERE ms.mapping_id = m.mapping_id;
        GET DIAGNOSTICS moved = ROW_COUNT;
        UPDATE streams.event_source_mapping e
           SET starting_position = m.starting_position, starting_timestamp = m.starting_timestamp,
               last_modified = clock_timestamp()
         WHERE e.mapping_id = m.mapping_id;
    ELSE
        IF jsonb_typeof(target->'SequenceNumbers') <> 'object' OR target->'SequenceNumbers' = '{}' THEN
            PERFORM streams._raise('22023', 'ValidationException',
                'SequenceNumbers must be an object of shard ids and sequence numbers');
        END IF;
        FOR key, v IN SELECT * FROM jsonb_each(target->'SequenceNumbers') LOOP
            SELECT n INTO p_shard FROM generate_series(0, s.shard_count - 1) n WHERE streams._shard_id(s, n) = key;
            IF NOT FOUND THEN
                PERFORM streams._raise('22023', 'ValidationException',
                    format('shard %s is not a shard of %s', key, s.stream_arn));
            END IF;
            IF jsonb_typeof(v) <> 'string' THEN
                PERFORM streams._raise('22023', 'ValidationException',
                    format('the SequenceNumber of shard %s must be a string', key));
            END IF;
            seq := streams._parse_seq(v #>> '{}');
            IF NOT EXISTS (SELECT 1 FROM streams.record_batch b, unnest(b.lsns, b.idxs) AS u(lsn, idx)
                           WHERE b.stream_id = s.stream_id AND b.shard = p_shard
                             AND (b.first_lsn, b.first_idx) <= (seq.lsn, seq.idx)
                             AND (b.last_lsn, b.last_idx) >= (seq.lsn, seq.idx)
                             AND u.lsn = seq.lsn AND u.idx = seq.idx) THEN
                PERFORM streams._raise('22023', 'ValidationException',
                    format('SequenceNumber %s is not a record of shard %s (never was, or trimmed by retention)',
                           v #>> '{}', key));
            END IF;
            -- The checkpoint is the last record processed: just before it.
            UPDATE streams.mapping_shard ms SET ck_lsn = seq.lsn, ck_idx = seq.idx - 1, batch_end_lsn = NULL,
                   batch_end_idx = NULL, pending_lsn = '{}', pending_idx = '{}', attempts = 0, retry_at = NULL,
                   window_start = NULL, window_state = NULL, window_early = false, window_floor = NULL
            WHERE ms.mapping_id = m.mapping_id AND ms.shard = p_shard;
            moved := moved + 1;
        END LOOP;
        UPDATE streams.event_source_mapping e SET last_modified = clock_timestamp() WHERE e.mapping_id = m.mapping_id;
    END IF;
    RAISE NOTICE 'pg_streams: event source mapping reset on % shard(s); it resumes there when enabled', moved;
    RETURN streams._esm_doc(streams._find_esm(uuid));
END $$;
COMMENT ON FUNCTION streams.reset_event_source_mapping(uuid, jsonb) IS
    'Moves a disabled mapping''s target (TRIM_HORIZON, LATEST, AT_TIMESTAMP, or SequenceNumbers per shard) so that records are processed again or skipped; owner only.';

-- A mapping that retries for ever, with no record age limit and nowhere to
-- send what fails, lets one bad record block its shard until retention
-- drops it: say so when such a mapping is created or updated.
CREATE FUNCTION streams._esm_blocking_notice(m streams.event_source_mapping) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF m.maximum_retry_attempts = -1 AND m.maximum_record_age = -1
       AND m.destination_table IS NULL AND m.destination_function IS NULL THEN
        RAISE NOTICE 'pg_streams: this event source mapping retries a failing batch for ever and has no OnFailure destination'
            USING HINT = 'A record that always fails blocks its shard until retention removes it. Set MaximumRetryAttempts or '
                         'MaximumRecordAgeInSeconds, and DestinationConfig.OnFailure.Destination to keep what fails.';
    END IF;
END $$;
