-- disable_stream: restores the replica identity that enable_stream changed;
-- records stop; the stream stays listed and readable as DISABLED, its
-- shards closed with an EndingSequenceNumber. Enabling again makes a new
-- stream. Dropping a table disables its stream.

CREATE TABLE ds (id int PRIMARY KEY, v text);
CREATE TABLE ds_idx (code text NOT NULL, v int);
CREATE UNIQUE INDEX ds_idx_code ON ds_idx (code);
ALTER TABLE ds_idx REPLICA IDENTITY USING INDEX ds_idx_code;
CREATE TABLE ds_nothing (id int PRIMARY KEY, v text);
ALTER TABLE ds_nothing REPLICA IDENTITY NOTHING;
CREATE TABLE ds_keys (id int PRIMARY KEY);
-- A table whose records tell that the capture worker has caught up: it
-- appends in commit order.
CREATE TABLE ds_marker (id int PRIMARY KEY);
SELECT streams.enable_stream('ds', 'NEW_AND_OLD_IMAGES', 1) IS NOT NULL AS enabled;
SELECT streams.enable_stream('ds_idx', 'NEW_IMAGE', 1) IS NOT NULL AS enabled;
SELECT streams.enable_stream('ds_nothing', 'OLD_IMAGE', 1) IS NOT NULL AS enabled;
SELECT streams.enable_stream('ds_keys', 'KEYS_ONLY', 1) IS NOT NULL AS enabled;
SELECT streams.enable_stream('ds_marker', 'KEYS_ONLY', 1) IS NOT NULL AS enabled;
SELECT c.relname, c.relreplident, i.relname AS identity_index
FROM pg_class c LEFT JOIN pg_index x ON x.indrelid = c.oid AND x.indisreplident LEFT JOIN pg_class i ON i.oid = x.indexrelid
WHERE c.relname LIKE 'ds%' AND c.relkind = 'r' ORDER BY 1;
SELECT pgs_arn('ds') AS arn \gset
SELECT pgs_shard(:'arn') AS shard \gset

SELECT 'init' FROM pg_create_logical_replication_slot('regress_slot', 'pg_streams');
INSERT INTO ds VALUES (1, 'a'), (2, 'b');
UPDATE ds SET v = 'B' WHERE id = 2;
CALL pgs_wait_records(:'arn', 3);

SELECT pgs_mask(streams.disable_stream('ds')::text);
SELECT pgs_mask(streams.disable_stream('ds_idx')::text);
SELECT pgs_mask(streams.disable_stream('ds_nothing')::text);
SELECT pgs_mask(streams.disable_stream('ds_keys')::text);
-- The replica identities are back: DEFAULT, USING INDEX, NOTHING; KEYS_ONLY
-- never changed it.
SELECT c.relname, c.relreplident, i.relname AS identity_index
FROM pg_class c LEFT JOIN pg_index x ON x.indrelid = c.oid AND x.indisreplident LEFT JOIN pg_class i ON i.oid = x.indexrelid
WHERE c.relname LIKE 'ds%' AND c.relkind = 'r' ORDER BY 1;

-- Records stop, in the output plugin and in the stored stream.
INSERT INTO ds VALUES (3, 'c');
UPDATE ds SET v = 'A' WHERE id = 1;
DELETE FROM ds WHERE id = 2;
INSERT INTO ds_keys VALUES (1);
INSERT INTO ds_marker VALUES (1);
SELECT tbl, xact, idx, event, keys FROM pgs_brief('regress_slot');
CALL pgs_wait_records(pgs_arn('ds_marker'), 1);
SELECT count(*) AS ds_records FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.stream_arn = :'arn';

-- Still listed; described as DISABLED, the shard closed at its last record.
SELECT pgs_mask(streams.list_streams('ds')::text);
SELECT pgs_mask(jsonb_pretty(streams.describe_stream(:'arn')));
SELECT streams.describe_stream(:'arn')->'StreamDescription'->'Shards'->0->'SequenceNumberRange'->>'EndingSequenceNumber'
       = max(r.record::jsonb->'dynamodb'->>'SequenceNumber') AS ends_at_last_record
FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.stream_arn = :'arn';
SELECT status, disabled_at IS NOT NULL AS has_disabled_at FROM streams.stream WHERE stream_arn = :'arn';

-- Readable to its end; then NextShardIterator is null (a closed shard).
SELECT streams.get_records(streams.get_shard_iterator(:'arn', :'shard', 'TRIM_HORIZON')) AS page \gset
SELECT jsonb_array_length(:'page'::jsonb->'Records') AS records, :'page'::jsonb->>'NextShardIterator' IS NOT NULL AS has_next;
SELECT g->'Records' AS records, g->'NextShardIterator' AS next
FROM streams.get_records(:'page'::jsonb->>'NextShardIterator') AS g;
SELECT g->'Records' AS records, g->'NextShardIterator' AS next
FROM streams.get_records(streams.get_shard_iterator(:'arn', :'shard', 'LATEST')) AS g;

-- Enabling again makes a new stream; the old one stays as it is.
SELECT pgs_mask(streams.enable_stream('ds', 'KEYS_ONLY', 1)::text);
SELECT pgs_arn('ds') <> :'arn' AS new_arn;
SELECT pgs_mask(streams.list_streams('ds')::text);
SELECT s->>'StreamArn' = :'arn' AS is_old, streams.describe_stream(s->>'StreamArn')->'StreamDescription'->>'StreamStatus' AS status
FROM jsonb_array_elements(streams.list_streams('ds')->'Streams') AS s;
INSERT INTO ds VALUES (4, 'd');
SELECT tbl, xact, idx, event, keys FROM pgs_brief('regress_slot');
CALL pgs_wait_records(pgs_arn('ds'), 1);
SELECT count(*) AS old_stream_records FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.stream_arn = :'arn';

-- Dropping a table disables its stream; the records stay readable.
CREATE TABLE ds_dropped (id int PRIMARY KEY);
SELECT streams.enable_stream('ds_dropped', 'KEYS_ONLY', 1) IS NOT NULL AS enabled;
SELECT pgs_arn('ds_dropped') AS dropped_arn \gset
INSERT INTO ds_dropped VALUES (1);
CALL pgs_wait_records(:'dropped_arn', 1);
DROP TABLE ds_dropped;
SELECT streams.describe_stream(:'dropped_arn')->'StreamDescription'->>'StreamStatus' AS status;
SELECT jsonb_array_length(g->'Records') AS records
FROM streams.get_records(streams.get_shard_iterator(:'dropped_arn', pgs_shard(:'dropped_arn'), 'TRIM_HORIZON')) AS g;
SELECT count(*) AS listed FROM jsonb_array_elements(streams.list_streams()->'Streams') AS s WHERE s->>'StreamArn' = :'dropped_arn';

SELECT pg_drop_replication_slot('regress_slot');
