--------------------------------------------------------------------------
-- C helpers
--------------------------------------------------------------------------

CREATE FUNCTION streams._caller() RETURNS oid
    LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'pgs_caller';
COMMENT ON FUNCTION streams._caller() IS
    'Internal: the role that called into pg_streams (outside SECURITY DEFINER).';

CREATE FUNCTION streams._capture_ready() RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'pgs_capture_ready';
COMMENT ON FUNCTION streams._capture_ready() IS
    'Internal: waits until this database''s capture slot exists; raises if it cannot.';

CREATE FUNCTION streams._invalidate() RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'pgs_invalidate';
COMMENT ON FUNCTION streams._invalidate() IS
    'Internal: makes the output plugin re-read stream configuration from this commit on.';

REVOKE ALL ON FUNCTION streams._caller(), streams._capture_ready(), streams._invalidate() FROM PUBLIC;

--------------------------------------------------------------------------
-- Internal SQL helpers
--------------------------------------------------------------------------

CREATE FUNCTION streams._raise(sqlstate text, aws_exception text, message text, hint text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = sqlstate, MESSAGE = message, DETAIL = aws_exception,
                          HINT = coalesce(hint, '');
END $$;

CREATE FUNCTION streams._seq(lsn bigint, idx integer) RETURNS text
LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
    SELECT '1' || lpad(lsn::text, 20, '0') || lpad(idx::text, 10, '0')
$$;

CREATE FUNCTION streams._parse_seq(seq text, OUT lsn bigint, OUT idx integer)
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF seq IS NULL OR seq !~ '^1[0-9]{30}$' OR substr(seq, 2, 20)::numeric > 9223372036854775807
       OR substr(seq, 22, 10)::bigint > 2147483647 THEN
        PERFORM streams._raise('22023', 'ValidationException',
            format('Invalid SequenceNumber: %s (expected the 31-digit SequenceNumber of a record of this stream)',
                   coalesce(seq, 'null')));
    END IF;
    lsn := substr(seq, 2, 20)::bigint;
    idx := substr(seq, 22, 10)::bigint::integer;
END $$;

CREATE FUNCTION streams._shard_id(stream streams.stream, shard integer) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT 'shardId-' || lpad(floor(extract(epoch FROM stream.created_at) * 1000)::bigint::text, 20, '0')
           || '-' || substr(md5(stream.stream_arn || '#' || shard), 1, 8)
$$;

CREATE FUNCTION streams._find_stream(stream_arn text) RETURNS streams.stream
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s streams.stream;
BEGIN
    SELECT * INTO s FROM streams.stream AS st WHERE st.stream_arn = _find_stream.stream_arn;
    IF NOT FOUND THEN
        PERFORM streams._raise('42704', 'ResourceNotFoundException',
            format('Requested resource not found: Stream: %s not found', coalesce(stream_arn, 'null')));
    END IF;
    RETURN s;
END $$;

-- Checks that the calling role may read the stream's table.
CREATE FUNCTION streams._check_read(s streams.stream) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    caller oid := streams._caller();
BEGIN
    IF EXISTS (SELECT 1 FROM pg_class WHERE oid = s.relid) THEN
        IF has_table_privilege(caller, s.relid, 'SELECT') THEN
            RETURN;
        END IF;
    ELSIF (SELECT rolsuper FROM pg_roles WHERE oid = caller) OR caller = s.owner THEN
        RETURN;  -- table dropped: its stream stays readable to its owner until trimmed
    END IF;
    PERFORM streams._raise('42501', 'AccessDeniedException',
        format('permission denied to read stream %s: SELECT on table %s is required', s.stream_arn, s.table_name));
END $$;

-- The replica identity of one relation, to restore it later.
CREATE FUNCTION streams._identity_of(rel oid) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object('rel', c.oid, 'ident', c.relreplident::text,
               'index', (SELECT quote_ident(ic.relname) FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                         WHERE i.indrelid = c.oid AND i.indisreplident))
    FROM pg_class c WHERE c.oid = rel
$$;

REVOKE ALL ON FUNCTION streams._raise(text, text, text, text), streams._parse_seq(text),
    streams._find_stream(text), streams._check_read(streams.stream), streams._identity_of(oid),
    streams._shard_id(streams.stream, integer), streams._seq(bigint, integer) FROM PUBLIC;

