--------------------------------------------------------------------------
-- Observability (CloudWatch metrics of event source mappings)
--------------------------------------------------------------------------

CREATE VIEW streams.event_source_mapping_stats AS
SELECT m.uuid,
       m.function_name,
       m.event_source_arn,
       m.state,
       m.last_result                 AS last_processing_result,
       max(ms.iterator_age_ms)       AS iterator_age_ms,
       sum(ms.records_read)          AS records_read,
       sum(ms.records_filtered)      AS records_filtered,
       sum(ms.records_delivered)     AS records_delivered,
       sum(ms.records_failed)        AS records_failed,
       sum(ms.invocations)           AS invocations,
       sum(ms.function_errors)       AS function_errors,
       sum(ms.retries)               AS retries,
       sum(ms.bisects)               AS bisects,
       sum(ms.failed_batches)        AS failed_batches,
       sum(ms.discarded_batches)     AS discarded_batches,
       sum(ms.throttles)             AS throttles,
       (array_agg(ms.last_error ORDER BY ms.last_error_at DESC NULLS LAST))[1] AS last_error,
       max(ms.last_error_at)         AS last_error_at,
       max(ms.last_invoke_at)        AS last_invoke_at,
       -- A shard waiting for a retry (backoff, throttle, unreachable target)
       -- tries again at retry_at; NULL when no shard is waiting.
       min(ms.retry_at)              AS next_attempt_at,
       -- The oldest shard retrying one batch: failing since.
       min(ms.blocked_since)         AS blocked_since,
       -- TumblingWindowInSeconds: shards with a window open, the oldest one's start.
       count(ms.window_start)        AS open_windows,
       min(ms.window_start)          AS oldest_open_window,
       sum(b.backlog)                AS backlog,
       jsonb_object_agg(coalesce(streams._shard_id(s, ms.shard), ms.shard::text), b.backlog) AS backlog_per_shard
FROM streams.event_source_mapping m
JOIN streams.mapping_shard ms USING (mapping_id)
LEFT JOIN streams.stream s ON s.stream_id = m.stream_id
CROSS JOIN LATERAL (
    -- Whole rows after the checkpoint count by n_records; the row holding the
    -- checkpoint (and rows older than AT_TIMESTAMP) are unpacked.
    SELECT coalesce(sum(CASE WHEN (r.first_lsn, r.first_idx) > (ms.ck_lsn, ms.ck_idx)
                                  AND (m.starting_timestamp IS NULL OR r.arrival >= m.starting_timestamp)
                             THEN r.n_records
                             ELSE (SELECT count(*) FROM unnest(r.lsns, r.idxs, r.arrivals) AS u(lsn, idx, arrival)
                                   WHERE (u.lsn, u.idx) > (ms.ck_lsn, ms.ck_idx)
                                     AND (m.starting_timestamp IS NULL OR u.arrival >= m.starting_timestamp)) END),
                    0)::bigint AS backlog
    FROM streams.record_batch r
    WHERE r.stream_id = m.stream_id AND r.shard = ms.shard AND (r.last_lsn, r.last_idx) > (ms.ck_lsn, ms.ck_idx)) b
WHERE pg_has_role(m.owner, 'USAGE')
GROUP BY m.mapping_id;
COMMENT ON VIEW streams.event_source_mapping_stats IS
    'Per event source mapping: IteratorAge (ms), record and invocation counters, last error, when the next retry is due (next_attempt_at), backlog per shard. Shows the mappings of roles the current user is a member of.';
GRANT SELECT ON streams.event_source_mapping_stats TO PUBLIC;
-- The view computes shard ids for whoever reads it.
GRANT EXECUTE ON FUNCTION streams._shard_id(streams.stream, integer) TO PUBLIC;

-- Capture of this database: how far its replication slot trails the WAL,
-- in bytes and in seconds. caught_up_at: the capture worker had captured
-- every change committed before then (it notes this at least once a second
-- while it keeps up, idle or not); lag_seconds: the time since, so it stays
-- near 0 while capture keeps up and grows while capture is behind or stopped.
CREATE FUNCTION streams._capture_progress(OUT caught_up_at timestamptz, OUT last_commit_at timestamptz)
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'pgs_capture_progress';
COMMENT ON FUNCTION streams._capture_progress() IS
    'Internal: what this database''s capture worker last reported (see streams.capture_lag).';

CREATE VIEW streams.capture_lag AS
SELECT n.slot_name,
       coalesce(s.active, false)                              AS active,
       (pg_current_wal_lsn() - s.confirmed_flush_lsn)::bigint AS lag_bytes,
       greatest(0, extract(epoch FROM clock_timestamp() - p.caught_up_at))::double precision AS lag_seconds,
       p.caught_up_at,
       p.last_commit_at                                       AS last_captured_commit_at,
       (pg_current_wal_lsn() - s.restart_lsn)::bigint         AS retained_wal_bytes,
       s.wal_status,
       s.safe_wal_size
FROM (SELECT 'pg_streams_' || d.oid AS slot_name FROM pg_database d WHERE d.datname = current_database()) n
LEFT JOIN pg_replication_slots s ON s.slot_name = n.slot_name
CROSS JOIN streams._capture_progress() p;
COMMENT ON VIEW streams.capture_lag IS
    'Capture of this database: lag of its replication slot behind the WAL in bytes and seconds, when it last caught up, the commit time of the last captured transaction, WAL kept for the slot.';
GRANT SELECT ON streams.capture_lag TO PUBLIC;
