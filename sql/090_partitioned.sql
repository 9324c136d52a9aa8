-- A stream on a partitioned table covers all its partitions, nested ones
-- and ones with another column order included: records name the parent and
-- carry its columns, in its order, and its key. A partition of a streamed
-- table cannot get a stream of its own, nor be truncated.

CREATE TABLE pt (id int, region text, v text, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
CREATE TABLE pt_eu PARTITION OF pt FOR VALUES IN ('eu');
-- Other column order, and a dropped column.
CREATE TABLE pt_us (v text, dropped int, region text NOT NULL, id int NOT NULL);
ALTER TABLE pt_us DROP COLUMN dropped;
ALTER TABLE pt ATTACH PARTITION pt_us FOR VALUES IN ('us');
-- Two levels.
CREATE TABLE pt_asia PARTITION OF pt FOR VALUES IN ('jp', 'kr') PARTITION BY LIST (region);
CREATE TABLE pt_jp PARTITION OF pt_asia FOR VALUES IN ('jp');
CREATE TABLE pt_kr PARTITION OF pt_asia FOR VALUES IN ('kr');
CREATE TABLE pt_other PARTITION OF pt DEFAULT;

-- Every partition gets REPLICA IDENTITY FULL.
SELECT pgs_mask(streams.enable_stream('pt', 'NEW_AND_OLD_IMAGES', 1)::text);
SELECT relname, relkind, relreplident FROM pg_class WHERE relname ~ '^pt(_|$)' AND relkind IN ('r', 'p') ORDER BY relname;
SELECT 'init' FROM pg_create_logical_replication_slot('regress_slot', 'pg_streams');

INSERT INTO pt VALUES (1, 'eu', 'a'), (2, 'us', 'b'), (3, 'jp', 'c'), (4, 'kr', 'd'), (5, 'br', 'e');
INSERT INTO pt_us (id, region, v) VALUES (6, 'us', 'directly into the partition');
UPDATE pt SET v = 'B' WHERE id = 2;
UPDATE pt SET v = v;                                        -- no change, no record
UPDATE pt SET region = 'us' WHERE id = 1;                   -- moves to another partition: new key
DELETE FROM pt WHERE region IN ('jp', 'br');
SELECT tbl, xact, idx, event, keys, new_image, old_image, size_ok FROM pgs_brief('regress_slot');

-- The parent's column order, whatever the partition's.
UPDATE pt SET v = 'b' WHERE id = 2;
SELECT pgs_changes('regress_slot');

-- No stream of its own for a partition, at any level; nor for a
-- partitioned table with a streamed partition.
SELECT pgs_try($$SELECT streams.enable_stream('pt_eu', 'KEYS_ONLY', 1)$$) AS partition;
SELECT pgs_try($$SELECT streams.enable_stream('pt_jp', 'KEYS_ONLY', 1)$$) AS nested_partition;
SELECT pgs_try($$SELECT streams.enable_stream('pt_asia', 'KEYS_ONLY', 1)$$) AS partitioned_partition;
CREATE TABLE pt2 (id int PRIMARY KEY) PARTITION BY RANGE (id);
CREATE TABLE pt2_low PARTITION OF pt2 FOR VALUES FROM (0) TO (100);
SELECT pgs_try($$SELECT streams.enable_stream('pt2_low', 'KEYS_ONLY', 1)$$) AS partition_first;
SELECT pgs_try($$SELECT streams.enable_stream('pt2', 'KEYS_ONLY', 1)$$) AS then_parent;

-- TRUNCATE of the streamed parent or of any of its partitions is refused.
TRUNCATE pt;
TRUNCATE pt_eu;
TRUNCATE pt_kr;
TRUNCATE pt2;

-- A partition made later is streamed too. Its replica identity is DEFAULT
-- (enable_stream only changed the partitions that existed), so its old
-- images lack the non-key columns: such records carry what is known (the
-- decoding session gets a WARNING, not shown here: it names the stream).
CREATE TABLE pt_fr PARTITION OF pt FOR VALUES IN ('fr');
INSERT INTO pt VALUES (7, 'fr', 'g');
UPDATE pt SET v = 'G' WHERE id = 7;
DELETE FROM pt WHERE id = 7;
SET client_min_messages = error;
SELECT tbl, xact, idx, event, keys, new_image, old_image, size_ok FROM pgs_brief('regress_slot');
RESET client_min_messages;

-- Disabling restores the replica identities it changed.
SELECT pgs_mask(streams.disable_stream('pt')::text);
SELECT relname, relkind, relreplident FROM pg_class WHERE relname ~ '^pt(_|$)' AND relkind IN ('r', 'p') ORDER BY relname;
INSERT INTO pt VALUES (8, 'eu', 'after disable');
SELECT count(*) AS records_after_disable FROM pg_logical_slot_get_changes('regress_slot', NULL, NULL);
SELECT pgs_try($$SELECT streams.enable_stream('pt_eu', 'KEYS_ONLY', 1)$$) AS partition_now;
TRUNCATE pt_us;

SELECT pg_drop_replication_slot('regress_slot');
