--------------------------------------------------------------------------
-- Dropping a table disables its stream (as deleting a DynamoDB table does);
-- the records stay readable until the retention period ends.
--------------------------------------------------------------------------

CREATE FUNCTION streams._on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE streams.stream s SET status = 'DISABLED', disabled_at = clock_timestamp()
    FROM pg_event_trigger_dropped_objects() d
    WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND d.objid = s.relid
      AND s.status = 'ENABLED';
    IF FOUND THEN
        PERFORM streams._invalidate();
    END IF;
END $$;
REVOKE ALL ON FUNCTION streams._on_sql_drop() FROM PUBLIC;

CREATE EVENT TRIGGER pg_streams_sql_drop ON sql_drop
    WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED')
    EXECUTE FUNCTION streams._on_sql_drop();
