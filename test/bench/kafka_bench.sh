#!/usr/bin/env bash
# Kafka targets benchmark (issue 20). Run as root after test/setup.sh:
#
#     PGS_PREFIX=/opt/pgs-mine bash test/bench/kafka_bench.sh
#
# On a throwaway cluster (unix socket under /tmp) and librdkafka's mock
# cluster (3 brokers on loopback, test/kafka/kafka_mock.cpp), measures:
#   1. draining a backlog of ROWS records through a mapping to a Kafka
#      function (BatchSize 1000, topic of 4 partitions): records/s from
#      enabling the mapping until its checkpoints pass every record;
#   2. kcat producing the same records (key and value, from a file) to
#      another topic of the same mock cluster, idempotent with acks=all:
#      records/s of the same run, the baseline.
# Prints a Markdown table. Never asserts on speed.
# Knobs: BENCH_ROWS (200000), BENCH_TXNS (400), BENCH_PORT (5513), BENCH_BATCH (1000),
# BENCH_KAFKA_OPTIONS (the Kafka function's options, default {"Timeout": 120}), KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${BENCH_ROWS:-200000}
TXNS=${BENCH_TXNS:-400}
PORT=${BENCH_PORT:-5513}
PER_TXN=$((ROWS / TXNS))
BATCH=${BENCH_BATCH:-1000}
KOPTS=${BENCH_KAFKA_OPTIONS:-'{"Timeout": 120}'}
PGBIN=${PGS_PREFIX:-}/usr/lib/postgresql/15/bin
DIR=$(mktemp -d /tmp/pgs_kafka_bench.XXXXXX)
chmod 755 "$DIR"
RUNAS=()
[ "$(id -u)" = 0 ] && { RUNAS=(runuser -u postgres --); chown postgres "$DIR"; }
Q() { "${RUNAS[@]}" "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -d postgres "$@"; }
now() { date +%s.%N; }
calc() { python3 -c "print(round($1, 2))"; }
MOCK_PID=
cleanup() {
  [ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null || true
  [ -n "${KEEP:-}" ] && { echo "cluster kept in $DIR (port $PORT)"; return; }
  "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

# The mock cluster, driven through a FIFO (one command a line, one answer a line).
g++ -std=c++17 -O2 test/kafka/kafka_mock.cpp -lrdkafka -o "$DIR/kafka_mock"
mkfifo "$DIR/mock.in"
"$DIR/kafka_mock" 3 < "$DIR/mock.in" > "$DIR/mock.out" 2> "$DIR/mock.err" &
MOCK_PID=$!
exec 3> "$DIR/mock.in"
mock() {  # mock COMMAND: sends it, waits for its answer
  local before
  before=$(wc -l < "$DIR/mock.out")
  echo "$1" >&3
  for _ in $(seq 1 600); do [ "$(wc -l < "$DIR/mock.out")" -gt "$before" ] && break; sleep 0.1; done
  tail -n 1 "$DIR/mock.out"
}
for _ in $(seq 1 100); do grep -q '^bootstrap ' "$DIR/mock.out" && break; sleep 0.1; done
BOOTSTRAP=$(sed -n 's/^bootstrap //p' "$DIR/mock.out")
mock "topic bench 4" >/dev/null
mock "topic kcat 4" >/dev/null
echo "mock cluster: $BOOTSTRAP"

"${RUNAS[@]}" "$PGBIN/initdb" -D "$DIR/data" --encoding=UTF8 --no-locale -A trust >/dev/null
cat >> "$DIR/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$DIR'
port = $PORT
shared_preload_libraries = 'pg_streams'
wal_level = logical
output_plugin_libraries = 'pgoutput, test_decoding, pg_streams'
max_worker_processes = 16
shared_buffers = 512MB
max_wal_size = 4GB
synchronous_commit = off
CONF
"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null

Q <<SQL >/dev/null
CREATE EXTENSION pg_streams;
CREATE TABLE items (id bigint PRIMARY KEY, account integer NOT NULL, amount numeric(12,2) NOT NULL,
    note text NOT NULL, created timestamptz NOT NULL) WITH (autovacuum_enabled = off);
SELECT streams.enable_stream('items', 'NEW_AND_OLD_IMAGES', 4);
SELECT streams.create_kafka_function('bench', '$BOOTSTRAP', 'bench', '$KOPTS');
SQL
for _ in $(seq 1 100); do
  [ "$(Q -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pg_streams_%'")" = 1 ] && break
  sleep 0.1
done

echo "== writing $ROWS rows in $TXNS transactions"
for ((i = 0; i < TXNS; i++)); do
  a=$((1 + i * PER_TXN)); b=$(((i + 1) * PER_TXN))
  echo "INSERT INTO items SELECT g, g % 1000, (g % 100000) / 100.0, 'item ' || md5(g::text), now() FROM generate_series($a, $b) AS g;"
done > "$DIR/w.sql"
"${RUNAS[@]}" "$PGBIN/psql" -X -q -h "$DIR" -p "$PORT" -d postgres -f "$DIR/w.sql" >/dev/null
Q -c "SELECT streams.wait_for_capture('300s')" >/dev/null
N=$(Q -c "SELECT count(*) FROM streams.record")
echo "   $N records in the stream"

echo "== 1. draining the backlog to the Kafka function, BatchSize $BATCH, options $KOPTS"
UUID=$(Q -c "SELECT streams.create_event_source_mapping('{\"EventSourceArn\": \"items\", \"FunctionName\": \"bench\",
    \"StartingPosition\": \"TRIM_HORIZON\", \"BatchSize\": $BATCH, \"Enabled\": false}')->>'UUID'")
Q -c "CHECKPOINT"
T0=$(Q -c "SELECT extract(epoch FROM clock_timestamp()) FROM streams.update_event_source_mapping('$UUID', '{\"Enabled\": true}')")
for _ in $(seq 1 12000); do
  [ "$(Q -c "SELECT count(*) = 0 FROM streams.mapping_shard ms JOIN streams.event_source_mapping m USING (mapping_id)
             WHERE m.uuid = '$UUID' AND EXISTS (SELECT 1 FROM streams.record_batch r WHERE r.stream_id = m.stream_id
             AND r.shard = ms.shard AND (r.last_lsn, r.last_idx) > (ms.ck_lsn, ms.ck_idx))")" = t ] && break
  sleep 0.05
done
T1=$(now)
read -r PRODUCED ERRORS LATENCY <<<"$(Q -F ' ' -c "SELECT messages_produced, produce_errors, round(avg_delivery_latency_ms::numeric, 1)
    FROM streams.kafka_stats WHERE uuid = '$UUID'")"
ESM_S=$(calc "$T1 - $T0")
ESM_RATE=$(calc "$N / ($T1 - $T0)")
echo "   $ESM_S s, $ESM_RATE records/s ($PRODUCED acknowledged, $ERRORS produce errors, avg latency $LATENCY ms)"

echo "== 2. kcat producing the same records (key TAB value) from a file"
Q -c "COPY (SELECT (r.record::jsonb->'dynamodb'->'Keys')::text || E'\t' || r.record FROM streams.record r) TO STDOUT" \
  | sed 's/\\\\/\\/g' > "$DIR/records.tsv"
# COPY's text format doubles backslashes; the sed undoes it (records hold no tabs or newlines).
T0=$(now)
kcat -P -b "$BOOTSTRAP" -t kcat -K $'\t' -X enable.idempotence=true -X acks=all -X linger.ms=5 \
  -X partitioner=murmur2_random -l "$DIR/records.tsv"
T1=$(now)
KCAT_S=$(calc "$T1 - $T0")
KCAT_RATE=$(calc "$N / ($T1 - $T0)")
echo "   $KCAT_S s, $KCAT_RATE records/s"

echo
echo "| Figure | Value |"
echo "|---|---|"
echo "| Backlog of $N records → Kafka function (mock cluster, 3 brokers, topic of 4 partitions), BatchSize $BATCH | $ESM_RATE records/s ($(calc "$ESM_RATE / $KCAT_RATE")x kcat) |"
echo "| kcat -P, the same records from a file, idempotent, acks=all | $KCAT_RATE records/s |"
