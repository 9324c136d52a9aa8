-- Testing handlers with pg_regress: streams.wait_for_delivery makes a test
-- that inserts rows and checks what its handler did deterministic (no sleep);
-- streams.invoke calls a function once with a given event.

-- The example from the README: a handler that keeps a running total.
CREATE TABLE orders (id int PRIMARY KEY, amount numeric NOT NULL);
CREATE TABLE order_totals (n int, total numeric);
INSERT INTO order_totals VALUES (0, 0);
CREATE FUNCTION add_orders(event jsonb) RETURNS void LANGUAGE sql AS $$
    UPDATE order_totals t SET n = t.n + x.n, total = t.total + x.total
    FROM (SELECT count(*) AS n, coalesce(sum((r->'dynamodb'->'NewImage'->'amount'->>'N')::numeric), 0) AS total
            FROM jsonb_array_elements(event->'Records') r WHERE r->>'eventName' = 'INSERT') x
$$;
SELECT streams.enable_stream('orders', 'NEW_IMAGE') IS NOT NULL AS stream_enabled;
SELECT streams.create_function('add_orders', 'add_orders(jsonb)') IS NOT NULL AS function_created;
SELECT streams.create_event_source_mapping(
    '{"EventSourceArn":"orders","FunctionName":"add_orders","StartingPosition":"LATEST","BatchSize":100}')->>'UUID' AS uuid \gset

INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 10) g;
INSERT INTO orders VALUES (11, 100);
SELECT streams.wait_for_delivery(:'uuid')->'Records' AS records_delivered;
SELECT * FROM order_totals;

-- Every mapping of the caller at once; the result holds the mappings' totals.
SELECT streams.wait_for_delivery()->'Records' AS nothing_new;
UPDATE orders SET amount = 0 WHERE id = 11;   -- MODIFY: the handler ignores it
SELECT streams.wait_for_delivery()->'Records' AS after_update;
SELECT * FROM order_totals;

-- wait_for_capture: committed changes are readable in the stream.
INSERT INTO orders VALUES (12, 7);
SELECT streams.wait_for_capture();
SELECT count(*) AS records_of_orders FROM streams.record r JOIN streams.stream s USING (stream_id)
 WHERE s.relid = 'orders'::regclass;

-- Errors: bad timeout, unknown or disabled mapping, inside a writing
-- transaction or a REPEATABLE READ one.
SELECT pgs_try($$SELECT streams.wait_for_capture(interval '-1 s')$$) AS negative_timeout;
SELECT pgs_try($$SELECT streams.wait_for_delivery('00000000-0000-0000-0000-000000000000')$$) AS unknown_mapping;
BEGIN;
INSERT INTO orders VALUES (13, 1);
SELECT pgs_try($$SELECT streams.wait_for_delivery()$$) AS in_writing_transaction;
ROLLBACK;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pgs_try($$SELECT streams.wait_for_delivery()$$) AS in_repeatable_read;
ROLLBACK;
SELECT streams.update_event_source_mapping(:'uuid', '{"Enabled": false}')->>'State' AS state;
SELECT replace(pgs_try(format('SELECT streams.wait_for_delivery(%L)', :'uuid')), :'uuid', '<uuid>') AS disabled_mapping;

