--------------------------------------------------------------------------
-- Backfill: an INSERT record for every row a table already holds
--------------------------------------------------------------------------
--
-- CALL streams.backfill(tbl) reads the table in chunks of key ranges; each
-- chunk is one transaction that locks its rows (FOR SHARE), writes each
-- row to WAL as a logical message (streams._backfill_emit) and commits. The
-- output plugin turns the messages into INSERT records carrying
-- userIdentity {"type":"Service","principalId":"pg_streams.backfill"}, at
-- the chunk's commit position. While a chunk holds its rows no transaction
-- can change them, and every change committed before it is in the rows it
-- read: so no change of a key can sit in the stream between the version a
-- backfill record shows and the record itself (see README, Backfill).

CREATE TABLE streams.backfill_job (
    job_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id     integer     NOT NULL,
    relid         oid         NOT NULL,
    table_name    text        NOT NULL,
    owner         regrole     NOT NULL,   -- the role that started it
    status        text        NOT NULL
        CHECK (status IN ('RUNNING', 'CANCELLING', 'CANCELLED', 'DONE', 'ABANDONED')),
    chunk_size    integer     NOT NULL,
    last_key      jsonb,                  -- key of the last chunk's upper bound (NULL: none done yet)
    rows_done     bigint      NOT NULL DEFAULT 0,
    rows_total    bigint,                 -- rows counted when the job started
    chunks        bigint      NOT NULL DEFAULT 0,
    started_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    pid           integer,                -- the session working on it
    backend_start timestamptz
);
-- One unfinished backfill per stream: a new call resumes it.
CREATE UNIQUE INDEX backfill_job_one_open ON streams.backfill_job (stream_id)
    WHERE status IN ('RUNNING', 'CANCELLING', 'CANCELLED');
REVOKE ALL ON streams.backfill_job FROM PUBLIC;

-- A chunk's grant to the output plugin (src/decoder/backfill.hpp): inserted
-- when the chunk starts, deleted when it ends, in the chunk's transaction
-- (so the job row is not locked while the chunk reads).
CREATE TABLE streams.backfill_grant (
    job_id      bigint  NOT NULL,
    stream_id   integer NOT NULL,
    chunk_token bigint  NOT NULL
);
REVOKE ALL ON streams.backfill_grant FROM PUBLIC;

CREATE FUNCTION streams._backfill_authorize(tbl oid) RETURNS bigint
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'pgs_backfill_authorize';
COMMENT ON FUNCTION streams._backfill_authorize(oid) IS
    'Internal: lets this transaction emit backfill rows of tbl; returns the token its messages carry.';
REVOKE ALL ON FUNCTION streams._backfill_authorize(oid) FROM PUBLIC;

-- Called by streams.backfill's chunk query, as the caller; refuses unless
-- streams._backfill_chunk_begin granted this transaction the row's table.
CREATE FUNCTION streams._backfill_emit(r record) RETURNS integer
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'pgs_backfill_emit';
COMMENT ON FUNCTION streams._backfill_emit(record) IS
    'Internal: writes one row of a backfill chunk to WAL for the output plugin.';

-- Whether another session is working on job j right now.
CREATE FUNCTION streams._backfill_live(j streams.backfill_job) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT j.pid IS NOT NULL AND j.pid <> pg_backend_pid()
           AND EXISTS (SELECT 1 FROM pg_stat_activity a
                       WHERE a.pid = j.pid AND a.backend_start = j.backend_start AND a.state = 'active')
$$;

-- Checks that the caller may backfill table tbl; returns its enabled stream.
CREATE FUNCTION streams._backfill_check(tbl oid) RETURNS streams.stream
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    caller oid := streams._caller();
    c      pg_class;
    s      streams.stream;
