--------------------------------------------------------------------------
-- Capture worker helpers (not for users)
--------------------------------------------------------------------------

-- Creates the storage segments covering [lo, hi] for one stream and returns
-- their width in seconds. NULL when the stream no longer exists (trimmed away
-- while capture lagged behind).
CREATE FUNCTION streams._ensure_segments(p_stream integer, lo timestamptz, hi timestamptz) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    width integer;
    b     bigint;
    lower timestamptz;
    name  text;
BEGIN
    SELECT bucket_seconds INTO width FROM streams.stream WHERE stream_id = p_stream;
    IF width IS NULL THEN
        RETURN NULL;
    END IF;
    b := floor(extract(epoch FROM lo) / width)::bigint * width;
    WHILE to_timestamp(b) <= hi LOOP
        lower := to_timestamp(b);
        IF NOT EXISTS (SELECT 1 FROM streams.segment WHERE stream_id = p_stream AND lower_bound = lower) THEN
            -- The appender computes this name itself (src/worker/segment_insert.cpp).
            name := format('record_%s_%s', p_stream, b);
            -- CREATE + ATTACH: attaching needs only SHARE UPDATE EXCLUSIVE on the
            -- stream's table, so open readers do not hold up capture.
            -- Rows up to 4080 bytes (two per page) stay in the row, compressed
            -- by the appender; only bigger ones go to the TOAST table.
            EXECUTE format('CREATE TABLE streams.%I (LIKE streams.record_batch INCLUDING ALL) WITH (toast_tuple_target = 4080)', name);
            EXECUTE format('ALTER TABLE streams.%I ATTACH PARTITION streams.%I FOR VALUES FROM (%L) TO (%L)',
                           'record_' || p_stream, name, lower, to_timestamp(b + width));
            EXECUTE format('ALTER EXTENSION pg_streams ADD TABLE streams.%I', name);
            INSERT INTO streams.segment VALUES (p_stream, lower, to_timestamp(b + width), name);
        END IF;
        b := b + width;
    END LOOP;
    RETURN width;
END $$;

-- Drops segments past their stream's retention, and disabled streams whose
-- retention has run out. Returns the seconds until the next segment expires.
CREATE FUNCTION streams._trim() RETURNS double precision
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    seg      record;
    next_due double precision;
BEGIN
    -- Dropping a segment locks its stream's table: never wait for readers,
    -- try again on the next round instead.
    SET LOCAL lock_timeout = '100ms';
    FOR seg IN SELECT g.stream_id, g.lower_bound, g.relname
               FROM streams.segment g JOIN streams.stream s USING (stream_id)
               WHERE g.upper_bound + s.retention <= now() LOOP
        BEGIN
            PERFORM streams._drop_storage(seg.relname);
            DELETE FROM streams.segment WHERE stream_id = seg.stream_id AND lower_bound = seg.lower_bound;
        EXCEPTION WHEN lock_not_available THEN
            NULL;
        END;
    END LOOP;
    FOR seg IN SELECT s.stream_id FROM streams.stream s
               WHERE s.status = 'DISABLED' AND s.disabled_at + s.retention <= now() LOOP
        BEGIN
            PERFORM streams._drop_storage('record_' || seg.stream_id);
            DELETE FROM streams.segment WHERE stream_id = seg.stream_id;
            DELETE FROM streams.stream WHERE stream_id = seg.stream_id;
        EXCEPTION WHEN lock_not_available THEN
            NULL;
        END;
    END LOOP;
    SELECT min(t) INTO next_due FROM (
        SELECT extract(epoch FROM g.upper_bound + s.retention - now()) AS t
        FROM streams.segment g JOIN streams.stream s USING (stream_id)
        UNION ALL
        SELECT extract(epoch FROM s.disabled_at + s.retention - now())
        FROM streams.stream s WHERE s.status = 'DISABLED') x;
    RETURN next_due;
END $$;

REVOKE ALL ON FUNCTION streams._ensure_segments(integer, timestamptz, timestamptz),
    streams._trim() FROM PUBLIC;