-- A handler that fails: the wait times out naming the shard and the error.
CREATE TABLE pay (id int PRIMARY KEY);
CREATE FUNCTION pay_fails(event jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'payment service down'; END $$;
SELECT streams.enable_stream('pay', 'KEYS_ONLY') IS NOT NULL AS stream_enabled;
SELECT streams.create_function('pay_fails', 'pay_fails(jsonb)') IS NOT NULL AS function_created;
SELECT streams.create_event_source_mapping(
    '{"EventSourceArn":"pay","FunctionName":"pay_fails","StartingPosition":"LATEST"}')->>'UUID' AS pay_uuid \gset
INSERT INTO pay VALUES (1);
SELECT regexp_replace(pgs_try(format('SELECT streams.wait_for_delivery(%L, %L)', :'pay_uuid', '2 s')),
                      'shardId-[0-9]+-[0-9a-f]+|1[0-9]{30}|[0-9a-f-]{36}', '<x>', 'g') AS timed_out;
SELECT streams.delete_event_source_mapping(:'pay_uuid') IS NULL AS deleted;

-- invoke: one call, as the caller, the function's response or its error.
CREATE FUNCTION echo_count(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('count', jsonb_array_length(event->'Records'), 'user', current_user)
$$;
SELECT streams.create_function('echo_count', 'echo_count(jsonb)') IS NOT NULL AS function_created;
SELECT streams.invoke('echo_count', '{"Records":[{},{}]}') - 'user' AS response;
SELECT streams.invoke('add_orders', '{"Records":[]}') AS void_response;
SELECT pgs_try($$SELECT streams.invoke('pay_fails', '{"Records":[]}')$$) AS function_error;
SELECT pgs_try($$SELECT streams.invoke('no_such_function', '{}')$$) AS unknown_function;
SELECT pgs_try($$SELECT streams.invoke('echo_count', NULL)$$) AS null_event;
CREATE FUNCTION slow(event jsonb) RETURNS void LANGUAGE sql AS 'SELECT pg_sleep(5)';
SELECT streams.create_function('slow', 'slow(jsonb)', 1) IS NOT NULL AS function_created;
DO $$
BEGIN
    PERFORM streams.invoke('slow', '{}');
EXCEPTION WHEN query_canceled THEN
    RAISE NOTICE 'invoke of slow: %', SQLERRM;
END $$;

-- Another role may not invoke a function it is not a member of the owner of.
CREATE ROLE pgs_invoke_other;
SET ROLE pgs_invoke_other;
SELECT pgs_try($$SELECT streams.invoke('echo_count', '{}')$$) AS other_role;
RESET ROLE;
DROP ROLE pgs_invoke_other;

SELECT streams.delete_event_source_mapping(:'uuid') IS NULL AS deleted;
SELECT streams.delete_function(f) FROM unnest(ARRAY['add_orders', 'pay_fails', 'echo_count', 'slow']) f;
SELECT streams.disable_stream('orders') IS NOT NULL, streams.disable_stream('pay') IS NOT NULL;
DROP TABLE orders, order_totals, pay;
DROP FUNCTION add_orders(jsonb), pay_fails(jsonb), echo_count(jsonb), slow(jsonb);

-- sample_event: the event a mapping would send for a row given as JSON,
-- built by the decoder (types, SizeBytes, keys, the stream's ARN).
-- Values are written with the session's DateStyle and TimeZone (the capture
-- worker uses the server's).
SET datestyle = 'ISO, MDY';
SET timezone = 'UTC';
CREATE TABLE sample_t (id int PRIMARY KEY, name text, price numeric, tags text[], ok boolean, at timestamptz);
SELECT streams.enable_stream('sample_t', 'NEW_AND_OLD_IMAGES') IS NOT NULL AS stream_enabled;
SELECT jsonb_pretty(e #- '{Records,0,eventID}' #- '{Records,0,dynamodb,SequenceNumber}'
                      #- '{Records,0,dynamodb,ApproximateCreationDateTime}' #- '{Records,0,eventSourceARN}') AS insert_event
  FROM streams.sample_event('sample_t', 'INSERT',
         '{"id": 1, "name": "pen", "price": 1.50, "tags": ["a", "b"], "ok": true, "at": "2026-12-02T10:00:00Z"}') e;
SELECT e->'Records'->0->>'eventSourceARN' = (SELECT stream_arn FROM streams.stream WHERE relid = 'sample_t'::regclass) AS arn_of_stream,
       e->'Records'->0->'dynamodb'->>'SequenceNumber' ~ '^1[0-9]{30}$' AS has_sequence_number
  FROM streams.sample_event('sample_t', 'INSERT', '{"id": 1}') e;
SELECT (e->'Records'->0->'dynamodb') - 'SequenceNumber' - 'ApproximateCreationDateTime' AS modify_keys_only
  FROM streams.sample_event('sample_t', 'MODIFY', '{"id": 2, "name": "new"}', '{"id": 2, "name": "old"}', 'KEYS_ONLY') e;
SELECT e->'Records'->0->'dynamodb'->'OldImage' AS remove_old_image, e->'Records'->0->'dynamodb'->'NewImage' AS no_new_image
  FROM streams.sample_event('sample_t', 'REMOVE', old_image => '{"id": 3, "name": "gone"}') e;
-- What sample_event gives is what a handler receives: invoke it.
CREATE FUNCTION echo_count2(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('count', jsonb_array_length(event->'Records'),
                              'id', event->'Records'->0->'dynamodb'->'Keys'->'id'->>'N')
$$;
SELECT streams.create_function('echo_count2', 'echo_count2(jsonb)') IS NOT NULL AS function_created;
SELECT streams.invoke('echo_count2', streams.sample_event('sample_t', 'INSERT', '{"id": 4}')) AS invoked;
SELECT pgs_try(format('SELECT streams.sample_event(%L, %L, %L, %L, %L)', t, ev, n, o, v)) AS error
  FROM (VALUES ('sample_t', 'UPSERT', '{"id":1}', NULL, NULL), ('sample_t', 'INSERT', NULL, NULL, NULL),
               ('sample_t', 'REMOVE', '{"id":1}', NULL, NULL), ('sample_t', 'INSERT', '{"nope":1}', NULL, NULL),
               ('sample_t', 'INSERT', '{"name":"no key"}', NULL, NULL), ('sample_t', 'INSERT', '[1]', NULL, NULL),
               ('sample_t', 'INSERT', '{"id":"x"}', NULL, NULL), ('sample_t', 'INSERT', '{"id":1}', NULL, 'ALL'),
               ('pg_class', 'INSERT', '{"oid":1}', NULL, NULL)) AS x(t, ev, n, o, v);
-- A row of another shape is refused, and a table with a dropped column works.
SELECT pgs_try($$SELECT streams._sample_event('sample_t', 'INSERT', ROW(1, 'x'::text), NULL, NULL)$$) AS wrong_row;
ALTER TABLE sample_t DROP COLUMN ok;
SELECT e->'Records'->0->'dynamodb'->'NewImage' AS after_drop
  FROM streams.sample_event('sample_t', 'INSERT', '{"id": 5, "name": "cap", "price": 2}') e;
SELECT streams.delete_function('echo_count2');
SELECT streams.disable_stream('sample_t') IS NOT NULL AS disabled;
DROP TABLE sample_t;
DROP FUNCTION echo_count2(jsonb);
RESET datestyle;
RESET timezone;