BEGIN
    SELECT * INTO c FROM pg_class WHERE oid = tbl;
    IF NOT FOUND THEN
        PERFORM streams._raise('42704', 'ResourceNotFoundException',
            format('Requested resource not found: Table: %s not found', tbl));
    END IF;
    -- A backfill adds records every reader and mapping of the stream sees,
    -- and locks rows: the table owner's right, as enabling the stream is.
    IF NOT pg_has_role(caller, c.relowner, 'USAGE') THEN
        PERFORM streams._raise('42501', 'AccessDeniedException',
            format('must be owner of table %s to backfill its stream', tbl::regclass));
    END IF;
    SELECT * INTO s FROM streams.stream st WHERE st.relid = tbl AND st.status = 'ENABLED';
    IF NOT FOUND THEN
        PERFORM streams._raise('55000', 'ResourceNotFoundException',
            format('table %s has no enabled stream', tbl::regclass),
            'streams.enable_stream turns it on; backfill the table itself, not one of its partitions.');
    END IF;
    IF streams._rls_applies(tbl, caller) THEN
        PERFORM streams._raise('42501', 'AccessDeniedException',
            format('table %s has row-level security that applies to role %s: a backfill would leave out the rows its policies hide',
                   tbl::regclass, (SELECT quote_ident(rolname) FROM pg_roles WHERE oid = caller)),
            'Backfill as a role the policies do not apply to (the owner without FORCE ROW LEVEL SECURITY, or BYPASSRLS).');
    END IF;
    RETURN s;
END $$;
REVOKE ALL ON FUNCTION streams._backfill_check(oid) FROM PUBLIC;

-- Starts or resumes the backfill of tbl; returns the job and the SQL the
-- procedure runs (as the caller) for each chunk.
CREATE FUNCTION streams._backfill_start(tbl regclass, chunk_size integer, restart boolean) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    caller oid := streams._caller();
    s      streams.stream;
    j      streams.backfill_job;
    cols   text;
    lo     text;
    hi     text;
    src    text;
