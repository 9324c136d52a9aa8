--------------------------------------------------------------------------
-- Streams API (DynamoDB: UpdateTable StreamSpecification, ListStreams,
-- DescribeStream, GetShardIterator, GetRecords)
--------------------------------------------------------------------------

CREATE FUNCTION streams.enable_stream(tbl regclass,
                                      view_type text DEFAULT 'NEW_AND_OLD_IMAGES',
                                      shard_count integer DEFAULT 4,
                                      retention interval DEFAULT '24 hours')
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    caller  oid := streams._caller();
    c       pg_class;
    nsp     name;
    keys    text[];
    rels    oid[];
    saved   jsonb := '[]'::jsonb;
    r       oid;
    label   text;
    arn     text;
    region  text := current_setting('pg_streams.aws_region');
    created timestamptz := clock_timestamp();
    sid     integer;
BEGIN
    IF tbl IS NULL THEN
        PERFORM streams._raise('22004', 'ValidationException', 'tbl must not be null');
    END IF;
    IF view_type IS NULL OR view_type NOT IN ('NEW_IMAGE', 'OLD_IMAGE', 'NEW_AND_OLD_IMAGES', 'KEYS_ONLY') THEN
        PERFORM streams._raise('22023', 'ValidationException',
            format('1 validation error detected: Value %s at ''streamSpecification.streamViewType'' failed to satisfy constraint: Member must satisfy enum value set: [NEW_IMAGE, OLD_IMAGE, NEW_AND_OLD_IMAGES, KEYS_ONLY]',
                   coalesce(quote_literal(view_type), 'null')));
    END IF;
    IF shard_count IS NULL OR shard_count NOT BETWEEN 1 AND 256 THEN
        PERFORM streams._raise('22023', 'ValidationException',
            format('shard_count must be between 1 and 256, got %s', coalesce(shard_count::text, 'null')));
    END IF;
    IF retention IS NULL OR retention < interval '1 second' OR retention > interval '365 days' THEN
        PERFORM streams._raise('22023', 'ValidationException',
            format('retention must be between 1 second and 365 days, got %s', coalesce(retention::text, 'null')));
    END IF;

    SELECT * INTO c FROM pg_class WHERE oid = tbl;
    IF NOT FOUND THEN
        PERFORM streams._raise('42704', 'ResourceNotFoundException',
            format('Requested resource not found: Table: %s not found', tbl::oid));
    END IF;
    nsp := (SELECT nspname FROM pg_namespace WHERE oid = c.relnamespace);
    IF c.relkind NOT IN ('r', 'p') THEN
        PERFORM streams._raise('42809', 'ValidationException', format('"%s" is not a table', tbl));
    END IF;
    IF c.relpersistence <> 'p' THEN
        PERFORM streams._raise('0A000', 'ValidationException',
            format('cannot stream %s table %s: its changes are not written to WAL',
                   CASE c.relpersistence WHEN 'u' THEN 'unlogged' ELSE 'temporary' END, tbl));
    END IF;
    IF nsp IN ('streams', 'pg_catalog', 'information_schema') OR nsp LIKE 'pg_toast%' THEN
        PERFORM streams._raise('0A000', 'ValidationException', format('cannot stream table %s of schema %s', tbl, nsp));
    END IF;
    IF NOT pg_has_role(caller, c.relowner, 'USAGE') THEN
        PERFORM streams._raise('42501', 'AccessDeniedException', format('must be owner of table %s', c.relname));
    END IF;
    IF EXISTS (SELECT 1 FROM streams.stream s WHERE s.relid = tbl AND s.status = 'ENABLED') THEN
        PERFORM streams._raise('55000', 'ValidationException',
            format('Table already has an enabled stream: %s', tbl),
            'Call streams.disable_stream first to replace it.');
    END IF;
    IF EXISTS (SELECT 1 FROM streams.stream s
               WHERE s.status = 'ENABLED'
                 AND (s.relid IN (SELECT relid FROM pg_partition_ancestors(tbl))
                      OR s.relid IN (SELECT relid FROM pg_partition_tree(tbl)))) THEN
        PERFORM streams._raise('55000', 'ValidationException',
            format('a partition or partitioned ancestor of %s already has an enabled stream', tbl));
    END IF;

    -- Keys: the primary key, else the replica identity index.
    SELECT array_agg(a.attname::text ORDER BY k.ord) INTO keys
    FROM pg_index i
         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = tbl AND i.indisprimary;
    IF keys IS NULL THEN
        SELECT array_agg(a.attname::text ORDER BY k.ord) INTO keys
        FROM pg_index i
             CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = tbl AND i.indisreplident;
    END IF;
    IF keys IS NULL THEN
        PERFORM streams._raise('55000', 'ValidationException',
            format('table %s has no primary key or replica identity index', tbl),
            'Stream records are keyed like DynamoDB items: add a PRIMARY KEY, or a unique index on NOT NULL columns and ALTER TABLE ... REPLICA IDENTITY USING INDEX.');
    END IF;

    -- Before this transaction writes anything: the capture slot must exist,
    -- so that every change committed after this one is decoded.
    PERFORM streams._capture_ready();

    -- Images need every column of the old row, TOASTed ones included.
    IF view_type <> 'KEYS_ONLY' THEN
        SELECT array_agg(pc.oid ORDER BY pc.oid) INTO rels
        FROM pg_class pc
        WHERE (pc.oid = tbl OR pc.oid IN (SELECT relid FROM pg_partition_tree(tbl)))
          AND pc.relkind IN ('r', 'p') AND pc.relreplident <> 'f';
        FOREACH r IN ARRAY coalesce(rels, '{}') LOOP
            saved := saved || jsonb_build_array(streams._identity_of(r));
            EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', r::regclass);
        END LOOP;
        IF rels IS NOT NULL THEN
            RAISE NOTICE 'pg_streams: REPLICA IDENTITY FULL set on %: view type % needs complete old row images',
                array_to_string(rels::regclass[], ', '), view_type
                USING HINT = 'streams.disable_stream restores the previous replica identity.';
        END IF;
    ELSE
        -- Keys only, but the old keys must be in WAL: REPLICA IDENTITY NOTHING,
        -- or USING INDEX of an index without all key columns, would lose the
        -- REMOVE records and turn key changes into a MODIFY of the new key.
        SELECT array_agg(pc.oid ORDER BY pc.oid) INTO rels
        FROM pg_class pc
        WHERE (pc.oid = tbl OR pc.oid IN (SELECT relid FROM pg_partition_tree(tbl)))
          AND pc.relkind IN ('r', 'p')
          AND (pc.relreplident = 'n'
               OR pc.relreplident = 'i' AND NOT EXISTS (
                   SELECT 1 FROM pg_index i
                   WHERE i.indrelid = pc.oid AND i.indisreplident
                     AND (SELECT array_agg(a.attname::text) FROM pg_attribute a
                          WHERE a.attrelid = pc.oid AND a.attnum = ANY (i.indkey)) @> keys));
        FOREACH r IN ARRAY coalesce(rels, '{}') LOOP
            saved := saved || jsonb_build_array(streams._identity_of(r));
            EXECUTE format('ALTER TABLE %s REPLICA IDENTITY %s', r::regclass,
                           CASE WHEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = r AND i.indisprimary)
                                THEN 'DEFAULT' ELSE 'FULL' END);
        END LOOP;
        IF rels IS NOT NULL THEN
            RAISE NOTICE 'pg_streams: REPLICA IDENTITY changed on %: view type KEYS_ONLY needs the old keys of every change',
                array_to_string(rels::regclass[], ', ')
                USING HINT = 'streams.disable_stream restores the previous replica identity.';
        END IF;
    END IF;

    label := to_char(created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS');
    arn := format('arn:aws:dynamodb:%s:%s:table/%s.%s/stream/%s', region,
                  current_setting('pg_streams.aws_account_id'), nsp, c.relname, label);
    INSERT INTO streams.stream (relid, table_name, stream_label, stream_arn, aws_region, view_type,
                                shard_count, retention, bucket_seconds, key_columns, created_at,
                                start_lsn, saved_identity, owner)
    VALUES (tbl, format('%s.%s', nsp, c.relname), label, arn, region, view_type, shard_count, retention,
            greatest(1, least(3600, floor(extract(epoch FROM retention) / 24)))::integer, keys, created,
            pg_current_wal_insert_lsn(), CASE WHEN saved = '[]' THEN NULL ELSE saved END, caller)
    RETURNING stream_id INTO sid;
    PERFORM streams._create_stream_storage(sid);
    PERFORM streams._invalidate();

    RETURN jsonb_build_object(
        'TableName', format('%s.%s', nsp, c.relname),
        'StreamSpecification', jsonb_build_object('StreamEnabled', true, 'StreamViewType', view_type),
        'LatestStreamLabel', label,
        'LatestStreamArn', arn);
END $$;
COMMENT ON FUNCTION streams.enable_stream(regclass, text, integer, interval) IS
    'Turns on a stream for a table (DynamoDB UpdateTable StreamSpecification).';

CREATE FUNCTION streams.disable_stream(tbl regclass) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    caller oid := streams._caller();
    s      streams.stream;
    item   jsonb;
    rel    regclass;
BEGIN
    IF tbl IS NULL THEN
        PERFORM streams._raise('22004', 'ValidationException', 'tbl must not be null');
    END IF;
    IF NOT pg_has_role(caller, (SELECT relowner FROM pg_class WHERE oid = tbl), 'USAGE') THEN
        PERFORM streams._raise('42501', 'AccessDeniedException', format('must be owner of table %s', tbl));
    END IF;
    SELECT * INTO s FROM streams.stream st WHERE st.relid = tbl AND st.status = 'ENABLED' FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM streams._raise('55000', 'ValidationException', format('Table %s has no enabled stream', tbl));
    END IF;
    UPDATE streams.stream SET status = 'DISABLED', disabled_at = clock_timestamp()
    WHERE stream_id = s.stream_id;
    FOR item IN SELECT * FROM jsonb_array_elements(coalesce(s.saved_identity, '[]')) LOOP
        rel := to_regclass((item->>'rel')::oid::regclass::text);
        CONTINUE WHEN rel IS NULL;
        EXECUTE format('ALTER TABLE %s REPLICA IDENTITY %s', rel,
                       CASE item->>'ident' WHEN 'd' THEN 'DEFAULT' WHEN 'n' THEN 'NOTHING'
                                           WHEN 'i' THEN 'USING INDEX ' || (item->>'index') END);
    END LOOP;
    PERFORM streams._invalidate();
    RETURN jsonb_build_object(
        'TableName', s.table_name,
        'StreamSpecification', jsonb_build_object('StreamEnabled', false),
        'LatestStreamLabel', s.stream_label,
        'LatestStreamArn', s.stream_arn);
END $$;
COMMENT ON FUNCTION streams.disable_stream(regclass) IS
    'Turns off the stream of a table; its records stay readable until the retention period ends.';

CREATE FUNCTION streams.list_streams(tbl regclass DEFAULT NULL) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object('Streams', coalesce(jsonb_agg(jsonb_build_object(
               'StreamArn', s.stream_arn, 'TableName', s.table_name, 'StreamLabel', s.stream_label)
               ORDER BY s.stream_id), '[]'::jsonb))
    FROM streams.stream s
    WHERE tbl IS NULL OR s.relid = tbl
$$;
COMMENT ON FUNCTION streams.list_streams(regclass) IS
    'Lists streams, enabled and retained ones, optionally of one table (DynamoDB ListStreams).';

CREATE FUNCTION streams.describe_stream(stream_arn text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s streams.stream := streams._find_stream(stream_arn);
    shards jsonb;
BEGIN
    SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
               'ShardId', streams._shard_id(s, n),
               'SequenceNumberRange', jsonb_build_object(
                   'StartingSequenceNumber', streams._seq((s.start_lsn - '0/0')::bigint, 0),
                   'EndingSequenceNumber', CASE WHEN s.status = 'DISABLED' THEN
                       (SELECT streams._seq(b.last_lsn, b.last_idx) FROM streams.record_batch b
                        WHERE b.stream_id = s.stream_id AND b.shard = n
                        ORDER BY b.last_lsn DESC, b.last_idx DESC LIMIT 1) END)))
           ORDER BY n)
    INTO shards
    FROM generate_series(0, s.shard_count - 1) AS n;
    RETURN jsonb_build_object('StreamDescription', jsonb_build_object(
        'StreamArn', s.stream_arn,
        'StreamLabel', s.stream_label,
        'StreamStatus', s.status,
        'StreamViewType', s.view_type,
        'CreationRequestDateTime', extract(epoch FROM s.created_at),
        'TableName', s.table_name,
        'KeySchema', (SELECT jsonb_agg(jsonb_build_object('AttributeName', k,
                                 'KeyType', CASE WHEN o = 1 THEN 'HASH' ELSE 'RANGE' END) ORDER BY o)
                      FROM unnest(s.key_columns) WITH ORDINALITY AS u(k, o)),
        'Shards', shards));
