-- UPDATE rules: a changed key is a REMOVE of the old item, then an INSERT of
-- the new one (in that order, in one transaction); an UPDATE that changes
-- nothing writes no record when both images are known (REPLICA IDENTITY
-- FULL), as DynamoDB writes none for an identical overwrite.

CREATE TABLE ur_both (id int PRIMARY KEY, v text);
CREATE TABLE ur_new (id int PRIMARY KEY, v text);
CREATE TABLE ur_old (id int PRIMARY KEY, v text);
CREATE TABLE ur_keys (a int, b text, v int, PRIMARY KEY (a, b));        -- replica identity DEFAULT
CREATE TABLE ur_keys_full (id int PRIMARY KEY, v int);
ALTER TABLE ur_keys_full REPLICA IDENTITY FULL;
CREATE TABLE ur_ident (code text NOT NULL, v int);                      -- no primary key
CREATE UNIQUE INDEX ur_ident_code ON ur_ident (code);
ALTER TABLE ur_ident REPLICA IDENTITY USING INDEX ur_ident_code;
SELECT streams.enable_stream('ur_both', 'NEW_AND_OLD_IMAGES', 1) IS NOT NULL AS enabled;
SELECT streams.enable_stream('ur_new', 'NEW_IMAGE', 1) IS NOT NULL AS enabled;
SELECT streams.enable_stream('ur_old', 'OLD_IMAGE', 1) IS NOT NULL AS enabled;
SELECT streams.enable_stream('ur_keys', 'KEYS_ONLY', 1) IS NOT NULL AS enabled;
SELECT streams.enable_stream('ur_keys_full', 'KEYS_ONLY', 1) IS NOT NULL AS enabled;
SELECT streams.enable_stream('ur_ident', 'KEYS_ONLY', 1) IS NOT NULL AS enabled;
-- Without a primary key, the replica identity index gives the keys.
SELECT relname, key_columns, relreplident
FROM streams.stream s JOIN pg_class c ON c.oid = s.relid WHERE relname LIKE 'ur\_%' ORDER BY relname;

SELECT 'init' FROM pg_create_logical_replication_slot('regress_slot', 'pg_streams');

-- Key change, for each view type.
INSERT INTO ur_both VALUES (1, 'a'), (2, 'b');
UPDATE ur_both SET id = 10 WHERE id = 1;
INSERT INTO ur_new VALUES (1, 'a');
UPDATE ur_new SET id = 10, v = 'z' WHERE id = 1;
INSERT INTO ur_old VALUES (1, 'a');
UPDATE ur_old SET id = 10 WHERE id = 1;
INSERT INTO ur_keys VALUES (1, 'x', 0);
UPDATE ur_keys SET b = 'y' WHERE a = 1;
SELECT * FROM pgs_brief('regress_slot');

-- No change: no record. Several rows, one of which changes: one record.
UPDATE ur_both SET v = v;
UPDATE ur_both SET v = CASE id WHEN 2 THEN 'B' ELSE v END;
UPDATE ur_new SET v = v;
UPDATE ur_old SET v = v;
SELECT * FROM pgs_brief('regress_slot');

-- NULLs: to NULL is a change, NULL to NULL is not.
UPDATE ur_both SET v = NULL WHERE id = 2;
UPDATE ur_both SET v = NULL WHERE id = 2;
UPDATE ur_both SET v = 'b' WHERE id = 2;
SELECT * FROM pgs_brief('regress_slot');

-- INSERT ... ON CONFLICT DO UPDATE: an existing item is a MODIFY, an
-- identical one nothing.
INSERT INTO ur_both VALUES (2, 'b2'), (3, 'c') ON CONFLICT (id) DO UPDATE SET v = excluded.v;
INSERT INTO ur_both VALUES (2, 'b2') ON CONFLICT (id) DO UPDATE SET v = excluded.v;
SELECT * FROM pgs_brief('regress_slot');

-- KEYS_ONLY on replica identity DEFAULT: the old row is not in WAL, so an
-- UPDATE that changes nothing is still a MODIFY. With FULL it is nothing.
UPDATE ur_keys SET v = v;
UPDATE ur_keys SET v = 1;
INSERT INTO ur_keys_full VALUES (1, 0);
UPDATE ur_keys_full SET v = v;
UPDATE ur_keys_full SET v = 1;
UPDATE ur_keys_full SET id = 2;
SELECT * FROM pgs_brief('regress_slot');

-- Keys from the replica identity index.
INSERT INTO ur_ident VALUES ('k1', 1);
UPDATE ur_ident SET v = 2;
UPDATE ur_ident SET code = 'k2';
DELETE FROM ur_ident;
SELECT * FROM pgs_brief('regress_slot');

-- KEYS_ONLY needs the old keys in WAL: a replica identity of NOTHING, or of
-- an index without the key columns, is changed to DEFAULT (and restored by
-- disable_stream); one whose index has the keys is kept.
CREATE TABLE ur_nothing (id int PRIMARY KEY, v int);
ALTER TABLE ur_nothing REPLICA IDENTITY NOTHING;
CREATE TABLE ur_other_index (id int PRIMARY KEY, code text NOT NULL, v int);
CREATE UNIQUE INDEX ur_other_index_code ON ur_other_index (code);
ALTER TABLE ur_other_index REPLICA IDENTITY USING INDEX ur_other_index_code;
CREATE TABLE ur_wider_index (id int PRIMARY KEY, code text NOT NULL, v int);
CREATE UNIQUE INDEX ur_wider_index_id_code ON ur_wider_index (id, code);
ALTER TABLE ur_wider_index REPLICA IDENTITY USING INDEX ur_wider_index_id_code;
SELECT streams.enable_stream('ur_nothing', 'KEYS_ONLY', 1) IS NOT NULL AS enabled;
SELECT streams.enable_stream('ur_other_index', 'KEYS_ONLY', 1) IS NOT NULL AS enabled;
SELECT streams.enable_stream('ur_wider_index', 'KEYS_ONLY', 1) IS NOT NULL AS enabled;
SELECT relname, relreplident FROM pg_class WHERE relname IN ('ur_nothing', 'ur_other_index', 'ur_wider_index') ORDER BY 1;
INSERT INTO ur_nothing VALUES (1, 0);
UPDATE ur_nothing SET id = 2;
DELETE FROM ur_nothing;
INSERT INTO ur_other_index VALUES (1, 'a', 0);
UPDATE ur_other_index SET id = 2;
UPDATE ur_other_index SET code = 'b';
DELETE FROM ur_other_index;
INSERT INTO ur_wider_index VALUES (1, 'a', 0);
UPDATE ur_wider_index SET id = 2;
DELETE FROM ur_wider_index;
SELECT * FROM pgs_brief('regress_slot');
SELECT streams.disable_stream('ur_nothing') IS NOT NULL AS disabled;
SELECT streams.disable_stream('ur_other_index') IS NOT NULL AS disabled;
SELECT streams.disable_stream('ur_wider_index') IS NOT NULL AS disabled;
SELECT c.relname, c.relreplident, i.relname AS identity_index
FROM pg_class c LEFT JOIN pg_index x ON x.indrelid = c.oid AND x.indisreplident LEFT JOIN pg_class i ON i.oid = x.indexrelid
WHERE c.relname IN ('ur_nothing', 'ur_other_index', 'ur_wider_index') ORDER BY 1;

SELECT pg_drop_replication_slot('regress_slot');
