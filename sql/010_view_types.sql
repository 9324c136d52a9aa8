-- The four view types, decoded through the output plugin directly: record
-- shape and key order, which images each event carries, identifiers.

CREATE TABLE vt_keys (id int PRIMARY KEY, name text, qty int);
CREATE TABLE vt_new (id int PRIMARY KEY, name text, qty int);
CREATE TABLE vt_old (id int PRIMARY KEY, name text, qty int);
CREATE TABLE vt_both (id int PRIMARY KEY, name text, qty int);
CREATE TABLE vt_none (id int PRIMARY KEY, name text, qty int);   -- no stream

-- KEYS_ONLY keeps the replica identity; image view types set FULL and say so.
SELECT pgs_mask(streams.enable_stream('vt_keys', 'KEYS_ONLY', 1)::text);
SELECT pgs_mask(streams.enable_stream('vt_new', 'NEW_IMAGE', 1)::text);
SELECT pgs_mask(streams.enable_stream('vt_old', 'OLD_IMAGE', 1)::text);
SELECT pgs_mask(streams.enable_stream('vt_both', 'NEW_AND_OLD_IMAGES', 1)::text);
SELECT relname, relreplident FROM pg_class WHERE relname LIKE 'vt\_%' AND relkind = 'r' ORDER BY relname;

SELECT 'init' FROM pg_create_logical_replication_slot('regress_slot', 'pg_streams');
SELECT floor(extract(epoch FROM clock_timestamp()))::bigint AS t0 \gset

INSERT INTO vt_keys VALUES (1, 'apple', 10), (2, 'pear', 20);
UPDATE vt_keys SET qty = 11 WHERE id = 1;
DELETE FROM vt_keys WHERE id = 2;
INSERT INTO vt_new VALUES (1, 'apple', 10), (2, 'pear', 20);
UPDATE vt_new SET qty = 11 WHERE id = 1;
DELETE FROM vt_new WHERE id = 2;
INSERT INTO vt_old VALUES (1, 'apple', 10), (2, 'pear', 20);
UPDATE vt_old SET qty = 11 WHERE id = 1;
DELETE FROM vt_old WHERE id = 2;
INSERT INTO vt_both VALUES (1, 'apple', 10), (2, 'pear', 20);
UPDATE vt_both SET qty = 11 WHERE id = 1;
DELETE FROM vt_both WHERE id = 2;
INSERT INTO vt_none VALUES (1, 'apple', 10);
UPDATE vt_none SET qty = 11 WHERE id = 1;
DELETE FROM vt_none WHERE id = 1;

CREATE TEMP TABLE ch AS
SELECT c.n, c.lsn, c.xid, c.data FROM pg_logical_slot_get_changes('regress_slot', NULL, NULL) WITH ORDINALITY AS c(lsn, xid, data, n);

-- One JSON text per record, keys in DynamoDB's order.
SELECT pgs_mask(data) FROM ch ORDER BY n;

-- eventID: 32 lowercase hex digits, one per record.
SELECT count(*) AS records, count(DISTINCT data::jsonb->>'eventID') AS distinct_ids,
       bool_and(data::jsonb->>'eventID' ~ '^[0-9a-f]{32}$') AS id_format
FROM ch;

-- SequenceNumber: "1" + 20-digit commit LSN + 10-digit change index;
-- increasing; the LSN is the commit's (after the change, shared by the
-- records of one transaction).
SELECT bool_and(seq ~ '^1[0-9]{30}$') AS seq_format,
       bool_and(prev IS NULL OR seq > prev) AS increasing,
       bool_and(pg_lsn '0/0' + substr(seq, 2, 20)::numeric > lsn) AS after_change,
       count(DISTINCT substr(seq, 2, 20)) = count(DISTINCT xid::text) AS one_lsn_per_transaction
FROM (SELECT data::jsonb->'dynamodb'->>'SequenceNumber' AS seq, lsn, xid,
             lag(data::jsonb->'dynamodb'->>'SequenceNumber') OVER (ORDER BY n) AS prev
      FROM ch) s;

-- ApproximateCreationDateTime: the commit time in epoch seconds, rounded down.
SELECT bool_and((data::jsonb->'dynamodb'->>'ApproximateCreationDateTime')::numeric
                BETWEEN :t0 AND extract(epoch FROM clock_timestamp())) AS commit_time,
       bool_and(data ~ '"ApproximateCreationDateTime":[0-9]{10}\.0,') AS float_seconds
FROM ch;

-- ARN and region; SizeBytes as the rules compute it.
SELECT data::jsonb->>'eventSourceARN' = pgs_arn((regexp_match(data::jsonb->>'eventSourceARN', 'table/public\.([a-z_]+)/'))[1]::regclass) AS arn_matches,
       data::jsonb->>'awsRegion' AS region,
       count(*),
       bool_and((data::jsonb->'dynamodb'->>'SizeBytes')::int = pgs_record_size(data::jsonb)) AS sizes_match
FROM ch GROUP BY 1, 2;

-- Defaults: NEW_AND_OLD_IMAGES, 4 shards, 24 hours. Keys follow the primary
-- key's column order (HASH, then RANGE), not the table's.
CREATE TABLE vt_default (label text, region text, seq int, note text, PRIMARY KEY (region, seq));
SELECT pgs_mask(streams.enable_stream('vt_default')::text);
SELECT view_type, shard_count, retention, key_columns, status FROM streams.stream WHERE relid = 'vt_default'::regclass;
SELECT pgs_mask(jsonb_pretty(streams.describe_stream(pgs_arn('vt_default'))));
SELECT count(DISTINCT s->>'ShardId') AS distinct_shard_ids
FROM jsonb_array_elements(streams.describe_stream(pgs_arn('vt_default'))->'StreamDescription'->'Shards') AS s;
SELECT pgs_mask(streams.list_streams('vt_default')::text);
SELECT jsonb_array_length(streams.list_streams()->'Streams') AS all_streams;
INSERT INTO vt_default VALUES ('first', 'eu', 7, NULL);
SELECT pgs_changes('regress_slot');

-- The plugin takes no options.
SELECT data FROM pg_logical_slot_peek_changes('regress_slot', NULL, NULL, 'include-xids', '1');
SELECT data FROM pg_logical_slot_peek_changes('regress_slot', NULL, NULL, 'capture', 'true');

SELECT pg_drop_replication_slot('regress_slot');
