-- Helper functions of test/bench/bench.sh, created in the benchmark database
-- (schema public) before any measured WAL is written. They only read.

-- Runs a query returning one bigint and times it on the server (no client
-- round trip in the figure).
CREATE FUNCTION bench_time(q text, OUT seconds double precision, OUT n bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
BEGIN
    EXECUTE q INTO n;
    seconds := extract(epoch FROM clock_timestamp() - t0);
END $$;

-- Waits until the slot's confirmed_flush_lsn reaches target; returns the
-- clock_timestamp() at which that was seen (NULL on timeout). Polls shared
-- memory every 5 ms, which costs next to nothing.
--
-- The capture worker confirms the end LSN of its last appended transaction
-- after each append commit, and the WAL position it has read whenever it has
-- nothing left to append: confirmed >= target means every transaction that
-- committed before target is in streams.record.
CREATE FUNCTION bench_wait_confirmed(slot name, target pg_lsn, timeout_s double precision)
RETURNS timestamptz LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + make_interval(secs => timeout_s);
BEGIN
    LOOP
        IF (SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = slot) >= target THEN
            RETURN clock_timestamp();
        END IF;
        IF clock_timestamp() > deadline THEN
            RETURN NULL;
        END IF;
        PERFORM pg_sleep(0.005);
    END LOOP;
END $$;

-- Visibility poller: for `seconds`, every `interval_s`, fetches the records of
-- stream `sid` that were not visible at the previous poll. Each row carries
-- the source commit time (arrival) and `seen`, the clock_timestamp() taken
-- right before the snapshot in which it was first visible. The record became
-- visible in (previous poll, seen]. VOLATILE: in READ COMMITTED each query
-- takes a new snapshot. It writes nothing, so it gets no transaction id.
-- Appends are sequential (one capture worker, commit-LSN order), so "lsn
-- greater than the greatest seen so far" finds exactly the new records.
CREATE FUNCTION bench_poll(sid integer, nshards integer, seconds double precision, interval_s double precision)
RETURNS TABLE (arrival timestamptz, seen timestamptz, poll_no integer)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    last_lsn bigint := -1;
    stop     timestamptz := clock_timestamp() + make_interval(secs => seconds);
    shards   integer[] := ARRAY(SELECT generate_series(0, nshards - 1));
    t        timestamptz;
    arr      timestamptz[];
    m        bigint;
    polls    integer := 0;
BEGIN
    LOOP
        t := clock_timestamp();
        EXIT WHEN t >= stop;
        polls := polls + 1;
        SELECT array_agg(r.arrival), max(r.lsn) INTO arr, m
        FROM streams.record r
        WHERE r.stream_id = sid AND r.shard = ANY (shards) AND r.lsn > last_lsn;
        IF m IS NOT NULL THEN
            last_lsn := m;
            RETURN QUERY SELECT a, t, polls FROM unnest(arr) AS a;
        END IF;
        PERFORM pg_sleep(interval_s);
    END LOOP;
    -- One last row carrying the number of polls (arrival NULL).
    RETURN QUERY SELECT NULL::timestamptz, clock_timestamp(), polls;
END $$;

-- What the processes of backend_type `btype` in database `db` (and, when
-- `app` is given, of that application_name) wait on: samples pg_stat_activity
-- every interval_s for `seconds` and counts, per process and sample, the wait
-- event ('CPU' when active without a wait event). Writes nothing. Result:
-- "wait count" lines.
CREATE PROCEDURE bench_waits(db name, btype text, app text, seconds double precision, interval_s double precision,
                             INOUT result text DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    stop  timestamptz := clock_timestamp() + make_interval(secs => seconds);
    seen  text[] := '{}';
BEGIN
    WHILE clock_timestamp() < stop LOOP
        seen := seen || ARRAY(
            SELECT CASE WHEN a.wait_event IS NULL THEN 'CPU' ELSE a.wait_event_type || ':' || a.wait_event END
            FROM pg_stat_activity a
            WHERE a.datname = db AND a.backend_type = btype AND (app IS NULL OR a.application_name = app));
        -- No snapshot held between samples: a sampler that kept one for the
        -- whole run would keep pgbench's dead row versions from being pruned
        -- and slow it down.
        COMMIT;
        PERFORM pg_sleep(interval_s);
        COMMIT;
    END LOOP;
    SELECT string_agg(w || ' ' || n, E'\n' ORDER BY n DESC) INTO result
    FROM (SELECT w, count(*) AS n FROM unnest(seen) AS w GROUP BY w) s;
END $$;

-- Watches event source mapping `mid` (part 4) until its records_delivered
-- reaches `target` or `timeout_s` has passed. Every `interval_s` it reads the
-- slot's confirmed_flush_lsn and the mapping's counters and state, and keeps a
-- sample whenever one of them changed: CSV lines "t,confirmed,delivered,
-- invocations,function_errors,state" (t = clock_timestamp() in epoch seconds,
-- taken after the reads, so a change is stamped at most one interval late;
-- confirmed as a number). A procedure that commits after every poll: it holds
-- no snapshot between polls, so it keeps no dead row versions of
-- streams.mapping_shard (updated by the dispatcher after every batch) alive.
-- It never gets a transaction id and writes no WAL.
CREATE PROCEDURE bench_esm_watch(mid integer, slot name, target bigint, timeout_s double precision,
                                 interval_s double precision, INOUT samples text DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    deadline  timestamptz := clock_timestamp() + make_interval(secs => timeout_s);
    v_conf    numeric;
    v_del     bigint;
    v_inv     bigint;
    v_err     bigint;
    v_state   text;
    cur       text;
    prev      text := '';
    lines     text[] := '{}';
    ts        timestamptz;
BEGIN
    LOOP
        SELECT s.confirmed_flush_lsn - '0/0'::pg_lsn INTO v_conf FROM pg_replication_slots s WHERE s.slot_name = slot;
        SELECT sum(ms.records_delivered), sum(ms.invocations), sum(ms.function_errors) INTO v_del, v_inv, v_err
        FROM streams.mapping_shard ms WHERE ms.mapping_id = mid;
        SELECT m.state INTO v_state FROM streams.event_source_mapping m WHERE m.mapping_id = mid;
        ts := clock_timestamp();
        cur := concat_ws(',', v_conf, v_del, v_inv, v_err, v_state);
        IF cur <> prev THEN
            lines := lines || (extract(epoch FROM ts)::text || ',' || cur);
            prev := cur;
        END IF;
        EXIT WHEN v_del >= target OR ts > deadline;
        COMMIT;
        PERFORM pg_sleep(interval_s);
        COMMIT;
    END LOOP;
    samples := array_to_string(lines, E'\n');
END $$;


-- Returns when mapping `mid` has moved its checkpoints past every stored
-- record of its stream (filtered records included), or NULL after timeout_s.
CREATE FUNCTION bench_wait_drained(mid int, timeout_s double precision)
RETURNS timestamptz LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + make_interval(secs => timeout_s);
BEGIN
    LOOP
        IF NOT EXISTS (SELECT 1 FROM streams.mapping_shard ms JOIN streams.event_source_mapping m USING (mapping_id)
                       WHERE m.mapping_id = mid AND EXISTS (
                           SELECT 1 FROM streams.record_batch r WHERE r.stream_id = m.stream_id AND r.shard = ms.shard
                           AND (r.last_lsn, r.last_idx) > (ms.ck_lsn, ms.ck_idx))) THEN
            RETURN clock_timestamp();
        END IF;
        IF clock_timestamp() > deadline THEN
            RETURN NULL;
        END IF;
        PERFORM pg_sleep(0.005);
    END LOOP;
END $$;
