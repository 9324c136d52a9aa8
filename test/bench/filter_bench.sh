#!/usr/bin/env bash
# FilterCriteria benchmark (issue 15). Run as root after test/setup.sh:
#
#     PGS_PREFIX=/opt/pgs-mine bash test/bench/filter_bench.sh
#
# On a throwaway cluster (unix socket under /tmp), measures:
#   1. the matcher alone (test/unit/filter_test --bench): records/s of one core
#      for a 3-condition pattern (eventName + a typed NewImage value + a numeric
#      range on ApproximateCreationDateTime), 1 % and 100 % of records matching;
#   2. the capture backlog rate: ROWS rows written while the capture worker
#      waits on a lock, then the time it takes to store them (as bench.sh 1b);
#   3. draining that backlog through a mapping to a no-op SQL function
#      (BatchSize 1000): without a filter, with a filter matching 1 % of the
#      records, and with a filter matching all of them.
# Prints a Markdown table. Never asserts on speed.
# Knobs: BENCH_ROWS (200000), BENCH_TXNS (400), BENCH_PORT (5512), KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${BENCH_ROWS:-200000}
TXNS=${BENCH_TXNS:-400}
PORT=${BENCH_PORT:-5512}
PER_TXN=$((ROWS / TXNS))
PGBIN=${PGS_PREFIX:-}/usr/lib/postgresql/15/bin
DIR=$(mktemp -d /tmp/pgs_filter_bench.XXXXXX)
RUNAS=()
[ "$(id -u)" = 0 ] && { RUNAS=(runuser -u postgres --); chown postgres "$DIR"; }
Q() { "${RUNAS[@]}" "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -d postgres "$@"; }
now() { date +%s.%N; }
calc() { python3 -c "print(round($1, 2))"; }
cleanup() {
  [ -n "${LOCK_PID:-}" ] && kill "$LOCK_PID" 2>/dev/null || true
  [ -n "${KEEP:-}" ] && { echo "cluster kept in $DIR (port $PORT)"; return; }
  "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

echo "== 1. matcher alone"
g++ -std=c++17 -O2 -Isrc src/filter/*.cpp test/unit/filter_test.cpp -o "$DIR/filter_test"
MATCHER=$("$DIR/filter_test" --bench 3)
echo "$MATCHER"
M1=$(sed -n 1p <<<"$MATCHER" | sed -E 's/.*: ([0-9]+) records\/s.*/\1/')
M100=$(sed -n 2p <<<"$MATCHER" | sed -E 's/.*: ([0-9]+) records\/s.*/\1/')

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

Q <<'SQL' >/dev/null
CREATE EXTENSION pg_streams;
CREATE TABLE items (id bigint PRIMARY KEY, account integer NOT NULL, amount numeric(12,2) NOT NULL,
    note text NOT NULL, created timestamptz NOT NULL) WITH (autovacuum_enabled = off);
SELECT streams.enable_stream('items', 'NEW_AND_OLD_IMAGES', 4);
CREATE FUNCTION esm_noop(event jsonb) RETURNS jsonb LANGUAGE sql AS 'SELECT NULL::jsonb';
SELECT streams.create_function('esm_noop', 'esm_noop(jsonb)', timeout => 60);
SQL
for i in $(seq 1 100); do
  [ "$(Q -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pg_streams_%'")" = 1 ] && break
  sleep 0.1
done

echo "== 2. capture backlog: $ROWS rows in $TXNS transactions, written while the capture worker waits"
for ((i = 0; i < TXNS; i++)); do
  a=$((1 + i * PER_TXN)); b=$(((i + 1) * PER_TXN))
  echo "INSERT INTO items SELECT g, g % 1000, (g % 100000) / 100.0, 'item ' || md5(g::text), now() FROM generate_series($a, $b) AS g;"
done > "$DIR/w.sql"
Q -c "CHECKPOINT"
"${RUNAS[@]}" "$PGBIN/psql" -X -q -h "$DIR" -p "$PORT" -d "dbname=postgres application_name=bench_lock" \
  -c "BEGIN; LOCK TABLE streams.record_batch IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(300); COMMIT;" >/dev/null 2>&1 &
LOCK_PID=$!
for _ in $(seq 1 100); do
  [ "$(Q -c "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'bench_lock' AND l.granted AND l.relation = 'streams.record_batch'::regclass")" = 1 ] && break
  sleep 0.1
done
"${RUNAS[@]}" "$PGBIN/psql" -X -q -h "$DIR" -p "$PORT" -d postgres -f "$DIR/w.sql" >/dev/null
END_LSN=$(Q -c "SELECT pg_current_wal_insert_lsn()")
sleep 2
T0=$(Q -c "SELECT extract(epoch FROM clock_timestamp()) FROM (SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'bench_lock') x")
wait "$LOCK_PID" 2>/dev/null || true
LOCK_PID=
for _ in $(seq 1 6000); do
  [ "$(Q -c "SELECT confirmed_flush_lsn >= '$END_LSN' FROM pg_replication_slots WHERE slot_name LIKE 'pg_streams_%'")" = t ] && break
  sleep 0.05
done
T1=$(now)
N=$(Q -c "SELECT count(*) FROM streams.record")
CAPTURE_S=$(calc "$T1 - $T0")
CAPTURE_RATE=$(calc "$N / ($T1 - $T0)")
echo "   $N records stored in $CAPTURE_S s: $CAPTURE_RATE records/s"

# 3. One mapping at a time: enable, time until its checkpoints pass every record.
drain() {  # drain TAG FILTER_CRITERIA_JSON_OR_EMPTY
  local tag=$1 fc=$2 uuid t0 t1
  uuid=$(Q -c "SELECT streams.create_event_source_mapping('{\"EventSourceArn\": \"items\", \"FunctionName\": \"esm_noop\",
      \"StartingPosition\": \"TRIM_HORIZON\", \"BatchSize\": 1000, \"Enabled\": false${fc:+, \"FilterCriteria\": $fc}}')->>'UUID'")
  Q -c "CHECKPOINT"
  t0=$(Q -c "SELECT extract(epoch FROM clock_timestamp()) FROM streams.update_event_source_mapping('$uuid', '{\"Enabled\": true}')")
  for _ in $(seq 1 12000); do
    [ "$(Q -c "SELECT count(*) = 0 FROM streams.mapping_shard ms JOIN streams.event_source_mapping m USING (mapping_id)
               WHERE m.uuid = '$uuid' AND EXISTS (SELECT 1 FROM streams.record_batch r WHERE r.stream_id = m.stream_id
               AND r.shard = ms.shard AND (r.last_lsn, r.last_idx) > (ms.ck_lsn, ms.ck_idx))")" = t ] && break
    sleep 0.05
  done
  t1=$(now)
  read -r delivered filtered invocations <<<"$(Q -F ' ' -c "SELECT records_delivered, records_filtered, invocations
      FROM streams.event_source_mapping_stats WHERE uuid = '$uuid'")"
  Q -c "SELECT streams.delete_event_source_mapping('$uuid')" >/dev/null
  local s rate
  s=$(calc "$t1 - $t0"); rate=$(calc "$N / ($t1 - $t0)")
  echo "   $tag: $s s, $rate records/s ($delivered delivered, $filtered filtered, $invocations invocations)"
  eval "${tag}_S=$s; ${tag}_RATE=$rate; ${tag}_DELIVERED=$delivered"
}
echo "== 3. draining the backlog to a no-op SQL function, BatchSize 1000"
ONE_PCT='{"Filters": [{"Pattern": "{\"eventName\": [\"INSERT\"], \"dynamodb\": {\"NewImage\": {\"account\": {\"N\": [\"0\", \"1\", \"2\", \"3\", \"4\", \"5\", \"6\", \"7\", \"8\", \"9\"]}}}}"}]}'
ALL='{"Filters": [{"Pattern": "{\"eventName\": [\"INSERT\"], \"dynamodb\": {\"ApproximateCreationDateTime\": [{\"numeric\": [\">\", 0]}]}}"}]}'
drain nofilter ""
drain onepct "$ONE_PCT"
drain all "$ALL"

echo
echo "| Figure | Value |"
echo "|---|---|"
echo "| Matcher alone, 3-condition pattern, 1 % matching (one core) | $M1 records/s |"
echo "| Matcher alone, same pattern, 100 % matching (one core) | $M100 records/s |"
echo "| Capture backlog rate ($N records) | $CAPTURE_RATE records/s |"
echo "| Drain to a no-op SQL function, no filter | $nofilter_RATE records/s ($(calc "$nofilter_RATE / $CAPTURE_RATE")x capture) |"
echo "| Drain, filter matching 1 % ($onepct_DELIVERED delivered) | $onepct_RATE records/s ($(calc "$onepct_RATE / $CAPTURE_RATE")x capture) |"
echo "| Drain, filter matching 100 % | $all_RATE records/s ($(calc "100 * (1 - $all_RATE / $nofilter_RATE)") % below no filter) |"
