-- SizeBytes = size(Keys) + size(NewImage) + size(OldImage), where a map's
-- size is the sum of UTF-8 name lengths and value sizes; no per-item
-- overhead. Values: S UTF-8 bytes, B raw bytes, BOOL/NULL 1, N one byte
-- per pair of significant digits + 1 (+1 if negative), M 3 + sum(name +
-- size + 1), L 3 + sum(size + 1).

-- The semantics doc's recorded example (NEW_IMAGE): 27 + 43 = 70.
CREATE TABLE sz_doc (my_partition_key text PRIMARY KEY, binary_key bytea);
SELECT streams.enable_stream('sz_doc', 'NEW_IMAGE', 1) IS NOT NULL AS enabled;
-- The Lambda guide's examples (NEW_AND_OLD_IMAGES): 26, 59, 38.
CREATE TABLE sz_lambda ("Id" numeric PRIMARY KEY, "Message" text);
SELECT streams.enable_stream('sz_lambda', 'NEW_AND_OLD_IMAGES', 1) IS NOT NULL AS enabled;
-- KEYS_ONLY counts the keys only: Username "Fred" is 12.
CREATE TABLE sz_user ("Username" text PRIMARY KEY, age int);
SELECT streams.enable_stream('sz_user', 'KEYS_ONLY', 1) IS NOT NULL AS enabled;
-- Numbers: the record is k:S"x" (2) + NewImage k (2) + "n" (1) + the number.
CREATE TABLE sz_num (k text PRIMARY KEY, n numeric);
SELECT streams.enable_stream('sz_num', 'NEW_IMAGE', 1) IS NOT NULL AS enabled;
CREATE TABLE sz_misc (k text PRIMARY KEY, "naïve" text, b bytea, j jsonb, arr int[], flag bool);
SELECT streams.enable_stream('sz_misc', 'NEW_IMAGE', 1) IS NOT NULL AS enabled;
-- Names count as their UTF-8 bytes, unescaped: a"b\c is 5, ключ is 8.
CREATE TABLE sz_names ("a""b\c" text PRIMARY KEY, "ключ" int);
SELECT streams.enable_stream('sz_names', 'NEW_IMAGE', 1) IS NOT NULL AS enabled;

SELECT 'init' FROM pg_create_logical_replication_slot('regress_slot', 'pg_streams');

INSERT INTO sz_doc VALUES ('hello world', 'foobar');
INSERT INTO sz_lambda VALUES (101, 'New item!');
UPDATE sz_lambda SET "Message" = 'This item has changed' WHERE "Id" = 101;
DELETE FROM sz_lambda WHERE "Id" = 101;
INSERT INTO sz_user VALUES ('Fred', 30);
UPDATE sz_user SET age = 31;
DELETE FROM sz_user;
INSERT INTO sz_num VALUES
    ('a', 0), ('b', 1), ('c', 42), ('d', 101), ('e', -1), ('f', 100), ('g', 1000), ('h', 12345),
    ('i', 0.5), ('j', 0.05), ('k', 0.005), ('l', 1.05), ('m', 10.5), ('n', 123.45), ('o', -123.45),
    ('p', 0.1234567), ('q', 12345678901234567890123456789012345678), ('r', -12345678901234567890123456789012345678),
    ('s', 1e125), ('t', 1e-130), ('u', 99.99), ('v', 9.9), ('w', 1234.5678), ('x', 0.000001), ('y', 0.0000001),
    ('z', 0.12345678901234567890123456789012345678);
-- "naïve": 6-byte name; é€😀: 9 bytes; B: 3 raw bytes; M: 21; L: 3 + 3 + 2 + 3 = 11 (300 is 2).
INSERT INTO sz_misc VALUES
    ('a', 'é€😀', '\x000102', '{"a": 1, "bb": [true, null, "xyz"]}', '{1,NULL,300}', true),
    ('b', '', '', '[]', '{}', NULL);
INSERT INTO sz_names VALUES ('x', 1);

CREATE TEMP TABLE rec AS
SELECT c.n, c.data, c.data::jsonb AS r FROM pg_logical_slot_get_changes('regress_slot', NULL, NULL) WITH ORDINALITY AS c(lsn, xid, data, n);

-- The full records of the doc's example and of the escaped names.
SELECT pgs_mask(data) FROM rec WHERE data ~ 'table/public\.(sz_doc|sz_names)/' ORDER BY n;

SELECT regexp_replace(r->>'eventSourceARN', '.*table/public\.([a-z_]+)/.*', '\1') AS tbl, r->>'eventName' AS event,
       (r->'dynamodb'->>'SizeBytes')::int AS size_bytes,
       pgs_map_size(r->'dynamodb'->'Keys') AS keys, pgs_map_size(r->'dynamodb'->'NewImage') AS new_image,
       pgs_map_size(r->'dynamodb'->'OldImage') AS old_image
FROM rec WHERE r->>'eventSourceARN' !~ 'sz_num' ORDER BY n;

-- Number sizes: what the record says, and the rule's reference algorithm.
SELECT pgs_short(r->'dynamodb'->'NewImage'->'n'->>'N') AS n, (r->'dynamodb'->>'SizeBytes')::int - 5 AS size,
       pgs_number_size(r->'dynamodb'->'NewImage'->'n'->>'N') AS by_rule
FROM rec WHERE r->>'eventSourceARN' ~ 'sz_num' ORDER BY rec.n;

-- Every record of this file agrees with the rules.
SELECT count(*) AS records, bool_and((r->'dynamodb'->>'SizeBytes')::int = pgs_record_size(r)) AS sizes_match FROM rec;

SELECT pg_drop_replication_slot('regress_slot');
