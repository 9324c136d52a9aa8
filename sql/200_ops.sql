-- Backfill (streams.backfill, cancel_backfill, backfill_progress): argument
-- errors, privileges, and the records it adds.
CREATE TABLE bf (id int PRIMARY KEY, v text, d date);
INSERT INTO bf SELECT g, 'v' || g, date '2026-01-01' + g FROM generate_series(1, 25) g;
SELECT streams.enable_stream('bf', 'NEW_IMAGE', 2) IS NOT NULL AS enabled;
CREATE TABLE bf_nostream (id int PRIMARY KEY);

-- Argument errors.
\set VERBOSITY default
CALL streams.backfill(NULL);
CALL streams.backfill('bf', 0);
CALL streams.backfill('bf', 100001);
CALL streams.backfill('bf', restart => NULL);
CALL streams.backfill('bf_nostream');
CALL streams.backfill('pg_class');
SELECT streams.cancel_backfill(NULL);
SELECT streams.cancel_backfill('bf');
-- Inside a transaction block a backfill cannot commit its chunks.
BEGIN;
CALL streams.backfill('bf');
ROLLBACK;
\set VERBOSITY terse

-- Rows are written to the stream only by streams.backfill.
SELECT streams._backfill_emit(b) FROM bf b WHERE id = 1;
SELECT streams._backfill_chunk_begin(1);

-- The backfill: 25 rows in chunks of 10.
SELECT streams.wait_for_capture();
CALL streams.backfill('bf', 10);
SELECT streams.wait_for_capture();
SELECT count(*) AS records,
       count(*) FILTER (WHERE record::jsonb->'userIdentity' = '{"type":"Service","principalId":"pg_streams.backfill"}') AS backfilled,
       count(DISTINCT record::jsonb->'dynamodb'->'Keys') AS keys,
       bool_and(record::jsonb->>'eventName' = 'INSERT') AS all_insert,
       count(DISTINCT lsn) AS transactions
FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 'bf'::regclass;
-- A record looks like an INSERT record with a userIdentity after dynamodb.
SELECT array_agg(k ORDER BY o) AS top_keys, (record::jsonb->'dynamodb') - 'ApproximateCreationDateTime' - 'SequenceNumber' AS dynamodb
FROM (SELECT record::jsonb AS record FROM streams.record r JOIN streams.stream s USING (stream_id)
      WHERE s.relid = 'bf'::regclass AND record::jsonb->'dynamodb'->'Keys'->'id'->>'N' = '7') x,
     LATERAL (SELECT k, o FROM jsonb_object_keys(x.record::jsonb) WITH ORDINALITY AS j(k, o)) y
GROUP BY record::jsonb;
SELECT position('"userIdentity"' IN r.record::text) > position('"dynamodb"' IN r.record::text) AS after_dynamodb
FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 'bf'::regclass LIMIT 1;
SELECT table_name, status, rows_done, rows_total, percent_done, chunks, chunk_size, active, finished_at IS NOT NULL AS finished
FROM streams.backfill_progress;
SELECT streams.cancel_backfill('bf');

-- A composite key (text, int) in chunks of 5.
CREATE TABLE bf2 (a text, b int, v jsonb, PRIMARY KEY (a, b));
INSERT INTO bf2 SELECT chr(97 + g % 3), g, jsonb_build_object('g', g) FROM generate_series(1, 12) g;
SELECT streams.enable_stream('bf2', 'NEW_AND_OLD_IMAGES', 1) IS NOT NULL AS enabled;
CALL streams.backfill('bf2', 5);
SELECT streams.wait_for_capture();
SELECT count(*) AS records, count(DISTINCT record::jsonb->'dynamodb'->'Keys') AS keys,
       bool_and(record::jsonb->'dynamodb' ? 'NewImage' AND NOT record::jsonb->'dynamodb' ? 'OldImage') AS new_image_only
FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 'bf2'::regclass;
-- A finished job is not resumed: a new call starts again.
CALL streams.backfill('bf2', 100);
SELECT job_id, status, rows_done, chunks FROM streams.backfill_progress WHERE table_name = 'public.bf2' ORDER BY job_id;

