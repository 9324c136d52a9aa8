--------------------------------------------------------------------------
-- Backup and restore (pg_dump, pg_restore)
--------------------------------------------------------------------------

-- A dump holds the configuration, not the records: enabled streams,
-- functions, their secrets (superusers' dumps only, see below), the mappings
-- of those streams and the failed batches. Stored records, positions
-- (mapping_shard) and counters are not dumped: their LSNs mean nothing in
-- another database or cluster. A disabled stream would come back empty and is
-- left out, with its mappings. Rows naming a role or table that no
-- longer exists are left out too: its number would stand for whatever has
-- that OID where the dump is restored. SQL targets name their handler by its
-- qualified name, so they are dumped also when it is gone. (pg_dump runs the filters with
-- search_path = '', so every name in them is qualified.)
SELECT pg_catalog.pg_extension_config_dump('streams.stream', $$
    WHERE status = 'ENABLED' AND owner IN (SELECT oid FROM pg_catalog.pg_roles)$$);
SELECT pg_catalog.pg_extension_config_dump('streams.function', $$
    WHERE owner IN (SELECT oid FROM pg_catalog.pg_roles)
      AND (handler_owner IS NULL OR handler_owner IN (SELECT oid FROM pg_catalog.pg_roles))$$);
SELECT pg_catalog.pg_extension_config_dump('streams.function_secret', $$
    WHERE function_id IN (SELECT f.function_id FROM streams.function f
                          WHERE f.owner IN (SELECT oid FROM pg_catalog.pg_roles)
                            AND (f.handler_owner IS NULL OR f.handler_owner IN (SELECT oid FROM pg_catalog.pg_roles)))$$);
SELECT pg_catalog.pg_extension_config_dump('streams.event_source_mapping', $$
    WHERE stream_id IN (SELECT s.stream_id FROM streams.stream s
                        WHERE s.status = 'ENABLED' AND s.owner IN (SELECT oid FROM pg_catalog.pg_roles))
      AND owner IN (SELECT oid FROM pg_catalog.pg_roles)
      AND function_owner IN (SELECT oid FROM pg_catalog.pg_roles)
      AND (destination_owner IS NULL OR destination_owner IN (SELECT oid FROM pg_catalog.pg_roles))
      AND (destination_table IS NULL OR destination_table IN (SELECT oid FROM pg_catalog.pg_class))$$);
SELECT pg_catalog.pg_extension_config_dump('streams.failed_batches', $$
    WHERE owner IN (SELECT oid FROM pg_catalog.pg_roles)$$);
-- The identity sequences, so that ids created after a restore do not collide
-- with restored ones.
SELECT pg_catalog.pg_extension_config_dump('streams.stream_stream_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('streams.function_function_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('streams.event_source_mapping_mapping_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('streams.failed_batches_id_seq', '');

-- pg_dump reads these tables as the role that runs it. Streams and mappings
-- are shown to every role by list_streams and list_event_source_mappings;
-- functions only to members of their owner (URLs and headers); secrets to
-- superusers alone. A role that is not a superuser dumps with
-- --enable-row-security and gets its own functions and no secrets (pg_dump
-- fails on tables with row-level security otherwise).
GRANT SELECT ON streams.stream, streams.event_source_mapping, streams.function, streams.function_secret TO PUBLIC;
GRANT SELECT ON SEQUENCE streams.stream_stream_id_seq, streams.function_function_id_seq,
    streams.event_source_mapping_mapping_id_seq, streams.failed_batches_id_seq TO PUBLIC;
ALTER TABLE streams.function ENABLE ROW LEVEL SECURITY;
CREATE POLICY function_read ON streams.function FOR SELECT USING (pg_catalog.pg_has_role(owner, 'USAGE'));
-- No policy: only roles that bypass row-level security (superusers) see rows.
ALTER TABLE streams.function_secret ENABLE ROW LEVEL SECURITY;

-- Moves the identity sequence of tbl.col past the largest id in the table.
CREATE FUNCTION streams._advance_identity(tbl regclass, col text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    seq  regclass := pg_get_serial_sequence(tbl::text, col)::regclass;
    top  bigint;
BEGIN
    EXECUTE format('SELECT max(%I) FROM %s', col, tbl) INTO top;
    IF top IS NOT NULL AND top > coalesce(pg_sequence_last_value(seq), 0) THEN
        PERFORM setval(seq, top);
    END IF;
END $$;

-- After a restore: a stream row without its partition of record_batch came
-- from a dump (enable_stream creates both at once, and the partition is not
-- dumped). It becomes a new stream of the restored table: new label, ARN and
-- shard ids, no records, capturing from now on; its mappings get positions
-- (mapping_shard rows are not dumped) at TRIM_HORIZON of it, which is every
-- change committed after this. The output plugin ignores such a stream until
-- then, so the restore's own data load is not captured.
--
-- Run by the capture worker. Returns the number of streams rebound, or -1
-- while a restore may still be loading data: a session that ran CREATE
-- EXTENSION pg_streams or COPY into streams.* holds an advisory lock until it
-- ends (src/worker/hooks.cpp), and pg_restore's sessions are named so.
CREATE FUNCTION streams._rebind_restored() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s       streams.stream;
    created timestamptz;
    label   text;
    tname   text;
    arn     text;
    saved   jsonb;
    n       integer := 0;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM streams.stream st
                   WHERE to_regclass(format('streams.%I', 'record_' || st.stream_id)) IS NULL)
       AND NOT EXISTS (SELECT 1 FROM streams.event_source_mapping e JOIN streams.stream st USING (stream_id)
                       WHERE NOT EXISTS (SELECT 1 FROM streams.mapping_shard ms WHERE ms.mapping_id = e.mapping_id)) THEN
        RETURN 0;
    END IF;
    IF NOT pg_try_advisory_xact_lock(1885827956, 1)
       OR EXISTS (SELECT 1 FROM pg_stat_activity a
                  WHERE a.datname = current_database() AND a.application_name = 'pg_restore'
                    AND a.pid <> pg_backend_pid()) THEN
        RETURN -1;
    END IF;
    PERFORM streams._advance_identity('streams.stream', 'stream_id');
    PERFORM streams._advance_identity('streams.function', 'function_id');
    PERFORM streams._advance_identity('streams.event_source_mapping', 'mapping_id');
    PERFORM streams._advance_identity('streams.failed_batches', 'id');

    FOR s IN SELECT * FROM streams.stream st
             WHERE to_regclass(format('streams.%I', 'record_' || st.stream_id)) IS NULL
             ORDER BY st.stream_id LOOP
      BEGIN
        created := clock_timestamp();
        label := to_char(created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS');
        SELECT format('%s.%s', nsp.nspname, c.relname) INTO tname
        FROM pg_class c JOIN pg_namespace nsp ON nsp.oid = c.relnamespace WHERE c.oid = s.relid;
        tname := coalesce(tname, s.table_name);
        arn := format('arn:aws:dynamodb:%s:%s:table/%s/stream/%s', current_setting('pg_streams.aws_region'),
                      current_setting('pg_streams.aws_account_id'), tname, label);
        -- Replica identities to put back on disable: found again by name.
        SELECT jsonb_agg(item || jsonb_build_object('rel', to_regclass(item->>'name')::oid)) INTO saved
        FROM jsonb_array_elements(coalesce(s.saved_identity, '[]')) AS item
        WHERE to_regclass(item->>'name') IS NOT NULL;
        UPDATE streams.stream
        SET stream_label = label, stream_arn = arn, aws_region = current_setting('pg_streams.aws_region'),
            table_name = tname, created_at = created, start_lsn = pg_current_wal_insert_lsn(),
            saved_identity = saved,
            disabled_at = CASE WHEN status = 'DISABLED' THEN created END
        WHERE stream_id = s.stream_id;
        PERFORM streams._create_stream_storage(s.stream_id);
        DELETE FROM streams.mapping_shard
        WHERE mapping_id IN (SELECT mapping_id FROM streams.event_source_mapping WHERE stream_id = s.stream_id);
        UPDATE streams.event_source_mapping
        SET event_source_arn = arn, state = CASE WHEN enabled THEN 'Enabling' ELSE 'Disabled' END,
            state_reason = 'Restored', last_result = 'No records processed', last_modified = created
        WHERE stream_id = s.stream_id;
        INSERT INTO streams.mapping_shard (mapping_id, shard, ck_lsn, ck_idx)
        SELECT e.mapping_id, g.n, 0, -1
        FROM streams.event_source_mapping e, generate_series(0, s.shard_count - 1) AS g(n)
        WHERE e.stream_id = s.stream_id;
        n := n + 1;
      EXCEPTION WHEN OTHERS THEN
        -- This stream stays as restored (not captured); the next round tries again.
        RAISE WARNING 'pg_streams: could not rebind restored stream % of table %: %', s.stream_id, s.table_name, SQLERRM;
      END;
    END LOOP;
    -- Mappings restored into a database whose stream was not (a data-only
    -- restore): they start at LATEST, as if created now.
    INSERT INTO streams.mapping_shard (mapping_id, shard, ck_lsn, ck_idx)
    SELECT e.mapping_id, g.n, (pg_current_wal_insert_lsn() - '0/0')::bigint, -1
    FROM streams.event_source_mapping e JOIN streams.stream st USING (stream_id)
    CROSS JOIN generate_series(0, st.shard_count - 1) AS g(n)
    WHERE NOT EXISTS (SELECT 1 FROM streams.mapping_shard ms WHERE ms.mapping_id = e.mapping_id);
    PERFORM streams._invalidate();
    PERFORM streams._mappings_changed();
    RETURN n;
END $$;

REVOKE ALL ON FUNCTION streams._advance_identity(regclass, text), streams._rebind_restored() FROM PUBLIC;
