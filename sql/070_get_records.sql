-- Reading a stream the DynamoDB way: describe_stream for the shards,
-- get_shard_iterator (TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER,
-- AFTER_SEQUENCE_NUMBER), get_records with a limit and NextShardIterator.
-- The records are the ones the capture worker appended: the same as the
-- output plugin decodes.

CREATE TABLE gr (id int PRIMARY KEY, v text);
SELECT streams.enable_stream('gr', 'NEW_AND_OLD_IMAGES', 1) IS NOT NULL AS enabled;
SELECT pgs_arn('gr') AS arn \gset
SELECT pgs_shard(:'arn') AS shard \gset
SELECT 'init' FROM pg_create_logical_replication_slot('regress_slot', 'pg_streams');

-- Nothing yet: no records, and the shard stays open (NextShardIterator).
SELECT g->'Records' AS records, g->>'NextShardIterator' IS NOT NULL AS has_next
FROM streams.get_records(streams.get_shard_iterator(:'arn', :'shard', 'TRIM_HORIZON')) AS g;
-- A LATEST iterator taken now reads what is committed from now on.
SELECT streams.get_shard_iterator(:'arn', :'shard', 'LATEST') AS latest_before \gset

INSERT INTO gr VALUES (1, 'a'), (2, 'b'), (3, 'c');
UPDATE gr SET v = 'B' WHERE id = 2;
DELETE FROM gr WHERE id = 3;
INSERT INTO gr VALUES (4, 'd');
CALL pgs_wait_records(:'arn', 6);

CREATE TEMP TABLE decoded AS
SELECT c.n, c.data FROM pg_logical_slot_get_changes('regress_slot', NULL, NULL) WITH ORDINALITY AS c(lsn, xid, data, n);

-- TRIM_HORIZON: everything, in sequence order, equal to the decoded records.
SELECT streams.get_records(streams.get_shard_iterator(:'arn', :'shard', 'TRIM_HORIZON')) AS page \gset
SELECT jsonb_object_keys(:'page'::jsonb) AS key;
SELECT g.n, g.rec->>'eventName' AS event, g.rec->'dynamodb'->'Keys' AS keys,
       right(g.rec->'dynamodb'->>'SequenceNumber', 10) AS idx,
       g.rec = d.data::jsonb - 'eventSourceARN' AS same_as_decoded_without_arn