-- Privileges: two roles that do not own the table.
CREATE ROLE bf_reader;
CREATE ROLE bf_other;
GRANT SELECT, UPDATE ON bf TO bf_reader;
SET ROLE bf_reader;
CALL streams.backfill('bf');
SELECT streams.cancel_backfill('bf');
SELECT count(*) AS visible_jobs FROM streams.backfill_progress;
SELECT streams._backfill_chunk_begin(1);
SELECT streams._backfill_set_total(1, 0);
SELECT streams._backfill_chunk_end(1, NULL, 1000);
SELECT * FROM streams.backfill_job;
SELECT streams._backfill_emit(b) FROM bf b WHERE id = 1;
SELECT streams._backfill_authorize('bf'::regclass);
-- A forged message, as if from a backfill, is ignored by capture.
SELECT pg_logical_emit_message(true, 'pg_streams.backfill', 'PGB1 forged') IS NOT NULL AS emitted;
RESET ROLE;
-- bf_reader backfills a table of its own, its chunk granted by hand: it still
-- cannot put rows of bf into bf's stream, neither through _backfill_emit nor
-- with a message it writes itself (it cannot know the chunk's token).
CREATE SCHEMA bf_s AUTHORIZATION bf_reader;
SET ROLE bf_reader;
CREATE TABLE bf_s.mine (id int PRIMARY KEY);
INSERT INTO bf_s.mine VALUES (1);
SELECT streams.enable_stream('bf_s.mine', 'NEW_IMAGE', 1) IS NOT NULL AS enabled;
SELECT (streams._backfill_start('bf_s.mine', 10, false))->>'job_id' AS job \gset
BEGIN;
SELECT streams._backfill_chunk_begin(:job);
SELECT streams._backfill_emit(b) FROM bf b WHERE id = 1;
ROLLBACK;
BEGIN;
SELECT streams._backfill_chunk_begin(:job);
SELECT pg_logical_emit_message(true, 'pg_streams.backfill',
         decode('50474231' || (SELECT string_agg(lpad(to_hex(('bf'::regclass::oid::bigint >> (8 * i)) & 255), 2, '0'), '' ORDER BY i)
                              FROM generate_series(0, 3) i)
                || '0102030405060708' || repeat('ff', 40), 'hex')) IS NOT NULL AS forged;
COMMIT;
RESET ROLE;
SET ROLE bf_other;
CALL streams.backfill('bf');
SELECT count(*) AS visible_jobs FROM streams.backfill_progress;
RESET ROLE;
SELECT streams.wait_for_capture();
SELECT count(*) AS records_still FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 'bf'::regclass;
SELECT count(*) AS records_of_mine FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 'bf_s.mine'::regclass;
-- A role owning the table (by membership) may.
GRANT bf_other TO bf_reader;
ALTER TABLE bf OWNER TO bf_other;
SET ROLE bf_reader;
CALL streams.backfill('bf', 1000);
SELECT count(*) AS visible_jobs FROM streams.backfill_progress WHERE table_name = 'public.bf';
RESET ROLE;
SELECT streams.wait_for_capture();
SELECT count(*) AS records FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 'bf'::regclass;
-- Row-level security forced on the owner: refused (rows would be left out).
ALTER TABLE bf ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
SET ROLE bf_other;
CALL streams.backfill('bf');
RESET ROLE;
ALTER TABLE bf NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;

-- Redrive (streams.redrive_failed_batches): argument errors.
CALL streams.redrive_failed_batches(NULL);
CALL streams.redrive_failed_batches('bf_nostream');
CALL streams.redrive_failed_batches(options => '[]');
CALL streams.redrive_failed_batches(options => '{"Bogus": 1}');
CALL streams.redrive_failed_batches(options => '{"Limit": 0}');
CALL streams.redrive_failed_batches(options => '{"MaximumRetryAttempts": -1}');
CALL streams.redrive_failed_batches(options => '{"From": "not a time"}');
CALL streams.redrive_failed_batches(options => '{"UUID": "00000000-0000-0000-0000-000000000000"}');
-- Nothing to redrive: an empty summary.
CALL streams.redrive_failed_batches();

-- Privileges: a failure row naming another role's mapping is refused and
-- kept; rows of other roles are not seen; functions of other roles are not
-- called.
CREATE TABLE rd_src (id int PRIMARY KEY);
CREATE TABLE rd_seen (id int);
CREATE FUNCTION rd_h(event jsonb) RETURNS void LANGUAGE sql AS $$ INSERT INTO rd_seen VALUES (1) $$;
SELECT streams.enable_stream('rd_src', 'KEYS_ONLY', 1) IS NOT NULL AS enabled;
SELECT streams.create_function('rd_h', 'rd_h(jsonb)') IS NOT NULL AS created;
SELECT streams.create_event_source_mapping('{"EventSourceArn":"rd_src","FunctionName":"rd_h","StartingPosition":"LATEST","Enabled":false}') IS NOT NULL AS mapped;
CREATE ROLE rd_a;
CREATE ROLE rd_b;
SET ROLE rd_b;
INSERT INTO streams.failed_batches (record)
SELECT jsonb_build_object('requestContext', jsonb_build_object('functionArn', 'arn:aws:lambda:us-east-1:000000000000:function:rd_h'),
                          'DDBStreamBatchInfo', jsonb_build_object('streamArn', pgs_arn('rd_src'), 'shardId', 's', 'startSequenceNumber', '1'),
                          'payload', jsonb_build_object('Records', jsonb_build_array(jsonb_build_object('eventName', 'INSERT'))),
                          'timestamp', '2026-12-01T00:00:00.000Z');
CALL streams.redrive_failed_batches() \gset
SELECT (:'summary'::jsonb)->'BatchesRedriven' AS redriven, (:'summary'::jsonb)->'BatchesRefused' AS refused,
       (:'summary'::jsonb)->'Problems'->>0 LIKE 'must be a member of role %, the owner of event source mapping %' AS why;
CALL streams.redrive_failed_batches(options => '{"FunctionName": "rd_h"}') \gset
SELECT (:'summary'::jsonb)->'BatchesRefused' AS refused, (:'summary'::jsonb)->'Problems'->>0 AS why;
SELECT count(*) AS kept FROM streams.failed_batches;
SELECT streams._redrive_invoke('rd_h', '{"Records":[]}', '', 'rd_b'::regrole);
RESET ROLE;
SELECT count(*) AS not_called FROM rd_seen;
SET ROLE rd_a;
SELECT count(*) AS visible FROM streams.failed_batches;
CALL streams.redrive_failed_batches();
SELECT count(*) AS visible FROM streams.redrive_in_doubt;
RESET ROLE;
-- The mapping's owner may: the row is delivered and removed.
CALL streams.redrive_failed_batches(options => '{"From": "2026-11-30", "To": "2026-12-02"}') \gset
SELECT (:'summary'::jsonb)->'BatchesRedriven' AS redriven, (:'summary'::jsonb)->'RecordsDelivered' AS delivered;
SELECT count(*) AS called FROM rd_seen;
SELECT count(*) AS left_over FROM streams.failed_batches;
SELECT streams.delete_event_source_mapping(uuid) IS NOT NULL AS deleted FROM streams.event_source_mapping WHERE function_name = 'rd_h';
SELECT streams.delete_function('rd_h') IS NOT NULL AS deleted;
SELECT streams.disable_stream('rd_src') IS NOT NULL AS disabled;
DROP TABLE rd_src, rd_seen;
DROP FUNCTION rd_h(jsonb);
DROP ROLE rd_a, rd_b;

SELECT streams.disable_stream('bf') IS NOT NULL AS disabled, streams.disable_stream('bf2') IS NOT NULL AS disabled2;
SELECT streams.disable_stream('bf_s.mine') IS NOT NULL AS disabled3;
DROP TABLE bf, bf2, bf_nostream, bf_s.mine;
DROP SCHEMA bf_s;
DROP ROLE bf_reader, bf_other;
