#!/usr/bin/env bash
# The demo: installs what is missing, builds and installs pg_streams, starts a
# throwaway cluster (user postgres, port 5480, under /tmp), streams a table's
# changes, prints the records read back with get_records, and delivers them
# through event source mappings to SQL functions and to an HTTP sink on
# loopback (test/sink/sink.py, port 5481), showing what each received.
# Some steps use pg-streams, the command-line client, instead of SQL.
# KEEP=1 leaves the cluster running (stop it with the pg_ctl line printed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/setup.sh

PGBIN=${PGS_PREFIX:-}/usr/lib/postgresql/15/bin   # PGS_PREFIX: a private install (setup.sh)
PORT=${PORT:-5480}
DIR=$(mktemp -d /tmp/pg_streams_demo.XXXXXX)
RUNAS=()
[ "$(id -u)" = 0 ] && { chown postgres "$DIR"; RUNAS=(runuser -u postgres --); }
pg() { "${RUNAS[@]}" "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -d postgres "$@"; }
# pg-streams, installed next to psql; environment variables are passed as VAR=value arguments.
cli() {
  local envs=()
  while [[ "${1:-}" == *=* && "${1:-}" != -* ]]; do envs+=("$1"); shift; done
  "${RUNAS[@]}" env "${envs[@]}" "$PGBIN/pg-streams" -h "$DIR" -p "$PORT" -d postgres "$@"
}
SINK_PORT=${SINK_PORT:-5481}
SINK_PID=
stop() {
  [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null || true
  "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
[ "${KEEP:-0}" = 1 ] || trap stop EXIT

"${RUNAS[@]}" "$PGBIN/initdb" -D "$DIR/data" --encoding=UTF8 --no-locale -A trust >/dev/null
cat >> "$DIR/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DIR'
shared_preload_libraries = 'pg_streams'
wal_level = logical
output_plugin_libraries = 'pgoutput, test_decoding, pg_streams'
max_replication_slots = 10
max_worker_processes = 32
CONF
"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null
echo "== cluster started in $DIR (port $PORT)"

pg -c "CREATE EXTENSION pg_streams"
pg <<'SQL'
CREATE TABLE orders (
    order_id  int PRIMARY KEY,
    customer  text NOT NULL,
    items     jsonb,
    total     numeric(10,2),
    paid      boolean DEFAULT false
);
SQL
echo "== enable_stream"
pg -c "SELECT jsonb_pretty(streams.enable_stream('orders', 'NEW_AND_OLD_IMAGES', 2))"
pg <<'SQL'
INSERT INTO orders VALUES (1, 'alice', '[{"sku":"A1","qty":2}]', 19.90),
                          (2, 'bob',   '[{"sku":"B7","qty":1}]', 5.00);
UPDATE orders SET paid = true WHERE order_id = 1;
UPDATE orders SET paid = true WHERE order_id = 1;   -- no change: no record
BEGIN; DELETE FROM orders WHERE order_id = 1; ROLLBACK;  -- rolled back: no record
DELETE FROM orders WHERE order_id = 2;
SQL

echo "== waiting for the capture worker"
for _ in $(seq 1 100); do
  n=$(pg -At -c "SELECT count(*) FROM streams.record")
  [ "$n" -ge 4 ] && break
  sleep 0.1
done

echo "== pg-streams dynamodbstreams describe-stream (the client: AWS CLI's commands, over libpq)"
ARN=$(cli dynamodbstreams list-streams --table-name orders --query 'Streams[0].StreamArn' --output text)
cli dynamodbstreams describe-stream --stream-arn "$ARN"
echo "== get_records, shard by shard, from TRIM_HORIZON"
pg -At <<'SQL'
SELECT format(E'-- %s\n%s', shard->>'ShardId',
              jsonb_pretty(streams.get_records(
                  streams.get_shard_iterator(d->>'StreamArn', shard->>'ShardId', 'TRIM_HORIZON'))))
FROM (SELECT streams.describe_stream(streams.list_streams('orders')->'Streams'->0->>'StreamArn')->'StreamDescription' AS d) x,
     jsonb_array_elements(d->'Shards') AS shard;
SQL

echo "== event source mappings: a read model keyed by customer, and a failing target"
pg <<'SQL'
-- The read model: the same orders, keyed by (customer, order_id).
CREATE TABLE orders_by_customer (
    customer text, order_id int, total numeric(10,2), paid boolean,
    PRIMARY KEY (customer, order_id)
);
CREATE FUNCTION maintain_orders_by_customer(event jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
BEGIN
    FOR r IN SELECT * FROM jsonb_array_elements(event->'Records') LOOP
        IF r->>'eventName' IN ('MODIFY', 'REMOVE') THEN
            DELETE FROM orders_by_customer
            WHERE customer = r#>>'{dynamodb,OldImage,customer,S}'
              AND order_id = (r#>>'{dynamodb,Keys,order_id,N}')::int;
        END IF;
        IF r->>'eventName' IN ('INSERT', 'MODIFY') THEN
            INSERT INTO orders_by_customer VALUES (
                r#>>'{dynamodb,NewImage,customer,S}', (r#>>'{dynamodb,Keys,order_id,N}')::int,
                (r#>>'{dynamodb,NewImage,total,N}')::numeric, (r#>>'{dynamodb,NewImage,paid,BOOL}')::boolean);
        END IF;
    END LOOP;
END $$;
SELECT streams.create_function('orders_by_customer', 'maintain_orders_by_customer(jsonb)') IS NOT NULL AS created;
SELECT streams.create_event_source_mapping('{"EventSourceArn": "orders", "FunctionName": "orders_by_customer",
    "StartingPosition": "TRIM_HORIZON", "BatchSize": 100}')->>'State' AS state;

-- A target that always fails: after 1 + 2 retries each batch lands in streams.failed_batches.
CREATE FUNCTION reject_all(event jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'downstream rejected % records', jsonb_array_length(event->'Records');
END $$;
SELECT streams.create_function('reject_all', 'reject_all(jsonb)') IS NOT NULL AS created;
SELECT streams.create_event_source_mapping('{"EventSourceArn": "orders", "FunctionName": "reject_all",
    "StartingPosition": "LATEST", "MaximumRetryAttempts": 2,
    "DestinationConfig": {"OnFailure": {"Destination": "streams.failed_batches"}}}')->>'State' AS state;
-- A filtered mapping: only orders that become paid reach the function
-- (FilterCriteria; the other records are dropped before batching).
CREATE TABLE payments (order_id int, total numeric(10,2), paid_at timestamptz DEFAULT now());
CREATE FUNCTION record_payment(event jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO payments (order_id, total)
    SELECT (r#>>'{dynamodb,Keys,order_id,N}')::int, (r#>>'{dynamodb,NewImage,total,N}')::numeric
    FROM jsonb_array_elements(event->'Records') r
$$;
SELECT streams.create_function('record_payment', 'record_payment(jsonb)') IS NOT NULL AS created;
SELECT streams.create_event_source_mapping('{"EventSourceArn": "orders", "FunctionName": "record_payment",
    "StartingPosition": "TRIM_HORIZON", "FilterCriteria": {"Filters": [{"Pattern":
    "{\"eventName\": [\"MODIFY\"], \"dynamodb\": {\"NewImage\": {\"paid\": {\"BOOL\": [true]}}, \"OldImage\": {\"paid\": {\"BOOL\": [false]}}}}"}]}}')
    ->'FilterCriteria' AS filter_criteria;
-- Tumbling windows: new orders per customer per 5-second window, into a
-- table (each window's final invocation writes the aggregate it was handed).
CREATE TABLE orders_per_window (window_start timestamptz, customer text, orders int, total numeric(10,2));
CREATE FUNCTION count_orders(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    st jsonb := event->'state';
    r jsonb;
    c text;
BEGIN
    FOR r IN SELECT * FROM jsonb_array_elements(event->'Records') LOOP
        c := r#>>'{dynamodb,NewImage,customer,S}';
        st := st || jsonb_build_object(c, jsonb_build_object('n', coalesce((st->c->>'n')::int, 0) + 1,
            'total', coalesce((st->c->>'total')::numeric, 0) + (r#>>'{dynamodb,NewImage,total,N}')::numeric));
    END LOOP;
    IF (event->>'isFinalInvokeForWindow')::boolean THEN
        INSERT INTO orders_per_window SELECT (event#>>'{window,start}')::timestamptz, key,
            (value->>'n')::int, (value->>'total')::numeric FROM jsonb_each(st);
    END IF;
    RETURN jsonb_build_object('state', st);
END $$;
SELECT streams.create_function('count_orders', 'count_orders(jsonb)') IS NOT NULL AS created;
SELECT streams.create_event_source_mapping('{"EventSourceArn": "orders", "FunctionName": "count_orders",
    "StartingPosition": "TRIM_HORIZON", "TumblingWindowInSeconds": 5,
    "FilterCriteria": {"Filters": [{"Pattern": "{\"eventName\": [\"INSERT\"]}"}]}}')->>'TumblingWindowInSeconds' AS window_seconds;
-- The same pattern tried on an event with streams.test_event_pattern:
SELECT streams.test_event_pattern('{"dynamodb": {"NewImage": {"paid": {"BOOL": [true]}}}}',
    '{"eventName": "MODIFY", "dynamodb": {"NewImage": {"paid": {"BOOL": true}}}}') AS matches;
SQL
echo "== more writes"
pg <<'SQL'
INSERT INTO orders VALUES (3, 'carol', '[{"sku":"C3","qty":5}]', 42.00), (4, 'alice', NULL, 7.50);
UPDATE orders SET paid = true, total = 40.00 WHERE order_id = 3;
SQL
echo "== waiting for both mappings"
for _ in $(seq 1 150); do
  done_=$(pg -At -c "SELECT (SELECT coalesce(sum(backlog), 1) = 0 FROM streams.event_source_mapping_stats
                             WHERE function_name IN ('orders_by_customer', 'record_payment'))
                        AND (SELECT count(*) > 0 FROM streams.failed_batches)")
  [ "$done_" = t ] && break
  sleep 0.2
done
echo "== the read model (orders keyed by customer)"
pg -c "SELECT * FROM orders_by_customer ORDER BY customer, order_id"
echo "== payments: only the MODIFY records that set paid (the filtered mapping)"
pg -c "SELECT order_id, total FROM payments ORDER BY order_id"
echo "== new orders per customer per 5-second window (TumblingWindowInSeconds; final invocations come by the clock)"
for _ in $(seq 1 100); do
  [ "$(pg -At -c "SELECT coalesce(sum(orders), 0) FROM orders_per_window")" = 4 ] && break
  sleep 0.2
done
pg -c "SELECT window_start, customer, orders, total FROM orders_per_window ORDER BY 1, 2"
echo "== a failed batch in streams.failed_batches"
pg -At -c "SELECT jsonb_pretty(record) FROM streams.failed_batches ORDER BY id LIMIT 1"
echo "== pg-streams stats (streams.event_source_mapping_stats)"
cli stats

echo "== an HTTP target: the loopback sink on port $SINK_PORT, with a signing secret"
python3 test/sink/sink.py --port "$SINK_PORT" >/dev/null 2>&1 &
SINK_PID=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$SINK_PORT/_health" >/dev/null && break; sleep 0.1; done
echo "   pg-streams lambda create-http-function (the signing secret from the environment, never shown)"
cli DEMO_SIGNING_SECRET=demo-signing-secret-0123 lambda create-http-function --function-name orders_webhook \
    --url "http://127.0.0.1:$SINK_PORT/orders" --timeout 5 \
    --signing-secret env:DEMO_SIGNING_SECRET --secret-headers 'Authorization=Bearer demo' \
    --query FunctionArn --output text
echo "   pg-streams lambda create-event-source-mapping"
cli lambda create-event-source-mapping --event-source-arn orders --function-name orders_webhook \
    --starting-position TRIM_HORIZON --batch-size 10 --output table
for _ in $(seq 1 100); do
  [ "$(pg -At -c "SELECT coalesce(sum(backlog), 1) = 0 FROM streams.event_source_mapping_stats
                   WHERE function_name = 'orders_webhook'")" = t ] && break
  sleep 0.1
done
echo "== what the sink received (headers, and the first record of each POST)"
curl -s "http://127.0.0.1:$SINK_PORT/_requests?path=/orders" | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    h = r["headers"]
    body = json.loads(r["body"])
    print("POST /orders  idempotency-key=%s  signature=%s" % (h.get("idempotency-key", "")[:16] + "...", h.get("x-pgs-signature", "")[:19] + "..."))
    print("  %d records: %s" % (len(body["Records"]), ", ".join(x["eventName"] + " " + json.dumps(x["dynamodb"]["Keys"]) for x in body["Records"])))
'
if [ "${KEEP:-0}" = 1 ]; then
  echo "== cluster left running: psql -h $DIR -p $PORT postgres; stop: ${RUNAS[*]} $PGBIN/pg_ctl -D $DIR/data stop"
fi