FROM jsonb_array_elements(:'page'::jsonb->'Records') WITH ORDINALITY AS g(rec, n) FULL JOIN decoded d USING (n)
ORDER BY g.n;
-- Exactly GetRecords' record fields: the decoded record's eventSourceARN
-- (what Lambda adds to its events) is not one of them.
SELECT DISTINCT (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(g.rec) AS k) AS record_fields
FROM jsonb_array_elements(:'page'::jsonb->'Records') AS g(rec);
-- The stored text is the decoded text, byte for byte (DynamoDB's key order).
SELECT count(*) AS decoded, count(s.rec) AS stored_identically
FROM decoded d LEFT JOIN (SELECT pgs_stored(:'arn') AS rec) s ON s.rec = d.data;

-- The sequence numbers of the records, for the positioned iterators.
SELECT d.data::jsonb->'dynamodb'->>'SequenceNumber' AS seq2 FROM decoded d WHERE n = 2 \gset
SELECT d.data::jsonb->'dynamodb'->>'SequenceNumber' AS seq6 FROM decoded d WHERE n = 6 \gset

-- A small function to list what an iterator reads: event:id per record.
CREATE FUNCTION gr_read(it text, lim int DEFAULT 1000, OUT records text, OUT has_next boolean, OUT next_it text)
LANGUAGE sql AS $$
    SELECT coalesce(string_agg((r->>'eventName') || ':' || (r->'dynamodb'->'Keys'->'id'->>'N'), ' ' ORDER BY n), ''),
           g->>'NextShardIterator' IS NOT NULL, g->>'NextShardIterator'
    FROM streams.get_records(it, lim) AS g
         LEFT JOIN LATERAL jsonb_array_elements(g->'Records') WITH ORDINALITY AS e(r, n) ON true
    GROUP BY g
$$;

SELECT 'AT_SEQUENCE_NUMBER 2' AS position, records, has_next
FROM gr_read(streams.get_shard_iterator(:'arn', :'shard', 'AT_SEQUENCE_NUMBER', :'seq2'))
UNION ALL
SELECT 'AFTER_SEQUENCE_NUMBER 2', records, has_next
FROM gr_read(streams.get_shard_iterator(:'arn', :'shard', 'AFTER_SEQUENCE_NUMBER', :'seq2'))
UNION ALL
SELECT 'AT_SEQUENCE_NUMBER 6', records, has_next
FROM gr_read(streams.get_shard_iterator(:'arn', :'shard', 'AT_SEQUENCE_NUMBER', :'seq6'))
UNION ALL
SELECT 'AFTER_SEQUENCE_NUMBER 6', records, has_next
FROM gr_read(streams.get_shard_iterator(:'arn', :'shard', 'AFTER_SEQUENCE_NUMBER', :'seq6'))
UNION ALL
SELECT 'LATEST taken before the changes', records, has_next FROM gr_read(:'latest_before')
UNION ALL
SELECT 'LATEST taken now', records, has_next
FROM gr_read(streams.get_shard_iterator(:'arn', :'shard', 'LATEST'));

-- Pages of 4, following NextShardIterator; the last page is empty and the
-- shard is still open. Iterators can be read again.
SELECT streams.get_shard_iterator(:'arn', :'shard', 'TRIM_HORIZON') AS it \gset
SELECT records, has_next, next_it AS it FROM gr_read(:'it', 4) \gset
SELECT :'records' AS page1;
SELECT records AS page1_again FROM gr_read(streams.get_shard_iterator(:'arn', :'shard', 'TRIM_HORIZON'), 4);
SELECT records, has_next, next_it AS it FROM gr_read(:'it', 4) \gset
SELECT :'records' AS page2;
SELECT records, has_next, next_it AS it FROM gr_read(:'it', 4) \gset
SELECT :'records' AS page3, :'has_next' AS has_next;
-- New changes show up at the end iterator; a LATEST iterator taken before
-- them reads them too.
SELECT streams.get_shard_iterator(:'arn', :'shard', 'LATEST') AS latest \gset
INSERT INTO gr VALUES (5, 'e');
DELETE FROM gr WHERE id = 1;
CALL pgs_wait_records(:'arn', 8);
SELECT records AS after_end, has_next FROM gr_read(:'it', 4);
SELECT records AS from_latest, has_next FROM gr_read(:'latest', 1);
SELECT records AS limit_1 FROM gr_read(streams.get_shard_iterator(:'arn', :'shard', 'TRIM_HORIZON'), 1);
SELECT records AS limit_1000 FROM gr_read(streams.get_shard_iterator(:'arn', :'shard', 'TRIM_HORIZON'), 1000);

-- Several shards: a record goes to the shard of its keys, so all records of
-- an item are in one shard, in order; the shards together hold everything.
CREATE TABLE gr4 (id int PRIMARY KEY, v int);
SELECT streams.enable_stream('gr4', 'KEYS_ONLY', 4) IS NOT NULL AS enabled;
SELECT pgs_arn('gr4') AS arn4 \gset
INSERT INTO gr4 SELECT i, 0 FROM generate_series(1, 40) AS i;
UPDATE gr4 SET v = 1;
DELETE FROM gr4 WHERE id % 2 = 0;
CALL pgs_wait_records(:'arn4', 100);
CREATE TEMP TABLE shard_records AS
SELECT s.n AS shard, e.n AS pos, e.r
FROM jsonb_array_elements(streams.describe_stream(:'arn4')->'StreamDescription'->'Shards') WITH ORDINALITY AS s(shard, n),
     LATERAL jsonb_array_elements(streams.get_records(streams.get_shard_iterator(:'arn4', s.shard->>'ShardId', 'TRIM_HORIZON'))->'Records')
         WITH ORDINALITY AS e(r, n);
SELECT shard, count(*) AS records, count(DISTINCT r->'dynamodb'->'Keys') AS items FROM shard_records GROUP BY shard ORDER BY shard;
SELECT count(*) AS records, count(DISTINCT r->'dynamodb'->'Keys') AS items,
       count(DISTINCT r->>'eventID') AS distinct_events
FROM shard_records;
-- Each item in one shard, with its events in order.
SELECT count(*) AS items,
       bool_and(shards = 1) AS one_shard_per_item,
       bool_and(events IN ('INSERT MODIFY', 'INSERT MODIFY REMOVE')) AS in_order
FROM (SELECT r->'dynamodb'->'Keys' AS k, count(DISTINCT shard) AS shards,
             string_agg(r->>'eventName', ' ' ORDER BY shard, pos) AS events
      FROM shard_records GROUP BY 1) x;
SELECT bool_and(prev IS NULL OR r->'dynamodb'->>'SequenceNumber' > prev) AS increasing_in_shard
FROM (SELECT r, lag(r->'dynamodb'->>'SequenceNumber') OVER (PARTITION BY shard ORDER BY pos) AS prev FROM shard_records) x;

SELECT pg_drop_replication_slot('regress_slot');
