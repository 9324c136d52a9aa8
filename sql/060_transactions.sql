-- Transactions: only committed changes are streamed; rolled-back
-- transactions and savepoints write nothing; the records of a transaction
-- are in change order (change index 0, 1, ... without gaps, across tables),
-- and transactions are in commit order.

CREATE TABLE tx_a (id int PRIMARY KEY, v text);
CREATE TABLE tx_b (id int PRIMARY KEY, v text);
CREATE TABLE tx_plain (id int PRIMARY KEY);     -- no stream
SELECT streams.enable_stream('tx_a', 'NEW_IMAGE', 1) IS NOT NULL AS enabled;
SELECT streams.enable_stream('tx_b', 'KEYS_ONLY', 1) IS NOT NULL AS enabled;

SELECT 'init' FROM pg_create_logical_replication_slot('regress_slot', 'pg_streams');

-- Rolled back: nothing.
BEGIN;
INSERT INTO tx_a VALUES (1, 'rolled back');
INSERT INTO tx_b VALUES (1, 'rolled back');
ROLLBACK;
-- Savepoints: what is rolled back to a savepoint leaves nothing, a released
-- savepoint's changes stay; other tables in between; no gaps in the index.
BEGIN;
INSERT INTO tx_a VALUES (1, 'kept');
SAVEPOINT s1;
INSERT INTO tx_a VALUES (2, 'rolled back');
UPDATE tx_a SET v = 'rolled back' WHERE id = 1;
INSERT INTO tx_b VALUES (2, 'rolled back');
ROLLBACK TO SAVEPOINT s1;
SAVEPOINT s2;
INSERT INTO tx_a VALUES (3, 'released');
SAVEPOINT s3;
DELETE FROM tx_a WHERE id = 3;
ROLLBACK TO SAVEPOINT s3;
RELEASE SAVEPOINT s2;
INSERT INTO tx_plain VALUES (1);
INSERT INTO tx_b VALUES (1, 'b');
UPDATE tx_a SET v = 'kept, updated' WHERE id = 1;
DELETE FROM tx_b WHERE id = 1;
COMMIT;
-- A PL/pgSQL exception block is a savepoint too.
DO $$
BEGIN
    INSERT INTO tx_a VALUES (4, 'outer block');
    BEGIN
        INSERT INTO tx_a VALUES (5, 'failed block');
        PERFORM 1 / 0;
    EXCEPTION WHEN division_by_zero THEN
        INSERT INTO tx_a VALUES (6, 'handler');
    END;
END $$;
-- A failed statement aborts the whole transaction.
BEGIN;
INSERT INTO tx_a VALUES (7, 'before error');
INSERT INTO tx_a VALUES (7, 'duplicate');
COMMIT;
SELECT * FROM pgs_brief('regress_slot');

-- Commit order, not start order: a second session commits in between.
CREATE EXTENSION dblink;
SELECT dblink_connect('other', 'dbname=' || current_database());
BEGIN;
INSERT INTO tx_a VALUES (10, 'A: started first, committed second');
SELECT dblink_exec('other', 'BEGIN');
SELECT dblink_exec('other', 'INSERT INTO tx_a VALUES (20, ''B: started second, committed first'')');
INSERT INTO tx_a VALUES (11, 'A: second change');
SELECT dblink_exec('other', 'INSERT INTO tx_a VALUES (21, ''B: second change'')');
SELECT dblink_exec('other', 'COMMIT');
INSERT INTO tx_a VALUES (12, 'A: after B committed');
COMMIT;
SELECT dblink_exec('other', 'INSERT INTO tx_a VALUES (40, ''D: alone'')');
SELECT dblink_disconnect('other');
SELECT tbl, xact, idx, event, keys, new_image->'v' AS v FROM pgs_brief('regress_slot');

-- A large transaction (spilled to disk: logical_decoding_work_mem is 64kB):
-- one commit LSN, change indexes 0..2999 in change order.
INSERT INTO tx_a SELECT i, repeat('x', 100) FROM generate_series(1000, 3999) AS i;
BEGIN;
INSERT INTO tx_b SELECT i FROM generate_series(1, 2000) AS i;
ROLLBACK;
SELECT count(*) AS records, count(DISTINCT xact) AS transactions, min(idx), max(idx),
       bool_and(idx = (keys->'id'->>'N')::int - 1000) AS change_order, bool_and(size_ok) AS sizes_ok
FROM pgs_brief('regress_slot');

-- DDL inside a streamed transaction: records follow the table's shape at
-- each change.
BEGIN;
INSERT INTO tx_a VALUES (50, 'before ADD COLUMN');
ALTER TABLE tx_a ADD COLUMN extra int DEFAULT 7;
INSERT INTO tx_a VALUES (51, 'after ADD COLUMN');
UPDATE tx_a SET extra = 8 WHERE id = 50;
ALTER TABLE tx_a DROP COLUMN extra;
INSERT INTO tx_a VALUES (52, 'after DROP COLUMN');
COMMIT;
ALTER TABLE tx_a ADD COLUMN later text DEFAULT 'default';
INSERT INTO tx_a VALUES (53, 'in a later transaction');
UPDATE tx_a SET later = 'set' WHERE id = 50;
SELECT tbl, xact, idx, event, keys, new_image, size_ok FROM pgs_brief('regress_slot');

-- The records of all these transactions, as the capture worker stored them,
-- are in commit order too.
CALL pgs_wait_records(pgs_arn('tx_a'), 3017);
SELECT count(*) AS records, bool_and(prev IS NULL OR (lsn, idx) > prev) AS increasing
FROM (SELECT r.lsn, r.idx, lag((r.lsn, r.idx)) OVER (ORDER BY r.lsn, r.idx) AS prev
      FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 'tx_a'::regclass) x;
SELECT (record::jsonb->'dynamodb'->'Keys'->'id'->>'N')::int AS id, record::jsonb->'dynamodb'->'NewImage'->'v'->>'S' AS v
FROM streams.record r JOIN streams.stream s USING (stream_id)
WHERE s.relid = 'tx_a'::regclass AND (record::jsonb->'dynamodb'->'Keys'->'id'->>'N')::int < 1000
ORDER BY r.lsn, r.idx;

SELECT pg_drop_replication_slot('regress_slot');
