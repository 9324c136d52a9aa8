-- Large values stored out of line (TOAST). Images are complete: an UPDATE
-- that leaves a TOASTed column unchanged still carries it in NewImage (and
-- OldImage). Values are checked by length and digest, not printed.

-- 100 kB values: hex digits that do not compress, for big (stored out of
-- line uncompressed), and a repeated 3200-byte pattern that does, for big2
-- (stored out of line compressed).
CREATE FUNCTION toast_value(seed int) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT string_agg(md5((seed * 100000 + i)::text), '') FROM generate_series(1, 3200) AS i $$;
CREATE FUNCTION toast_cvalue(seed int) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT repeat(string_agg(md5((seed * 100000 + i)::text), ''), 32) FROM generate_series(1, 100) AS i $$;
SELECT length(toast_value(1)) AS value_length, length(toast_cvalue(1)) AS cvalue_length;

CREATE TABLE tt (id int PRIMARY KEY, big text, big2 text, small int);
ALTER TABLE tt ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE tt_new (LIKE tt INCLUDING ALL);
CREATE TABLE tt_old (LIKE tt INCLUDING ALL);
CREATE TABLE tt_keys (LIKE tt INCLUDING ALL);
SELECT streams.enable_stream('tt', 'NEW_AND_OLD_IMAGES', 1) IS NOT NULL AS enabled;
SELECT streams.enable_stream('tt_new', 'NEW_IMAGE', 1) IS NOT NULL AS enabled;
SELECT streams.enable_stream('tt_old', 'OLD_IMAGE', 1) IS NOT NULL AS enabled;
SELECT streams.enable_stream('tt_keys', 'KEYS_ONLY', 1) IS NOT NULL AS enabled;

SELECT 'init' FROM pg_create_logical_replication_slot('regress_slot', 'pg_streams');

INSERT INTO tt VALUES (1, toast_value(1), toast_cvalue(1), 0);
-- Out of line indeed.
SELECT pg_column_size(big) AS big_stored, pg_column_size(big2) BETWEEN 2100 AND 51200 AS big2_compressed,
       (SELECT pg_relation_size(reltoastrelid) > 102400 FROM pg_class WHERE oid = 'tt'::regclass) AS in_toast_table
FROM tt;
UPDATE tt SET small = 1 WHERE id = 1;                  -- big and big2 unchanged
UPDATE tt SET small = 1 WHERE id = 1;                  -- nothing changed: no record
UPDATE tt SET big = toast_value(3) WHERE id = 1;       -- big changed, big2 unchanged
UPDATE tt SET id = 2 WHERE id = 1;                     -- new key: REMOVE, then INSERT with both values
DELETE FROM tt WHERE id = 2;
-- Inserted and updated in one transaction (the TOAST chunks are in it).
BEGIN;
INSERT INTO tt VALUES (3, toast_value(1), toast_cvalue(1), 0);
UPDATE tt SET small = 3 WHERE id = 3;
COMMIT;

INSERT INTO tt_new SELECT * FROM (VALUES (1, toast_value(1), toast_cvalue(1), 0)) AS v;
UPDATE tt_new SET small = 1;
UPDATE tt_new SET small = 1;
DELETE FROM tt_new;
INSERT INTO tt_old SELECT * FROM (VALUES (1, toast_value(1), toast_cvalue(1), 0)) AS v;
UPDATE tt_old SET small = 1;
UPDATE tt_old SET small = 1;
DELETE FROM tt_old;
-- KEYS_ONLY keeps replica identity DEFAULT: the old row is not in WAL, so
-- an UPDATE that changes nothing cannot be told apart and is a MODIFY.
INSERT INTO tt_keys SELECT * FROM (VALUES (1, toast_value(1), toast_cvalue(1), 0)) AS v;
UPDATE tt_keys SET small = 1;
UPDATE tt_keys SET small = 1;
DELETE FROM tt_keys;

CREATE TEMP TABLE rec AS
SELECT c.n, c.data, c.data::jsonb AS r FROM pg_logical_slot_get_changes('regress_slot', NULL, NULL) WITH ORDINALITY AS c(lsn, xid, data, n);

CREATE FUNCTION toast_name(v text) RETURNS text LANGUAGE sql AS $$
    SELECT CASE md5(v) WHEN md5(toast_value(1)) THEN 'value(1)' WHEN md5(toast_value(3)) THEN 'value(3)'
                       WHEN md5(toast_cvalue(1)) THEN 'cvalue(1)' ELSE 'other' END
$$;
CREATE FUNCTION toast_describe(img jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN img IS NULL THEN '-' ELSE
        format('big: %s %s, big2: %s %s, small: %s',
               length(img->'big'->>'S'), toast_name(img->'big'->>'S'),
               length(img->'big2'->>'S'), toast_name(img->'big2'->>'S'), img->'small'->>'N') END
$$;
SELECT regexp_replace(r->>'eventSourceARN', '.*table/public\.([a-z_]+)/.*', '\1') AS tbl, r->>'eventName' AS event,
       r->'dynamodb'->'Keys' AS keys,
       toast_describe(r->'dynamodb'->'NewImage') AS new_image, toast_describe(r->'dynamodb'->'OldImage') AS old_image,
       (r->'dynamodb'->>'SizeBytes')::int AS size_bytes, (r->'dynamodb'->>'SizeBytes')::int = pgs_record_size(r) AS size_ok
FROM rec ORDER BY n;

-- The capture worker stores the very same record texts.
CALL pgs_wait_records(pgs_arn('tt'), 8);
CALL pgs_wait_records(pgs_arn('tt_keys'), 4);
SELECT count(*) AS decoded, count(s.rec) AS stored_identically
FROM rec LEFT JOIN (SELECT pgs_stored(pgs_arn('tt')) AS rec) s ON s.rec = rec.data
WHERE rec.data ~ 'table/public\.tt/';

SELECT pg_drop_replication_slot('regress_slot');
