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

-- Whether row-level security policies apply to role on table rel (as
-- PostgreSQL's check_enable_rls decides: RLS enabled, the role neither a
-- superuser nor BYPASSRLS, and not the table's owner unless FORCE is set).
CREATE FUNCTION streams._rls_applies(rel oid, role oid) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.relrowsecurity
           AND NOT EXISTS (SELECT 1 FROM pg_roles a WHERE a.oid = role AND (a.rolsuper OR a.rolbypassrls))
           AND (c.relforcerowsecurity OR NOT pg_has_role(role, c.relowner, 'USAGE'))
    FROM pg_class c WHERE c.oid = rel
$$;

-- Why role may not read the stream s (NULL: it may). Reading a stream takes
-- SELECT on its table and USAGE on the table's schema; a table with
-- row-level security is refused to every role its policies apply to (the
-- records hold whole rows: they cannot be filtered by policy). Once the table
-- is dropped, its stream stays readable to its owner and superusers until trimmed.
CREATE FUNCTION streams._read_problem(s streams.stream, role oid) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c pg_class;
BEGIN
    SELECT * INTO c FROM pg_class WHERE oid = s.relid;
    IF NOT FOUND THEN
        IF (SELECT rolsuper FROM pg_roles WHERE oid = role) OR role = s.owner THEN
            RETURN NULL;
        END IF;
        RETURN format('permission denied to read stream %s: its table %s was dropped', s.stream_arn, s.table_name);
    END IF;
    IF NOT has_table_privilege(role, s.relid, 'SELECT') THEN
        RETURN format('permission denied to read stream %s: SELECT on table %s is required', s.stream_arn, s.table_name);
    END IF;
    IF NOT has_schema_privilege(role, c.relnamespace, 'USAGE') THEN
        RETURN format('permission denied to read stream %s: USAGE on schema %s is required',
                      s.stream_arn, c.relnamespace::regnamespace);
    END IF;
    IF streams._rls_applies(s.relid, role) THEN
        RETURN format('permission denied to read stream %s: table %s has row-level security that applies to role %s',
                      s.stream_arn, s.table_name, (SELECT quote_ident(rolname) FROM pg_roles WHERE oid = role));
    END IF;
    RETURN NULL;
END $$;

-- Checks that the calling role may read the stream's table.
CREATE FUNCTION streams._check_read(s streams.stream) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    problem text := streams._read_problem(s, streams._caller());
BEGIN
    IF problem IS NOT NULL THEN
        PERFORM streams._raise('42501', 'AccessDeniedException', problem,
            CASE WHEN problem LIKE '%row-level security%'
                 THEN 'Streams hold whole rows: they are not filtered by policies. Read them as the table owner or a BYPASSRLS role.' END);
    END IF;
END $$;

-- The replica identity of one relation, to restore it later. The name lets
-- a restored stream find the relation again (OIDs differ after a restore).
CREATE FUNCTION streams._identity_of(rel oid) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object('rel', c.oid, 'name', c.oid::regclass::text, 'ident', c.relreplident::text,
               'index', (SELECT quote_ident(ic.relname) FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                         WHERE i.indrelid = c.oid AND i.indisreplident))
    FROM pg_class c WHERE c.oid = rel
$$;

REVOKE ALL ON FUNCTION streams._raise(text, text, text, text), streams._parse_seq(text),
    streams._find_stream(text), streams._check_read(streams.stream), streams._identity_of(oid),
    streams._rls_applies(oid, oid), streams._read_problem(streams.stream, oid),
    streams._shard_id(streams.stream, integer), streams._seq(bigint, integer) FROM PUBLIC;

