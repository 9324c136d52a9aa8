-- pg_streams 0.1.0: DynamoDB-style streams of committed row changes.
\echo Use "CREATE EXTENSION pg_streams" to load this file. \quit

GRANT USAGE ON SCHEMA streams TO PUBLIC;

--------------------------------------------------------------------------
-- Storage
--------------------------------------------------------------------------

-- One row per stream, enabled or disabled-but-retained. The output plugin
-- reads this table while decoding, under historic snapshots, so it must be a
-- user catalog table.
CREATE TABLE streams.stream (
    stream_id      integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    relid          regclass    NOT NULL,
    table_name     text        NOT NULL,   -- schema.table at enable time
    stream_label   text        NOT NULL,
    stream_arn     text        NOT NULL UNIQUE,
    aws_region     text        NOT NULL,
    view_type      text        NOT NULL
        CHECK (view_type IN ('KEYS_ONLY', 'NEW_IMAGE', 'OLD_IMAGE', 'NEW_AND_OLD_IMAGES')),
    shard_count    integer     NOT NULL CHECK (shard_count BETWEEN 1 AND 256),
    retention      interval    NOT NULL,
    bucket_seconds integer     NOT NULL,   -- width of one storage segment
    key_columns    text[]      NOT NULL,
    status         text        NOT NULL DEFAULT 'ENABLED' CHECK (status IN ('ENABLED', 'DISABLED')),
    created_at     timestamptz NOT NULL,
    disabled_at    timestamptz,
    start_lsn      pg_lsn      NOT NULL,
    saved_identity jsonb,                  -- replica identities to restore on disable
    owner          regrole     NOT NULL
) WITH (user_catalog_table = true);
CREATE UNIQUE INDEX stream_one_enabled_per_table ON streams.stream (relid) WHERE status = 'ENABLED';

-- The records, packed: one row holds a run of consecutive records of one
-- shard (at most 256 of them, appended together), as parallel arrays in
-- position order; the rows of a shard cover disjoint position ranges. Packing
-- lets TOAST compress the records (lz4 where the server has it) and saves a
-- row and an index entry per record: capture writes several times less WAL.
-- Partitioned by stream, then by arrival time in segments of bucket_seconds
-- (all records of a row lie in one segment), so that retention drops whole
-- segments.
CREATE TABLE streams.record_batch (
    stream_id integer       NOT NULL,
    shard     integer       NOT NULL,
    first_lsn bigint        NOT NULL,   -- position (commit LSN, change index) of the first record
    first_idx integer       NOT NULL,
    last_lsn  bigint        NOT NULL,   -- position of the last record
    last_idx  integer       NOT NULL,
    arrival   timestamptz   NOT NULL,   -- commit time of the first record (the segment key)
    n_records integer       NOT NULL,   -- number of records
    lsns      bigint[]      NOT NULL,   -- per record: commit LSN of its transaction,
    idxs      integer[]     NOT NULL,   -- change index within the transaction,
    arrivals  timestamptz[] NOT NULL,   -- commit time,
    records   text[]        NOT NULL    -- the DynamoDB stream records, without eventID and SequenceNumber
) PARTITION BY LIST (stream_id);
CREATE INDEX record_batch_position ON streams.record_batch (stream_id, shard, last_lsn, last_idx);
DO $$
BEGIN
    ALTER TABLE streams.record_batch ALTER COLUMN records SET COMPRESSION lz4,
        ALTER COLUMN lsns SET COMPRESSION lz4, ALTER COLUMN idxs SET COMPRESSION lz4,
        ALTER COLUMN arrivals SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    NULL;  -- a server built without lz4: TOAST's default compression
END $$;

-- The stored record texts lack eventID and SequenceNumber (they follow from
-- the record's position and the system identifier, and eventID's hex digits
-- do not compress); readers put them back with this function.
CREATE FUNCTION streams._full_record(record text, lsn bigint, idx integer) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgs_full_record';
COMMENT ON FUNCTION streams._full_record(text, bigint, integer) IS
    'Internal: a stored record with its eventID and SequenceNumber spliced back in.';

-- One row per record: the packed rows unpacked, for reading by hand (and
-- tests). append_xid is the transaction that appended the record.
CREATE VIEW streams.record AS
SELECT b.stream_id, b.shard, u.lsn, u.idx, u.arrival, streams._full_record(u.record, u.lsn, u.idx) AS record,
       b.xmin AS append_xid
FROM streams.record_batch b
CROSS JOIN LATERAL unnest(b.lsns, b.idxs, b.arrivals, b.records) AS u(lsn, idx, arrival, record);

CREATE TABLE streams.segment (
    stream_id   integer     NOT NULL,
    lower_bound timestamptz NOT NULL,
    upper_bound timestamptz NOT NULL,
    relname     name        NOT NULL,
    PRIMARY KEY (stream_id, lower_bound)
);

-- Where the appender stands inside a transaction too big for one append. Such
-- a transaction is appended in pieces; each piece commits, with its records,
-- the transaction's commit LSN and the change index of its next record here.
-- The replication origin moves past the transaction only with its last piece,
-- so after a crash decoding starts before it again, and the appender skips the
-- records this row says are stored already. One row; a position of this
-- cluster's WAL, meaningless elsewhere (not dumped).
CREATE TABLE streams.partial_append (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    commit_lsn bigint  NOT NULL,   -- the transaction's commit LSN (records' lsn)
    next_idx   bigint  NOT NULL    -- change index of its first record not appended yet
);
INSERT INTO streams.partial_append VALUES (true, 0, 0);

REVOKE ALL ON streams.stream, streams.record_batch, streams.record, streams.segment, streams.partial_append FROM PUBLIC;

-- The storage tables created at run time (a stream's partition of
-- record_batch and its segments) are members of the extension, like the
-- tables above: pg_dump leaves them out (stored records are not dumped: see
-- README, Backup and restore) and DROP EXTENSION drops them. A member cannot
-- be dropped on its own: _drop_storage takes it out of the extension first.
CREATE FUNCTION streams._create_stream_storage(p_stream integer) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format('CREATE TABLE streams.%I PARTITION OF streams.record_batch FOR VALUES IN (%s) PARTITION BY RANGE (arrival)',
                   'record_' || p_stream, p_stream);
    EXECUTE format('ALTER EXTENSION pg_streams ADD TABLE streams.%I', 'record_' || p_stream);
END $$;

-- Drops streams.<relname> and its partitions, if it exists.
CREATE FUNCTION streams._drop_storage(relname text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rel  regclass := to_regclass(format('streams.%I', relname));
    part regclass;
BEGIN
    IF rel IS NULL THEN
        RETURN;
    END IF;
    FOR part IN SELECT t.relid FROM pg_partition_tree(rel) t
                WHERE EXISTS (SELECT 1 FROM pg_depend d
                              WHERE d.classid = 'pg_class'::regclass AND d.objid = t.relid AND d.deptype = 'e') LOOP
        EXECUTE format('ALTER EXTENSION pg_streams DROP TABLE %s', part);
    END LOOP;
    EXECUTE format('DROP TABLE %s', rel);
END $$;

REVOKE ALL ON FUNCTION streams._create_stream_storage(integer), streams._drop_storage(text) FROM PUBLIC;

