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
    relid          oid         NOT NULL,
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
    owner          oid         NOT NULL
) WITH (user_catalog_table = true);
CREATE UNIQUE INDEX stream_one_enabled_per_table ON streams.stream (relid) WHERE status = 'ENABLED';

-- The records. Partitioned by stream, then by arrival time in segments of
-- bucket_seconds, so that retention drops whole segments.
CREATE TABLE streams.record (
    stream_id integer     NOT NULL,
    shard     integer     NOT NULL,
    lsn       bigint      NOT NULL,   -- commit LSN of the transaction
    idx       integer     NOT NULL,   -- change index within the transaction
    arrival   timestamptz NOT NULL,   -- commit time
    record    text        NOT NULL    -- the DynamoDB stream record, as decoded
) PARTITION BY LIST (stream_id);
CREATE INDEX record_position ON streams.record (stream_id, shard, lsn, idx);

CREATE TABLE streams.segment (
    stream_id   integer     NOT NULL,
    lower_bound timestamptz NOT NULL,
    upper_bound timestamptz NOT NULL,
    relname     name        NOT NULL,
    PRIMARY KEY (stream_id, lower_bound)
);

REVOKE ALL ON streams.stream, streams.record, streams.segment FROM PUBLIC;