END $$;
COMMENT ON FUNCTION streams.describe_stream(text) IS
    'Describes a stream and its shards (DynamoDB DescribeStream).';

CREATE FUNCTION streams.get_shard_iterator(stream_arn text, shard_id text, shard_iterator_type text,
                                           sequence_number text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s     streams.stream := streams._find_stream(stream_arn);
    shard integer;
    pos   record;
    lsn   bigint;
    idx   integer;
BEGIN
    PERFORM streams._check_read(s);
    SELECT n INTO shard FROM generate_series(0, s.shard_count - 1) AS n
    WHERE streams._shard_id(s, n) = shard_id;
    IF shard IS NULL THEN
        PERFORM streams._raise('42704', 'ResourceNotFoundException',
            format('Requested resource not found: Shard: %s in Stream: %s not found', coalesce(shard_id, 'null'), stream_arn));
    END IF;
    IF shard_iterator_type IS NULL OR shard_iterator_type NOT IN
            ('TRIM_HORIZON', 'LATEST', 'AT_SEQUENCE_NUMBER', 'AFTER_SEQUENCE_NUMBER') THEN
        PERFORM streams._raise('22023', 'ValidationException',
            format('1 validation error detected: Value %s at ''shardIteratorType'' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_SEQUENCE_NUMBER, TRIM_HORIZON]',
                   coalesce(quote_literal(shard_iterator_type), 'null')));
    END IF;
    IF shard_iterator_type IN ('AT_SEQUENCE_NUMBER', 'AFTER_SEQUENCE_NUMBER') THEN
        IF sequence_number IS NULL THEN
            PERFORM streams._raise('22023', 'ValidationException',
                format('SequenceNumber is required for ShardIteratorType %s', shard_iterator_type));
        END IF;
        pos := streams._parse_seq(sequence_number);
        lsn := pos.lsn;
        idx := CASE shard_iterator_type WHEN 'AT_SEQUENCE_NUMBER' THEN pos.idx - 1 ELSE pos.idx END;
    ELSIF sequence_number IS NOT NULL THEN
        PERFORM streams._raise('22023', 'ValidationException',
            format('SequenceNumber must not be given for ShardIteratorType %s', shard_iterator_type));
    ELSIF shard_iterator_type = 'TRIM_HORIZON' THEN
        lsn := 0; idx := -1;
    ELSE
        -- LATEST: after everything committed so far.
        lsn := (pg_current_wal_insert_lsn() - '0/0')::bigint; idx := -1;
    END IF;
    RETURN translate(encode(convert_to(format('pgs1:%s:%s:%s:%s', s.stream_id, shard, lsn, idx), 'UTF8'), 'base64'), E'\n', '');
END $$;
COMMENT ON FUNCTION streams.get_shard_iterator(text, text, text, text) IS
    'Returns an iterator into one shard of a stream (DynamoDB GetShardIterator).';

CREATE FUNCTION streams.get_records(shard_iterator text, "limit" integer DEFAULT 1000) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    parts   text[];
    s       streams.stream;
    p_shard integer;
    p_lsn   bigint;
    p_idx   integer;
    records jsonb;
    last_lsn bigint;
    last_idx integer;
    next_it text;
BEGIN
    BEGIN
        parts := regexp_match(convert_from(decode(shard_iterator, 'base64'), 'UTF8'),
                              '^pgs1:([0-9]+):([0-9]+):([0-9]+):(-?[0-9]+)$');
        -- The numbers must fit their types (an iterator may be forged).
        PERFORM parts[1]::integer;
        p_shard := parts[2]::integer; p_lsn := parts[3]::bigint; p_idx := parts[4]::integer;
    EXCEPTION WHEN OTHERS THEN
        parts := NULL;
    END;
    IF parts IS NULL THEN
        PERFORM streams._raise('22023', 'ValidationException',
            format('Invalid ShardIterator: %s', coalesce(shard_iterator, 'null')));
    END IF;
    IF "limit" IS NULL OR "limit" < 1 OR "limit" > 1000 THEN
        PERFORM streams._raise('22023', 'ValidationException',
            format('1 validation error detected: Value %s at ''limit'' failed to satisfy constraint: Member must have value between 1 and 1000',
                   coalesce("limit"::text, 'null')));
    END IF;
    SELECT * INTO s FROM streams.stream st WHERE st.stream_id = parts[1]::integer;
    IF NOT FOUND THEN
        PERFORM streams._raise('42704', 'ResourceNotFoundException',
            'Requested resource not found: the stream of this iterator no longer exists');
    END IF;
    PERFORM streams._check_read(s);
    IF p_shard >= s.shard_count THEN
        PERFORM streams._raise('22023', 'ValidationException', format('Invalid ShardIterator: %s', shard_iterator));
    END IF;

    -- GetRecords' record has no eventSourceARN (Lambda adds it to the events
    -- it sends; so do the dispatchers).
    SELECT jsonb_agg(streams._full_record(r.record, r.lsn, r.idx)::jsonb - 'eventSourceARN' ORDER BY r.lsn, r.idx),
           (array_agg(r.lsn ORDER BY r.lsn DESC, r.idx DESC))[1],
           (array_agg(r.idx ORDER BY r.lsn DESC, r.idx DESC))[1]
      INTO records, last_lsn, last_idx
    FROM (SELECT u.lsn, u.idx, u.record FROM streams.record_batch b
          CROSS JOIN LATERAL unnest(b.lsns, b.idxs, b.records) WITH ORDINALITY AS u(lsn, idx, record, ord)
          WHERE b.stream_id = s.stream_id AND b.shard = p_shard
            AND (b.last_lsn, b.last_idx) > (p_lsn, p_idx)
            AND (u.lsn, u.idx) > (p_lsn, p_idx)
          ORDER BY b.last_lsn, b.last_idx, u.ord
          LIMIT "limit") r;
    IF records IS NOT NULL THEN
        p_lsn := last_lsn; p_idx := last_idx;
    END IF;
    IF records IS NULL AND s.status = 'DISABLED' THEN
        next_it := NULL;   -- a closed shard, read to its end
    ELSE
        next_it := translate(encode(convert_to(format('pgs1:%s:%s:%s:%s', s.stream_id, p_shard, p_lsn, p_idx), 'UTF8'), 'base64'), E'\n', '');
    END IF;
    RETURN jsonb_build_object('Records', coalesce(records, '[]'::jsonb), 'NextShardIterator', next_it);
END $$;
COMMENT ON FUNCTION streams.get_records(text, integer) IS
    'Reads up to "limit" (1..1000) records from a shard iterator (DynamoDB GetRecords).';

