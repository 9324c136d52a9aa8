--------------------------------------------------------------------------
-- The dispatcher pool of this database (pg_streams.dispatch_workers)
--------------------------------------------------------------------------

CREATE FUNCTION streams._dispatch_workers(OUT worker int, OUT pid int, OUT started_at timestamptz,
                                          OUT mappings int, OUT serving int, OUT busy_seconds double precision,
                                          OUT in_flight int)
    RETURNS SETOF record LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'pgs_dispatch_workers';
COMMENT ON FUNCTION streams._dispatch_workers() IS
    'Internal: the dispatcher workers of this database as shared memory has them (see streams.dispatch_worker_stats).';
CREATE FUNCTION streams._dispatch_assignments(OUT mapping_id int, OUT worker int, OUT pid int)
    RETURNS SETOF record LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'pgs_dispatch_assignments';
COMMENT ON FUNCTION streams._dispatch_assignments() IS
    'Internal: which dispatcher worker of this database serves which event source mapping (pid: the process holding it now).';

-- One row per dispatcher worker of this database: its process (NULL while it
-- is not running), how many mappings it is assigned and how many it runs now,
-- the time it spent working (not waiting) since it started, its HTTP requests
-- in flight, and the UUIDs of
-- its mappings that the current user may see.
CREATE VIEW streams.dispatch_worker_stats AS
SELECT w.worker,
       w.pid,
       w.started_at,
       w.mappings,
       w.serving,
       w.busy_seconds,
       w.in_flight,
       coalesce((SELECT array_agg(m.uuid ORDER BY m.mapping_id)
                 FROM streams._dispatch_assignments() a
                 JOIN streams.event_source_mapping m USING (mapping_id)
                 WHERE a.worker = w.worker AND pg_has_role(m.owner, 'USAGE')), '{}') AS mapping_uuids
FROM streams._dispatch_workers() w;
COMMENT ON VIEW streams.dispatch_worker_stats IS
    'Per dispatcher worker of this database (pg_streams.dispatch_workers): process, mappings assigned and being served, busy time, HTTP requests in flight, and the UUIDs of the mappings of roles the current user is a member of.';
GRANT SELECT ON streams.dispatch_worker_stats TO PUBLIC;