BEGIN
    IF tbl IS NULL THEN
        PERFORM streams._raise('22004', 'ValidationException', 'tbl must not be null');
    END IF;
    IF chunk_size IS NULL OR chunk_size NOT BETWEEN 1 AND 100000 THEN
        PERFORM streams._raise('22023', 'ValidationException',
            format('chunk_size must be between 1 and 100000, got %s', coalesce(chunk_size::text, 'null')));
    END IF;
    IF restart IS NULL THEN
        PERFORM streams._raise('22004', 'ValidationException', 'restart must not be null');
    END IF;
    s := streams._backfill_check(tbl);

    SELECT * INTO j FROM streams.backfill_job b
    WHERE b.stream_id = s.stream_id AND b.status IN ('RUNNING', 'CANCELLING', 'CANCELLED') FOR UPDATE;
    IF FOUND THEN
        IF streams._backfill_live(j) THEN
            PERFORM streams._raise('55006', 'ResourceInUseException',
                format('a backfill of %s is running in process %s', tbl, j.pid),
                'streams.cancel_backfill stops it after its current chunk.');
        END IF;
        IF restart THEN
            UPDATE streams.backfill_job SET status = 'ABANDONED', pid = NULL, finished_at = clock_timestamp(),
                   updated_at = clock_timestamp()
             WHERE job_id = j.job_id;
            j := NULL;
        ELSE
            UPDATE streams.backfill_job
               SET status = 'RUNNING', chunk_size = _backfill_start.chunk_size, pid = pg_backend_pid(), owner = caller,
                   backend_start = (SELECT a.backend_start FROM pg_stat_activity a WHERE a.pid = pg_backend_pid()),
                   updated_at = clock_timestamp()
             WHERE job_id = j.job_id RETURNING * INTO j;
            RAISE NOTICE 'pg_streams: resuming the backfill of % (job %) after % rows', tbl, j.job_id, j.rows_done;
        END IF;
    END IF;
    IF j.job_id IS NULL THEN
        INSERT INTO streams.backfill_job (stream_id, relid, table_name, owner, status, chunk_size, started_at,
                                          updated_at, pid, backend_start)
        VALUES (s.stream_id, tbl, tbl::text, caller, 'RUNNING', chunk_size, clock_timestamp(), clock_timestamp(),
                pg_backend_pid(), (SELECT a.backend_start FROM pg_stat_activity a WHERE a.pid = pg_backend_pid()))
        RETURNING * INTO j;
    END IF;

    -- Chunks are key ranges (lo, hi] in key order; keys travel as jsonb
    -- arrays (ISO dates whatever DateStyle says).
    SELECT string_agg(format('t.%I', k), ', ' ORDER BY o),
           string_agg(format('($1->>%s)::%s', o - 1, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY o),
           string_agg(format('($2->>%s)::%s', o - 1, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY o)
      INTO cols, lo, hi
    FROM unnest(s.key_columns) WITH ORDINALITY AS u(k, o)
    JOIN pg_attribute a ON a.attrelid = tbl AND a.attname = u.k AND NOT a.attisdropped;
    IF cols IS NULL OR (SELECT count(*) FROM pg_attribute a
                        WHERE a.attrelid = tbl AND a.attname = ANY (s.key_columns) AND NOT a.attisdropped)
                       <> cardinality(s.key_columns) THEN
        PERFORM streams._raise('55000', 'ValidationException',
            format('the key columns of the stream of %s (%s) are no longer columns of the table', tbl, s.key_columns));
    END IF;
    src := format('%s%s t', CASE WHEN (SELECT relkind FROM pg_class WHERE oid = tbl) = 'r' THEN 'ONLY ' ELSE '' END, tbl);
    RETURN jsonb_build_object(
        'job_id', j.job_id, 'last_key', j.last_key, 'rows_done', j.rows_done, 'rows_total', j.rows_total,
        'count', format('SELECT count(*) FROM %s', src),
        -- The upper bound of the next chunk: the key chunk_size rows on (none: the rest is the last chunk).
        'bound_first', format('SELECT jsonb_build_array(%s) FROM %s ORDER BY %s OFFSET $2 LIMIT 1', cols, src, cols),
        'bound_next', format('SELECT jsonb_build_array(%s) FROM %s WHERE ROW(%s) > ROW(%s) ORDER BY %s OFFSET $2 LIMIT 1',
                             cols, src, cols, lo, cols),
        -- The rows of a chunk, locked, each written to WAL once (OFFSET 0:
        -- emitted above the lock, so a row re-read after a concurrent
        -- update is emitted once, in its latest version).
        'chunk_head', format('SELECT count(streams._backfill_emit(c.t)) FROM (SELECT t FROM %s WHERE ', src),
        'chunk_tail', ' OFFSET 0 FOR SHARE OF t) c',
        'lo', format('ROW(%s) > ROW(%s)', cols, lo),
        'hi', format('ROW(%s) <= ROW(%s)', cols, hi));
END $$;

CREATE FUNCTION streams._backfill_job_of(job bigint) RETURNS streams.backfill_job
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j streams.backfill_job;
BEGIN
    SELECT * INTO j FROM streams.backfill_job b WHERE b.job_id = job;
    -- A job belongs to its table: whoever may backfill the table may work on it.
    IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM pg_class c
                                WHERE c.oid = j.relid AND pg_has_role(streams._caller(), c.relowner, 'USAGE')) THEN
        PERFORM streams._raise('42704', 'ResourceNotFoundException', format('backfill job %s not found', job));
    END IF;
    RETURN j;
END $$;
REVOKE ALL ON FUNCTION streams._backfill_job_of(bigint) FROM PUBLIC;

CREATE FUNCTION streams._backfill_set_total(job bigint, total bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j streams.backfill_job := streams._backfill_job_of(job);
BEGIN
    UPDATE streams.backfill_job SET rows_total = total WHERE job_id = j.job_id AND rows_total IS NULL;
END $$;

-- Before a chunk: false when the job is to stop (cancelled); otherwise
-- grants this transaction the table's rows. The grant row is written first:
-- the output plugin trusts the chunk's messages only after this change. The
-- job row is not locked here (cancel_backfill and a second backfill call
-- would wait for the whole chunk).
CREATE FUNCTION streams._backfill_chunk_begin(job bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j     streams.backfill_job := streams._backfill_job_of(job);
    token bigint;
BEGIN
    IF j.pid IS DISTINCT FROM pg_backend_pid() THEN
        PERFORM streams._raise('55006', 'ResourceInUseException',
            format('backfill job %s is no longer run by this session (process %s took it over)', job, coalesce(j.pid::text, 'none')));
    END IF;
    IF j.status = 'CANCELLING' THEN
        UPDATE streams.backfill_job SET status = 'CANCELLED', pid = NULL, updated_at = clock_timestamp()
         WHERE job_id = j.job_id AND status = 'CANCELLING';
        RETURN false;
    END IF;
    IF j.status <> 'RUNNING' THEN
        PERFORM streams._raise('55000', 'ValidationException', format('backfill job %s is %s', job, j.status));
    END IF;
    -- Still the owner, still the same stream.
    IF (streams._backfill_check(j.relid)).stream_id IS DISTINCT FROM j.stream_id THEN
        PERFORM streams._raise('55000', 'ValidationException',
            format('the stream of %s changed during its backfill: start a new one (restart => true)', j.table_name));
    END IF;
    token := streams._backfill_authorize(j.relid);
    INSERT INTO streams.backfill_grant VALUES (j.job_id, j.stream_id, token);
    RETURN true;
END $$;

-- After a chunk (rows: how many it emitted, hi: its upper bound, NULL for
-- the last): the progress commits with the chunk's records.
CREATE FUNCTION streams._backfill_chunk_end(job bigint, hi jsonb, rows bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j streams.backfill_job := streams._backfill_job_of(job);
BEGIN
    DELETE FROM streams.backfill_grant g WHERE g.job_id = j.job_id;
    UPDATE streams.backfill_job
       SET last_key = hi, rows_done = rows_done + rows, chunks = chunks + 1,
           updated_at = clock_timestamp(),
           status = CASE WHEN hi IS NULL THEN 'DONE' ELSE status END,
           pid = CASE WHEN hi IS NULL THEN NULL ELSE pid END,
           finished_at = CASE WHEN hi IS NULL THEN clock_timestamp() END
     WHERE job_id = j.job_id AND pid = pg_backend_pid() AND status IN ('RUNNING', 'CANCELLING')
    RETURNING rows_done INTO j.rows_done;
    IF NOT FOUND THEN
        PERFORM streams._raise('55006', 'ResourceInUseException',
            format('backfill job %s is no longer run by this session', job));
    END IF;
    RETURN j.rows_done;
END $$;

CREATE PROCEDURE streams.backfill(tbl regclass, chunk_size integer DEFAULT 1000, restart boolean DEFAULT false)
LANGUAGE plpgsql AS $$
DECLARE
    j       jsonb;
    job     bigint;
    lo      jsonb;
    hi      jsonb;
    n       bigint;
    done    bigint;
    total   bigint;
    noticed timestamptz := clock_timestamp();
BEGIN
    j := streams._backfill_start(tbl, chunk_size, restart);
    job := (j->>'job_id')::bigint;
    lo := CASE WHEN jsonb_typeof(j->'last_key') = 'array' THEN j->'last_key' END;
    done := (j->>'rows_done')::bigint;
    total := (j->>'rows_total')::bigint;
    IF total IS NULL THEN
        EXECUTE j->>'count' INTO total;
        PERFORM streams._backfill_set_total(job, total);
    END IF;
    COMMIT;
    RAISE NOTICE 'pg_streams: backfill of % (job %): % of % rows done', tbl, job, done, total;
    LOOP
        IF lo IS NULL THEN
            EXECUTE j->>'bound_first' INTO hi USING NULL::jsonb, chunk_size - 1;
        ELSE
            EXECUTE j->>'bound_next' INTO hi USING lo, chunk_size - 1;
        END IF;
        IF NOT streams._backfill_chunk_begin(job) THEN
            COMMIT;
            RAISE NOTICE 'pg_streams: backfill of % (job %) cancelled after % of % rows', tbl, job, done, total
                USING HINT = 'CALL streams.backfill again to resume it.';
            RETURN;
        END IF;
        EXECUTE concat(j->>'chunk_head', concat_ws(' AND ', CASE WHEN lo IS NOT NULL THEN j->>'lo' END,
                                                  CASE WHEN hi IS NOT NULL THEN j->>'hi' END, 'true'), j->>'chunk_tail')
            INTO n USING lo, hi;
        done := streams._backfill_chunk_end(job, hi, n);
        COMMIT;
        EXIT WHEN hi IS NULL;
        lo := hi;
        IF clock_timestamp() - noticed >= interval '10 seconds' THEN
            RAISE NOTICE 'pg_streams: backfill of % (job %): % of % rows done', tbl, job, done, total;
            noticed := clock_timestamp();
        END IF;
    END LOOP;
    RAISE NOTICE 'pg_streams: backfill of % (job %) done: % rows', tbl, job, done;
END $$;
COMMENT ON PROCEDURE streams.backfill(regclass, integer, boolean) IS
    'Puts an INSERT record (userIdentity pg_streams.backfill) for every row of tbl into its stream, in chunks; resumable; table owner only.';

-- Stops a running backfill after its current chunk (or marks a crashed one
-- cancelled). CALL streams.backfill resumes it.
CREATE FUNCTION streams.cancel_backfill(tbl regclass) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s streams.stream;
    j streams.backfill_job;
BEGIN
    IF tbl IS NULL THEN
        PERFORM streams._raise('22004', 'ValidationException', 'tbl must not be null');
    END IF;
    s := streams._backfill_check(tbl);
    SELECT * INTO j FROM streams.backfill_job b
    WHERE b.stream_id = s.stream_id AND b.status IN ('RUNNING', 'CANCELLING', 'CANCELLED') FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM streams._raise('42704', 'ResourceNotFoundException', format('no unfinished backfill of %s', tbl));
    END IF;
    IF j.status = 'RUNNING' THEN
        j.status := CASE WHEN streams._backfill_live(j) THEN 'CANCELLING' ELSE 'CANCELLED' END;
        UPDATE streams.backfill_job
           SET status = j.status, updated_at = clock_timestamp(),
               pid = CASE WHEN j.status = 'CANCELLED' THEN NULL ELSE pid END
         WHERE job_id = j.job_id;
    END IF;
    RETURN j.status;
END $$;
COMMENT ON FUNCTION streams.cancel_backfill(regclass) IS
    'Stops the backfill of tbl after its current chunk; CALL streams.backfill resumes it.';

-- Backfills the caller may see: those it started and those of tables whose
-- owner it is a member of.
CREATE VIEW streams.backfill_progress WITH (security_barrier) AS
SELECT b.job_id, b.table_name, st.stream_arn, b.status, b.rows_done, b.rows_total,
       CASE WHEN b.status = 'DONE' THEN 100.0
            WHEN b.rows_total > 0 THEN round(least(100.0, 100.0 * b.rows_done / b.rows_total), 1) END AS percent_done,
       b.chunks, b.chunk_size, streams._backfill_live(b) OR (b.pid = pg_backend_pid() AND b.status IN ('RUNNING', 'CANCELLING')) AS active,
       b.pid, b.started_at, b.updated_at, b.finished_at
FROM streams.backfill_job b
LEFT JOIN streams.stream st ON st.stream_id = b.stream_id
WHERE pg_has_role(b.owner, 'USAGE')
   OR EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = b.relid AND pg_has_role(c.relowner, 'USAGE'));
GRANT SELECT ON streams.backfill_progress TO PUBLIC;
COMMENT ON VIEW streams.backfill_progress IS
    'Backfills (streams.backfill) of tables the current role owns: status, rows done of total, whether a session runs it.';
