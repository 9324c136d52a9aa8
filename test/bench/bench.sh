#!/usr/bin/env bash
# pg_streams benchmark. Run as root from anywhere:
#
#     bash test/bench/bench.sh
#
# Creates a throwaway PostgreSQL 15 cluster (user postgres, unix socket only,
# under /tmp), measures, prints a table of figures next to baselines measured
# in the same run, and removes the cluster. Never asserts on speed: exits 0
# once it has measured. About 30 minutes on 2 cores of an idle machine (part 3
# takes 19). PGS_PREFIX=/opt/pgs-NAME uses the private PostgreSQL copy that
# test/setup.sh installed there.
#
#   1. capture throughput of the capture worker vs. logical decoding of the
#      same WAL by pgoutput, wal2json and the pg_streams plugin (SQL interface):
#      once live, then BENCH_REPS times as a backlog of BENCH_BACKLOG_ROWS rows
#      (at least 5 s each on an idle machine); the table shows the median and
#      the spread
#   2. commit -> readable-in-stream latency at ~1,000 commits/s
#   3. pgbench TPC-B write TPS without the extension, with it but no stream,
#      and with streams on the four pgbench tables
#   4. event source mappings to SQL functions: records/s from the stream to a
#      no-op handler and to a handler that copies every record into a table
#      (BatchSize 1000; a backlog drained after the mapping is enabled, and
#      live while the workload writes), next to the capture rates of part 1;
#      commit -> handler latency at ~1,000 commits/s with BatchSize 1.
#      Runs after part 2 and before part 3 (which drops the extension).
#   5. event source mappings to HTTP functions, delivered to the loopback sink
#      (test/sink/sink.py): records/s with BatchSize 1000 and BatchSize 1 next
#      to the same records to a no-op SQL function and to the sink's ceiling
#      with a plain client; commit -> sink latency at ~1,000 commits/s,
#      BatchSize 1 (test/bench/part5_http.sh). Runs before part 3.
#   6. FilterCriteria (test/bench/part6_filter.sh): the matcher alone (records/s
#      of one core), then BENCH_REPS times a capture backlog of BENCH_FILTER_ROWS
#      rows (its capture rate is the baseline) drained to a no-op SQL function
#      without a filter, through a filter matching 1 % and through one matching
#      everything (each drain at least 5 s on an idle machine, but the 1 % one
#      may be shorter: it is flagged). Runs before part 3.
#
# Knobs (environment): BENCH_PORT (5510), BENCH_ROWS (200000), BENCH_TXNS (400),
# BENCH_LAT_SECONDS (20), BENCH_LAT_RATE (1000), BENCH_PGB_SECONDS (60, per run),
# BENCH_PGB_ROUNDS (4: runs per configuration, in the order A F B C, C B F A, ...),
# BENCH_PGB_VIEW (NEW_AND_OLD_IMAGES: the view type of part 3's streams),
# BENCH_PGB_CONFIGS ("noext full idle on": part 3's configurations A F B C, in this
# order; noext is required; full is left out for KEYS_ONLY),
# BENCH_PGB_SCALE (10), BENCH_ESM_ROWS (= BENCH_ROWS; rows per part 4a/4b measurement, in
# transactions of BENCH_ROWS/BENCH_TXNS rows as in part 1), BENCH_ESM_LAT_SECONDS
# (= BENCH_LAT_SECONDS), BENCH_ESM_LAT_RATE (= BENCH_LAT_RATE; parts 4c and 5c),
# BENCH_SINK_PORT (5511), BENCH_HTTP_B1_ROWS (20000; part 5b), BENCH_PARTS ("1 2 3 4 5 6":
# the parts to run), BENCH_CONF (extra postgresql.conf lines, e.g. "pg_streams.append_delay = 20"),
# BENCH_REPS (3: repetitions of the backlog runs of parts 1 and 6), BENCH_BACKLOG_ROWS
# (1500000: part 1's backlog), BENCH_FILTER_ROWS (1500000: part 6's backlog),
# BENCH_MATCHER_SECONDS (3: CPU time per matcher figure), KEEP=1 (leave the cluster running).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PGBIN=${PGS_PREFIX:-}/usr/lib/postgresql/15/bin
PORT=${BENCH_PORT:-5510}
ROWS=${BENCH_ROWS:-200000}
TXNS=${BENCH_TXNS:-400}
LAT_SECONDS=${BENCH_LAT_SECONDS:-20}
LAT_RATE=${BENCH_LAT_RATE:-1000}
PGB_SECONDS=${BENCH_PGB_SECONDS:-60}
PGB_ROUNDS=${BENCH_PGB_ROUNDS:-4}
PGB_VIEW=${BENCH_PGB_VIEW:-NEW_AND_OLD_IMAGES}
PGB_SCALE=${BENCH_PGB_SCALE:-10}
PGB_CONFIGS=${BENCH_PGB_CONFIGS:-noext full idle on}
[ "$PGB_VIEW" = KEYS_ONLY ] && PGB_CONFIGS=$(tr ' ' '\n' <<<"$PGB_CONFIGS" | grep -vx full | paste -sd' ')
for c in $PGB_CONFIGS; do
  case $c in noext | full | idle | on) ;; *) echo "bench.sh: BENCH_PGB_CONFIGS: unknown configuration $c" >&2; exit 2 ;; esac
done
[[ " $PGB_CONFIGS " == *" noext "* ]] || { echo "bench.sh: BENCH_PGB_CONFIGS must include noext (the baseline)" >&2; exit 2; }
PARTS=" ${BENCH_PARTS:-1 2 3 4 5 6} "
REPS=${BENCH_REPS:-3}
FILTER_ROWS=${BENCH_FILTER_ROWS:-1500000}
MATCHER_SECONDS=${BENCH_MATCHER_SECONDS:-3}
PER_TXN=$((ROWS / TXNS))
ROWS=$((PER_TXN * TXNS))
BACKLOG_TXNS=$(( ${BENCH_BACKLOG_ROWS:-1500000} / PER_TXN ))
[ "$BACKLOG_TXNS" -ge 1 ] || BACKLOG_TXNS=1
ESM_TXNS=$(( ${BENCH_ESM_ROWS:-$ROWS} / PER_TXN ))
[ "$ESM_TXNS" -ge 1 ] || ESM_TXNS=1
ESM_ROWS=$((ESM_TXNS * PER_TXN))
ESM_LAT_SECONDS=${BENCH_ESM_LAT_SECONDS:-$LAT_SECONDS}
ESM_LAT_RATE=${BENCH_ESM_LAT_RATE:-$LAT_RATE}
part() { [[ $PARTS == *" $1 "* ]]; }

[ "$(id -u)" = 0 ] || { echo "bench.sh: run as root (the cluster runs as user postgres)" >&2; exit 2; }
[ -x "$PGBIN/postgres" ] || { echo "bench.sh: PostgreSQL 15 not found in $PGBIN" >&2; exit 2; }
LIBDIR=$("$PGBIN/pg_config" --pkglibdir)
[ -f "$LIBDIR/pg_streams.so" ] || { echo "bench.sh: pg_streams is not installed (make && make install)" >&2; exit 2; }
HAVE_W2J=0; [ -f "$LIBDIR/wal2json.so" ] && HAVE_W2J=1
CLK_TCK=$(getconf CLK_TCK)
REPO=$(cd "$HERE/../.." && pwd)
so_id() { echo "$(md5sum < "$LIBDIR/pg_streams.so" | cut -c1-12) $(date -u -r "$LIBDIR/pg_streams.so" '+%Y-%m-%dT%H:%M:%SZ')"; }
SO_ID=$(so_id)
GIT_ID=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "?")
GIT_DIRTY=$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null | wc -l)

DIR=$(mktemp -d /tmp/pg_streams_bench.XXXXXX)
chown postgres "$DIR"
chmod 755 "$DIR"
RES="$DIR/results"
: > "$RES"
BG_PIDS=()

cleanup() {
  local rc=$?
  for p in "${BG_PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  if [ "${KEEP:-0}" = 1 ]; then
    echo "cluster left running: $PGBIN/psql -h $DIR -p $PORT bench ; stop: runuser -u postgres -- $PGBIN/pg_ctl -D $DIR/data stop"
    return
  fi
  if [ -f "$DIR/data/postmaster.pid" ]; then
    timeout 30 runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 ||
      timeout 30 runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  if [ $rc -ne 0 ] && [ -f "$DIR/server.log" ]; then
    echo "---- last lines of the server log ----" >&2
    tail -n 30 "$DIR/server.log" >&2 || true
  fi
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
put() { echo "$1=$2" >> "$RES"; }
get() { grep -E "^$1=" "$RES" | tail -n 1 | cut -d= -f2-; }

# psql as postgres; -At unaligned output, no NOTICEs, stops on the first error; bounded.
Q() {  # Q db sql...
  local db=$1; shift
  case $db in *=*) ;; *) db="dbname=$db" ;; esac
  timeout "${QTIMEOUT:-300}" runuser -u postgres -- "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 \
    -h "$DIR" -p "$PORT" -d "$db options='-c work_mem=512MB -c client_min_messages=warning'" "$@"
}
calc() { python3 -c "print(round($1, 6))"; }
since() {  # since END START: END - START, or "timeout" when END is empty
  if [ -n "$1" ]; then calc "$1 - $2"; else echo timeout; fi
}

worker_pid() {  # the capture worker of a database (empty if none)
  Q postgres -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_streams capture' AND datname = '$1'"
}
pgs_ticks() {  # pgs_ticks DB [PATTERN]: CPU (utime + stime, clock ticks) of the pg_streams processes of a
  # database whose backend_type is SIMILAR TO PATTERN (default: all of them). Counts live processes only.
  local pids p t=0
  # The capture worker, its appender, the dispatchers of event source mappings.
  pids=$(Q postgres -c "SELECT pid FROM pg_stat_activity WHERE backend_type SIMILAR TO '${2:-pg_streams%}' AND datname = '$1'")
  for p in $pids; do
    [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}
cpu_snap() {  # "machine ours client steal" CPU ticks: busy on the whole machine (steal
  # excluded), this cluster, this script's children; steal: time the hypervisor gave our
  # virtual CPUs to others while they had work
  local pm m o c p st r0 r1 _
  pm=$(head -n 1 "$DIR/data/postmaster.pid")
  # The postmaster with the children it reaped, plus its live children. A child
  # reaped while they are read would be in neither (pgbench's backends exit just
  # then): read again until the postmaster's reaped total stayed the same.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    read -r m st < <(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $9 }' /proc/stat)
    r0=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$pm/stat")
    o=$r0
    for p in $(ps -o pid= --ppid "$pm"); do
      o=$((o + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    r1=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$pm/stat")
    [ "$r0" = "$r1" ] && break
    sleep 0.05
  done
  c=$(awk '{ sub(/^.*\) /, ""); print $14 + $15 }' "/proc/$$/stat")
  echo "$m $o $c $st"
}
other_cpu() {  # other_cpu SNAP0 SNAP1: "N CPU-s, steal M s": CPU used by anything else on the machine in between, and stolen
  python3 -c "a = '$1'.split(); b = '$2'.split(); d = [int(y) - int(x) for x, y in zip(a, b)]; print(f'{max(0, d[0] - d[1] - d[2]) / $CLK_TCK:.1f} CPU-s, steal {d[3] / $CLK_TCK:.1f} s')"
}
wait_worker() {  # wait until the capture worker of a database runs and has its slot
  local db=$1 oid
  oid=$(Q postgres -c "SELECT oid FROM pg_database WHERE datname = '$db'")
  for _ in $(seq 1 300); do
    if [ -n "$(worker_pid "$db")" ] &&
       [ "$(Q postgres -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pg_streams_$oid'")" = 1 ]; then
      echo "pg_streams_$oid"; return 0
    fi
    sleep 0.1
  done
  echo "bench.sh: capture worker of $db did not start" >&2; return 1
}

###########################################################################
# Cluster
###########################################################################
put load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
log "initdb in $DIR (port $PORT, unix socket only)"
runuser -u postgres -- "$PGBIN/initdb" -D "$DIR/data" --encoding=UTF8 --no-locale -A trust >/dev/null
PLUGINS="pgoutput, test_decoding, pg_streams"
[ $HAVE_W2J = 1 ] && PLUGINS="$PLUGINS, wal2json"
cat >> "$DIR/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DIR'
shared_preload_libraries = 'pg_streams'
wal_level = logical
output_plugin_libraries = '$PLUGINS'
max_replication_slots = 10
max_wal_senders = 10
max_worker_processes = 32          # 1 launcher + per database: capture, appender, dispatch_workers
# benchmark hygiene: no checkpoint in the middle of a measurement
shared_buffers = 512MB
max_wal_size = 8GB
checkpoint_timeout = 30min
timezone = 'UTC'
log_min_messages = warning
${BENCH_CONF:-}
CONF
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start >/dev/null
Q postgres -c "CREATE DATABASE bench" -c "CREATE DATABASE pgb"
Q bench -c "CREATE EXTENSION pg_walinspect"
Q bench -f "$HERE/helpers.sql" >/dev/null
Q pgb -f "$HERE/helpers.sql" >/dev/null
Q bench -c "CREATE EXTENSION pg_streams"
SLOT=$(wait_worker bench)
sleep 1
put pgs_procs "$(Q postgres -c "SELECT string_agg(DISTINCT backend_type, ' + ') FROM pg_stat_activity WHERE backend_type LIKE 'pg_streams%' AND datname = 'bench'")"

workload() {  # workload FIRST_ID FILE [TABLE [N]]: N (TXNS) autocommit statements of PER_TXN heap inserts each
  local first=$1 file=$2 tbl=${3:-bench_items} n=${4:-$TXNS}
  for ((i = 0; i < n; i++)); do
    local a=$((first + i * PER_TXN)) b=$((first + (i + 1) * PER_TXN - 1))
    echo "INSERT INTO $tbl SELECT g, g % 1000, (g % 100000) / 100.0, 'item ' || md5(g::text), now() FROM generate_series($a, $b) AS g;"
  done > "$file"
}

items_table() {  # items_table NAME: the CREATE TABLE of the workload's tables (parts 1, 4, 5)
  echo "CREATE TABLE $1 (id bigint PRIMARY KEY, account integer NOT NULL, amount numeric(12,2) NOT NULL,
    note text NOT NULL, created timestamptz NOT NULL) WITH (autovacuum_enabled = off);"
}

###########################################################################
# 1. Capture throughput
###########################################################################
if part 1; then
log "1. capture throughput: $ROWS rows in $TXNS transactions x $PER_TXN"
S1=$(cpu_snap); T1S=$(date +%s.%N)
Q bench <<SQL >/dev/null
$(items_table bench_items)
CREATE PUBLICATION bench_pub FOR TABLE bench_items;
SQL
Q bench -c "SELECT streams.enable_stream('bench_items', 'NEW_AND_OLD_IMAGES', 4)" >/dev/null
SID=$(Q bench -c "SELECT stream_id FROM streams.stream WHERE table_name = 'public.bench_items'")
# Baseline slots, created after the stream is on and before the workload.
Q bench -c "SELECT pg_create_logical_replication_slot('b_pgoutput', 'pgoutput')" \
        -c "SELECT pg_create_logical_replication_slot('b_pgstreams', 'pg_streams')" >/dev/null
[ $HAVE_W2J = 1 ] && Q bench -c "SELECT pg_create_logical_replication_slot('b_wal2json', 'wal2json')" >/dev/null

baselines() {  # baselines TAG UPTO_LSN: time each decoder over the same WAL, up to UPTO_LSN
  local tag=$1 upto=$2 out
  out=$(Q bench -F ' ' -c "SELECT * FROM bench_time(\$q\$SELECT count(*) FILTER (WHERE get_byte(data, 0) = 73) FROM pg_logical_slot_get_binary_changes('b_pgoutput', '$upto', NULL, 'proto_version', '1', 'publication_names', 'bench_pub')\$q\$)")
  put "${tag}_pgoutput_s" "${out% *}"; put "${tag}_pgoutput_n" "${out#* }"
  if [ $HAVE_W2J = 1 ]; then
    out=$(Q bench -F ' ' -c "SELECT * FROM bench_time(\$q\$SELECT count(*) FILTER (WHERE data LIKE '{\"action\":\"I\"%') FROM pg_logical_slot_get_changes('b_wal2json', '$upto', NULL, 'format-version', '2', 'add-tables', 'public.bench_items')\$q\$)")
    put "${tag}_wal2json_s" "${out% *}"; put "${tag}_wal2json_n" "${out#* }"
  fi
  out=$(Q bench -F ' ' -c "SELECT * FROM bench_time(\$q\$SELECT count(*) FROM pg_logical_slot_get_changes('b_pgstreams', '$upto', NULL)\$q\$)")
  put "${tag}_pgsplugin_s" "${out% *}"; put "${tag}_pgsplugin_n" "${out#* }"
}

# 1a. Live: the capture worker runs while the workload writes.
workload 1 "$DIR/w1.sql"
Q bench -c "CHECKPOINT"
C0=$(pgs_ticks bench)
L0=$(Q bench -c "SELECT pg_current_wal_insert_lsn()")
T0=$(date +%s.%N)
Q bench -f "$DIR/w1.sql" >/dev/null
T1=$(date +%s.%N)
W1_END=$(Q bench -c "SELECT pg_current_wal_insert_lsn()")
DONE=$(Q bench -c "SELECT extract(epoch FROM bench_wait_confirmed('$SLOT', '$W1_END', 120))")
C1=$(pgs_ticks bench)
[ -n "$DONE" ] || { log "capture did not catch up within 120 s"; }
read -r N1 FIRST1 LAST1 <<<"$(Q bench -F ' ' -c "SELECT count(*), extract(epoch FROM min(arrival)), extract(epoch FROM max(arrival)) FROM streams.record WHERE stream_id = $SID")"
put live_src_s "$(calc "$LAST1 - $FIRST1")"   # first to last source commit: the writer's own pace
[ -n "$DONE" ] && put live_tail_ms "$(calc "($DONE - $LAST1) * 1000")"  # last source commit -> captured
put live_count "$N1"
put live_gen_s "$(calc "$T1 - $T0")"
put live_s "$(since "$DONE" "$FIRST1")"
put live_cpu_s "$(calc "($C1 - $C0) / $CLK_TCK")"
put live_wal_mb "$(Q bench -c "SELECT round((pg_wal_lsn_diff('$W1_END', '$L0') / 1048576.0)::numeric, 1)")"
log "   live capture: $N1 records, $(get live_s) s from first commit; decoding the same WAL with the baselines"
baselines live "$W1_END"

# 1b. Backlog: the workload is written while the capture worker waits on a
# lock on streams.record_batch; the baselines decode exactly that WAL (nothing else
# writes), then the lock goes and the worker drains the backlog.
for ((rep = 1; rep <= REPS; rep++)); do
  for sl in b_pgoutput b_pgstreams $([ $HAVE_W2J = 1 ] && echo b_wal2json); do
    Q bench -c "SELECT count(*) FROM pg_replication_slot_advance('$sl', pg_current_wal_lsn())" >/dev/null
  done
  workload $((ROWS + 1 + (rep - 1) * BACKLOG_TXNS * PER_TXN)) "$DIR/w2.sql" bench_items "$BACKLOG_TXNS"
  NB0=$(Q bench -c "SELECT count(*) FROM streams.record WHERE stream_id = $SID")
  Q bench -c "CHECKPOINT"
  QTIMEOUT=3700 Q "dbname=bench application_name=bench_lock" \
    -c "BEGIN; LOCK TABLE streams.record_batch IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3600); COMMIT;" >/dev/null 2>&1 &
  LOCK_PID=$!; BG_PIDS+=("$LOCK_PID")
  for _ in $(seq 1 100); do
    [ "$(Q bench -c "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'bench_lock' AND l.granted AND l.mode = 'AccessExclusiveLock' AND l.relation = 'streams.record_batch'::regclass")" = 1 ] && break
    sleep 0.1
  done
  L2=$(Q bench -c "SELECT pg_current_wal_insert_lsn()")
  QTIMEOUT=3600 Q bench -f "$DIR/w2.sql" >/dev/null
  W2_END=$(Q bench -c "SELECT pg_current_wal_insert_lsn()")
  # Let the pipeline stall (it may decode ahead until its buffer is full) so
  # that the baselines run alone: wait until pg_streams uses no CPU for 0.3 s.
  prev=-1
  for _ in $(seq 1 100); do
    cur=$(pgs_ticks bench)
    [ "$cur" = "$prev" ] && break
    prev=$cur; sleep 0.3
  done
  put backlog${rep}_wal_mb "$(Q bench -c "SELECT round((pg_wal_lsn_diff('$W2_END', '$L2') / 1048576.0)::numeric, 1)")"
  put backlog${rep}_blocked "$(Q bench -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'pg_streams%' AND datname = 'bench' AND wait_event_type = 'Lock'")"
  log "   backlog, run $rep of $REPS: $((BACKLOG_TXNS * PER_TXN)) rows written while capture waits; baselines decode that WAL"
  QTIMEOUT=1800 baselines "backlog$rep" "$W2_END"
  C0=$(pgs_ticks bench)
  REL=$(Q bench -F ' ' -c "SELECT extract(epoch FROM clock_timestamp()), pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'bench_lock'")
  REL=${REL%% *}
  DONE=$(QTIMEOUT=1900 Q bench -c "SELECT extract(epoch FROM bench_wait_confirmed('$SLOT', '$W2_END', 1800))")
  C1=$(pgs_ticks bench)
  wait "$LOCK_PID" 2>/dev/null || true
  put backlog${rep}_count "$(( $(Q bench -c "SELECT count(*) FROM streams.record WHERE stream_id = $SID") - NB0 ))"
  put backlog${rep}_s "$(since "$DONE" "$REL")"
  put backlog${rep}_cpu_s "$(calc "($C1 - $C0) / $CLK_TCK")"
  log "   backlog drained in $(get "backlog${rep}_s") s"
done
# The run whose capture/pgoutput ratio is the median stands for them all
# (backlog_*); every run's figures stay as backlogN_*.
MED=$(python3 -c "
import re
r = {}
for line in open('$RES'):
    k, _, v = line.rstrip('\n').partition('=')
    r[k] = v
def f(k):
    try: return float(r[k])
    except (KeyError, ValueError): return None
x = []
for i in range(1, $REPS + 1):
    c, s, pn, ps = f(f'backlog{i}_count'), f(f'backlog{i}_s'), f(f'backlog{i}_pgoutput_n'), f(f'backlog{i}_pgoutput_s')
    if c and s and pn and ps:
        x.append(((c / s) / (pn / ps), i))
x.sort()
print(x[len(x) // 2][1] if x else 1)")
grep -E "^backlog${MED}_" "$RES" | sed -E "s/^backlog${MED}_/backlog_/" >> "$RES"
put backlog_median_run "$MED"
Q bench -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'b\_%'" >/dev/null
put p1_other_cpu "$(other_cpu "$S1" "$(cpu_snap)")"; put p1_wall "$(calc "$(date +%s.%N) - $T1S")"
fi  # part 1

###########################################################################
# 2. Latency commit -> readable at ~LAT_RATE commits/s
###########################################################################
if part 2; then
log "2. latency: pgbench --rate=$LAT_RATE for $LAT_SECONDS s, one INSERT per transaction"
S2=$(cpu_snap); T2S=$(date +%s.%N)
Q bench <<'SQL' >/dev/null
CREATE TABLE lat_items (
    id      bigserial PRIMARY KEY,
    payload text NOT NULL,
    created timestamptz NOT NULL
);
SQL
Q bench -c "SELECT streams.enable_stream('lat_items', 'NEW_AND_OLD_IMAGES', 4)" >/dev/null
LSID=$(Q bench -c "SELECT stream_id FROM streams.stream WHERE table_name = 'public.lat_items'")
echo "INSERT INTO lat_items (payload, created) VALUES (md5(random()::text), clock_timestamp());" > "$DIR/lat.sql"
Q bench -c "CHECKPOINT"
# Warm up the stream (first segment, caches) so the measurement starts steady.
Q bench -c "INSERT INTO lat_items (payload, created) VALUES ('warmup', clock_timestamp())"
Q bench -c "SELECT bench_wait_confirmed('$SLOT', pg_current_wal_insert_lsn(), 30)" >/dev/null
LL0=$(Q bench -c "SELECT pg_current_wal_insert_lsn()")
POLL_SECONDS=$((LAT_SECONDS + 4))
QTIMEOUT=$((POLL_SECONDS + 60)) Q "dbname=bench application_name=bench_poller" -c \
  "COPY (SELECT extract(epoch FROM arrival), extract(epoch FROM seen), poll_no FROM bench_poll($LSID, 4, $POLL_SECONDS, 0.001)) TO STDOUT WITH CSV" \
  > "$DIR/poll.csv" &
POLL_PID=$!; BG_PIDS+=("$POLL_PID")
sleep 0.5
C0=$(pgs_ticks bench)
LT0=$(date +%s.%N)
timeout $((LAT_SECONDS + 60)) runuser -u postgres -- "$PGBIN/pgbench" -n -M prepared -c 4 -j 2 -T "$LAT_SECONDS" \
  --rate="$LAT_RATE" -f "$DIR/lat.sql" -h "$DIR" -p "$PORT" bench > "$DIR/lat_pgbench.out" 2>&1
LT1=$(date +%s.%N)
LL1=$(Q bench -c "SELECT pg_current_wal_insert_lsn()")
DONE=$(Q bench -c "SELECT extract(epoch FROM bench_wait_confirmed('$SLOT', '$LL1', 60))")
C1=$(pgs_ticks bench)
wait "$POLL_PID" || log "   poller failed"
put lat_tps "$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$DIR/lat_pgbench.out" | head -n 1)"
put lat_pgb_lat "$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$DIR/lat_pgbench.out" | head -n 1)"
put lat_cpu_s "$(calc "($C1 - $C0) / $CLK_TCK")"
put lat_wall_s "$(calc "$LT1 - $LT0")"
put lat_records "$(Q bench -c "SELECT count(*) FROM streams.record WHERE stream_id = $LSID AND arrival >= to_timestamp($LT0)")"
# Window: source commits from 1 s after pgbench started (connections set up)
# to the end of the run.
FROM=$(calc "$LT0 + 1"); TO=$LT1
# Method A: the capture worker's append transaction commit time, read from its
# COMMIT record in the WAL (pg_walinspect); the source commit time is the
# record's arrival column (the commit time decoded from the source COMMIT).
Q bench -c "COPY (
  WITH r AS (SELECT append_xid::text::bigint AS wx, arrival FROM streams.record WHERE stream_id = $LSID AND arrival >= to_timestamp($LT0)),
       c AS (SELECT xid::text::bigint AS wx, (regexp_match(description, '^([^;]+)'))[1]::timestamptz AS committed
             FROM pg_get_wal_records_info('$LL0', pg_current_wal_flush_lsn())
             WHERE resource_manager = 'Transaction' AND record_type = 'COMMIT')
  SELECT extract(epoch FROM r.arrival), extract(epoch FROM c.committed) FROM r JOIN c USING (wx)) TO STDOUT WITH CSV" \
  > "$DIR/commit.csv"
python3 "$HERE/latency.py" latA "$FROM" "$TO" < "$DIR/commit.csv" >> "$RES"
python3 "$HERE/latency.py" latB "$FROM" "$TO" < "$DIR/poll.csv" >> "$RES"
put p2_other_cpu "$(other_cpu "$S2" "$(cpu_snap)")"; put p2_wall "$(calc "$(date +%s.%N) - $T2S")"
put latB_interval_ms "$(calc "$POLL_SECONDS * 1000.0 / max(1, int('$(get latB_polls)' or 0))")"
log "   p99 = $(get latA_p99) ms (commit records), $(get latB_p99) ms (poller)"
fi  # part 2

# Event source mappings (parts 4 and 5).
esm_create() {  # esm_create TABLE FUNCTION POSITION ENABLED BATCH: prints "mapping_id uuid"
  local u
  u=$(Q bench -c "SELECT streams.create_event_source_mapping(jsonb_build_object('EventSourceArn', '$1',
        'FunctionName', '$2', 'StartingPosition', '$3', 'Enabled', $4, 'BatchSize', $5,
        'MaximumBatchingWindowInSeconds', 0)) ->> 'UUID'")
  echo "$(Q bench -c "SELECT mapping_id FROM streams.event_source_mapping WHERE uuid = '$u'") $u"
}
esm_wait() {  # esm_wait MAPPING_ID STATE: until the mapping is in STATE (Disabled: and no dispatcher runs)
  for _ in $(seq 1 600); do
    if [ "$(Q bench -c "SELECT state FROM streams.event_source_mapping WHERE mapping_id = $1")" = "$2" ] &&
       { [ "$2" != Disabled ] ||
         [ "$(Q postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_streams dispatch' AND datname = 'bench'")" = 0 ]; }; then
      return 0
    fi
    sleep 0.05
  done
  log "   mapping $1 did not reach state $2 within 30 s"
}
esm_disable() {  # esm_disable MAPPING_ID UUID
  Q bench -c "SELECT streams.update_event_source_mapping('$2', '{\"Enabled\": false}')" >/dev/null
  esm_wait "$1" Disabled
}
esm_watch_bg() {  # esm_watch_bg MAPPING_ID TARGET FILE: bench_esm_watch in the background; sets WATCH_PID
  QTIMEOUT=200 Q bench -c "CALL bench_esm_watch($1, '$SLOT', $2, 150, 0.005)" > "$3" &
  WATCH_PID=$!; BG_PIDS+=("$WATCH_PID")
  sleep 0.3
}
esm_check() {  # esm_check TAG MAPPING_ID: counters and state as the stats view shows them, once
  local v
  v=$(Q bench -F ' ' -c "SELECT records_delivered, invocations, function_errors, retries, backlog, coalesce(iterator_age_ms, -1)
                        FROM streams.event_source_mapping_stats s JOIN streams.event_source_mapping m USING (uuid) WHERE m.mapping_id = $2")
  read -r a b c d e f <<<"$v"
  put "${1}_view_delivered" "$a"; put "${1}_view_invocations" "$b"; put "${1}_view_errors" "$c"
  put "${1}_view_retries" "$d"; put "${1}_view_backlog" "$e"; put "${1}_view_iterator_age_ms" "$f"
}

lat_mapping() {  # lat_mapping TABLE FUNCTION: prints "mapping_id uuid" of a mapping (LATEST, BatchSize 1)
  # enabled and warmed up (first segment, plans, connection) so that a measurement starts steady;
  # writes the pgbench script $DIR/TABLE.sql (one single-row INSERT).
  local mid uuid
  read -r mid uuid <<<"$(esm_create "$1" "$2" LATEST true 1)"
  esm_wait "$mid" Enabled
  echo "INSERT INTO $1 (payload, created) VALUES (md5(random()::text), clock_timestamp());" > "$DIR/$1.sql"
  Q bench -c "INSERT INTO $1 (payload, created) VALUES ('warmup', clock_timestamp())"
  QTIMEOUT=60 Q bench -c "CALL bench_esm_watch($mid, '$SLOT', 1, 30, 0.005)" >/dev/null
  Q bench -c "CHECKPOINT"
  echo "$mid $uuid"
}
esm_drain() {  # esm_drain TAG MAPPING_ID UUID [N]: enable, time until all N (ESM_ROWS) are delivered, disable
  local tag=$1 mid=$2 uuid=$3 n=${4:-$ESM_ROWS} t0
  Q bench -c "CHECKPOINT"
  esm_watch_bg "$mid" "$n" "$DIR/watch_$tag.csv"
  t0=$(Q bench -c "SELECT streams.update_event_source_mapping('$uuid', '{\"Enabled\": true}')" \
               -c "SELECT extract(epoch FROM clock_timestamp())" | tail -n 1)
  wait "$WATCH_PID" || log "   watcher of $tag failed"
  # The dispatcher started after t0: all of its CPU is this drain's.
  put "${tag}_disp_cpu_s" "$(calc "$(pgs_ticks bench 'pg_streams dispatch') / $CLK_TCK")"
  python3 "$HERE/esm_watch.py" "$tag" "$t0" "$n" < "$DIR/watch_$tag.csv" >> "$RES"
  esm_check "$tag" "$mid"
  esm_disable "$mid" "$uuid"
  log "   $tag: $(get "${tag}_delivered") records delivered in $(get "${tag}_done_s") s after enabling"
}

###########################################################################
# 4. Event source mappings -> SQL functions
###########################################################################
# Runs before part 3, which drops the extension in bench. One mapping is
# enabled at a time, so one dispatcher runs at a time.
if part 4; then
log "4. event source mappings: $ESM_ROWS rows ($ESM_TXNS transactions x $PER_TXN) per measurement, BatchSize 1000"
S4=$(cpu_snap); T4S=$(date +%s.%N); LOG4=$(wc -l < "$DIR/server.log")
# 4a/4b backlog drain: written first, delivered after the mapping is enabled.
Q bench -c "$(items_table esm_backlog)" >/dev/null
Q bench <<'SQL' >/dev/null
-- 4a/4b live: delivered while the workload writes.
CREATE TABLE esm_live (LIKE esm_backlog INCLUDING ALL) WITH (autovacuum_enabled = off);
-- 4b: where the copying handler puts every record's key and new image.
CREATE TABLE esm_sink (id bigint NOT NULL, image jsonb NOT NULL) WITH (autovacuum_enabled = off);
-- 4c: one row per delivered record: its sequence number, the source row's
-- created (clock_timestamp() of its INSERT) and the handler's clock_timestamp().
CREATE TABLE esm_lat_items (
    id      bigserial PRIMARY KEY,
    payload text NOT NULL,
    created timestamptz NOT NULL
);
CREATE TABLE esm_lat_seen (seq text NOT NULL, created timestamptz NOT NULL, handled timestamptz NOT NULL);

CREATE FUNCTION esm_noop(event jsonb) RETURNS jsonb LANGUAGE sql AS 'SELECT NULL::jsonb';
CREATE FUNCTION esm_copy(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO esm_sink (id, image)
    SELECT (r #>> '{dynamodb,Keys,id,N}')::bigint, r #> '{dynamodb,NewImage}'
    FROM jsonb_array_elements(event -> 'Records') AS r;
    RETURN NULL;
END $$;
CREATE FUNCTION esm_lat(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO esm_lat_seen (seq, created, handled)
    SELECT r #>> '{dynamodb,SequenceNumber}', (r #>> '{dynamodb,NewImage,created,S}')::timestamptz, clock_timestamp()
    FROM jsonb_array_elements(event -> 'Records') AS r;
    RETURN NULL;
END $$;
SELECT streams.create_function('esm_noop', 'esm_noop(jsonb)', timeout => 60);
SELECT streams.create_function('esm_copy', 'esm_copy(jsonb)', timeout => 60);
SELECT streams.create_function('esm_lat', 'esm_lat(jsonb)', timeout => 60);
SQL
for t in esm_backlog esm_live esm_lat_items; do
  Q bench -c "SELECT streams.enable_stream('$t', 'NEW_AND_OLD_IMAGES', 4)" >/dev/null
done
ESID_B=$(Q bench -c "SELECT stream_id FROM streams.stream WHERE table_name = 'public.esm_backlog'")
ESID_L=$(Q bench -c "SELECT stream_id FROM streams.stream WHERE table_name = 'public.esm_live'")
ESID_T=$(Q bench -c "SELECT stream_id FROM streams.stream WHERE table_name = 'public.esm_lat_items'")

# 4a/4b, backlog: the rows are in the stream before the mappings are enabled.
read -r M_NOOP_B U_NOOP_B <<<"$(esm_create esm_backlog esm_noop TRIM_HORIZON false 1000)"
read -r M_COPY_B U_COPY_B <<<"$(esm_create esm_backlog esm_copy TRIM_HORIZON false 1000)"
esm_wait "$M_NOOP_B" Disabled; esm_wait "$M_COPY_B" Disabled
workload 1 "$DIR/e1.sql" esm_backlog "$ESM_TXNS"
Q bench -f "$DIR/e1.sql" >/dev/null
DONE=$(Q bench -c "SELECT extract(epoch FROM bench_wait_confirmed('$SLOT', pg_current_wal_insert_lsn(), 120))")
[ -n "$DONE" ] || log "   capture of esm_backlog did not finish within 120 s"
put esm_backlog_records "$(Q bench -c "SELECT count(*) FROM streams.record WHERE stream_id = $ESID_B")"

esm_drain esm_noop_backlog "$M_NOOP_B" "$U_NOOP_B"
esm_drain esm_copy_backlog "$M_COPY_B" "$U_COPY_B"
read -r a b <<<"$(Q bench -F ' ' -c "SELECT count(*), count(DISTINCT id) FROM esm_sink")"
put esm_copy_backlog_sink_rows "$a"; put esm_copy_backlog_sink_ids "$b"

# 4a/4b, live: the mapping (LATEST) and its dispatcher are up before the
# workload starts; time from workload start until all rows are delivered.
esm_live() {  # esm_live TAG FUNCTION FIRST_ID
  local tag=$1 fn=$2 first=$3 mid uuid t0 t1 wend c0 k0
  read -r mid uuid <<<"$(esm_create esm_live "$fn" LATEST true 1000)"
  esm_wait "$mid" Enabled
  workload "$first" "$DIR/$tag.sql" esm_live "$ESM_TXNS"
  Q bench -c "CHECKPOINT"
  esm_watch_bg "$mid" "$ESM_ROWS" "$DIR/watch_$tag.csv"
  c0=$(pgs_ticks bench 'pg_streams dispatch'); k0=$(pgs_ticks bench 'pg_streams (capture|append)')
  t0=$(date +%s.%N)
  Q bench -f "$DIR/$tag.sql" >/dev/null
  t1=$(date +%s.%N)
  wend=$(Q bench -c "SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn")
  wait "$WATCH_PID" || log "   watcher of $tag failed"
  put "${tag}_disp_cpu_s" "$(calc "($(pgs_ticks bench 'pg_streams dispatch') - $c0) / $CLK_TCK")"
  put "${tag}_capture_cpu_s" "$(calc "($(pgs_ticks bench 'pg_streams (capture|append)') - $k0) / $CLK_TCK")"
  put "${tag}_gen_s" "$(calc "$t1 - $t0")"
  python3 "$HERE/esm_watch.py" "$tag" "$t0" "$ESM_ROWS" "$wend" < "$DIR/watch_$tag.csv" >> "$RES"
  esm_check "$tag" "$mid"
  esm_disable "$mid" "$uuid"
  log "   $tag: $(get "${tag}_delivered") records delivered $(get "${tag}_done_s") s after the workload started"
}
esm_live esm_noop_live esm_noop 1
Q bench -c "TRUNCATE esm_sink" >/dev/null
esm_live esm_copy_live esm_copy $((ESM_ROWS + 1))
read -r a b <<<"$(Q bench -F ' ' -c "SELECT count(*), count(DISTINCT id) FROM esm_sink")"
put esm_copy_live_sink_rows "$a"; put esm_copy_live_sink_ids "$b"
put esm_live_records "$(Q bench -c "SELECT count(*) FROM streams.record WHERE stream_id = $ESID_L")"

# 4c. Latency commit -> handler at ~ESM_LAT_RATE commits/s, BatchSize 1.
log "   4c. latency: pgbench --rate=$ESM_LAT_RATE for $ESM_LAT_SECONDS s, BatchSize 1"
read -r M_LAT U_LAT <<<"$(lat_mapping esm_lat_items esm_lat)"
c0=$(pgs_ticks bench 'pg_streams dispatch'); k0=$(pgs_ticks bench 'pg_streams (capture|append)')
# What the dispatcher waits on, sampled every 10 ms from 1 s in.
QTIMEOUT=$((ESM_LAT_SECONDS + 60)) Q bench -c "SELECT pg_sleep(1)" \
  -c "CALL bench_waits('bench', 'pg_streams dispatch', NULL, greatest($ESM_LAT_SECONDS - 2, 1), 0.01)" > "$DIR/esm_lat_waits" 2>/dev/null &
WPID=$!; BG_PIDS+=("$WPID")
ET0=$(date +%s.%N)
timeout $((ESM_LAT_SECONDS + 60)) runuser -u postgres -- "$PGBIN/pgbench" -n -M prepared -c 4 -j 2 -T "$ESM_LAT_SECONDS" \
  --rate="$ESM_LAT_RATE" -f "$DIR/esm_lat_items.sql" -h "$DIR" -p "$PORT" bench > "$DIR/esm_lat_pgbench.out" 2>&1
ET1=$(date +%s.%N)
wait "$WPID" || true
# How far delivery was behind when pgbench ended, and how long it took to catch up.
read -r a b <<<"$(Q bench -F ' ' -c "SELECT (SELECT count(*) FROM esm_lat_items), (SELECT sum(records_delivered) FROM streams.mapping_shard WHERE mapping_id = $M_LAT)")"
put esm_lat_behind_at_end "$((a - b))"
QTIMEOUT=200 Q bench -c "CALL bench_esm_watch($M_LAT, '$SLOT', $a, 150, 0.005)" > "$DIR/watch_esm_lat.csv"
python3 "$HERE/esm_watch.py" esm_lat_tail "$ET1" "$a" < "$DIR/watch_esm_lat.csv" >> "$RES"
put esm_lat_disp_cpu_s "$(calc "($(pgs_ticks bench 'pg_streams dispatch') - $c0) / $CLK_TCK")"
put esm_lat_capture_cpu_s "$(calc "($(pgs_ticks bench 'pg_streams (capture|append)') - $k0) / $CLK_TCK")"
put esm_lat_tps "$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$DIR/esm_lat_pgbench.out" | head -n 1)"
put esm_lat_pgb_lat "$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$DIR/esm_lat_pgbench.out" | head -n 1)"
put esm_lat_wall_s "$(calc "$ET1 - $ET0")"
esm_check esm_lat "$M_LAT"
put esm_lat_seen "$(Q bench -c "SELECT count(*) FROM esm_lat_seen")"
put esm_lat_seen_distinct "$(Q bench -c "SELECT count(DISTINCT seq) FROM esm_lat_seen")"
esm_disable "$M_LAT" "$U_LAT"
# Window: source commits from 1 s after pgbench started to the end of the run.
FROM=$(calc "$ET0 + 1"); TO=$ET1
# A: handler clock - source commit time (the record's arrival, decoded from the
# source COMMIT record; SequenceNumber = 1 + commit LSN (20 digits) + index (10)).
Q bench -c "COPY (
  SELECT extract(epoch FROM r.arrival), extract(epoch FROM s.handled)
  FROM esm_lat_seen s JOIN streams.record r
    ON r.stream_id = $ESID_T AND r.lsn = substr(s.seq, 2, 20)::bigint AND r.idx = substr(s.seq, 22, 10)::integer) TO STDOUT WITH CSV" \
  > "$DIR/esm_lat_a.csv"
# B: handler clock - the row's created (clock_timestamp() in the INSERT, so it
# is stamped a few microseconds before the source COMMIT record).
Q bench -c "COPY (SELECT extract(epoch FROM created), extract(epoch FROM handled) FROM esm_lat_seen) TO STDOUT WITH CSV" \
  > "$DIR/esm_lat_b.csv"
python3 "$HERE/latency.py" esmlatA "$FROM" "$TO" < "$DIR/esm_lat_a.csv" >> "$RES"
python3 "$HERE/latency.py" esmlatB "$FROM" "$TO" < "$DIR/esm_lat_b.csv" >> "$RES"
# Mean latency (A) per second of the run: does delivery keep up or fall behind?
put esm_lat_per_second "$(python3 -c "
import sys
b = {}
for line in open('$DIR/esm_lat_a.csv'):
    s, h = map(float, line.split(','))
    if $ET0 <= s <= $ET1:
        b.setdefault(int(s - $ET0), []).append((h - s) * 1000)
print(' '.join(f'{sum(v) / len(v):.0f}' for k, v in sorted(b.items())))")"
put esm_lat_waits "$(awk 'NF == 2 { n[$1] = $2; t += $2 } END { for (k in n) printf "%s %.0f%%\n", k, 100 * n[k] / t }' "$DIR/esm_lat_waits" | sort -k2 -t' ' -rn | head -n 5 | paste -sd, | sed 's/,/, /g')"
put p4_other_cpu "$(other_cpu "$S4" "$(cpu_snap)")"; put p4_wall "$(calc "$(date +%s.%N) - $T4S")"
# What the server logged (WARNING and above) during part 4.
tail -n +"$((LOG4 + 1))" "$DIR/server.log" | grep -E '^[^ ]+ [^ ]+ [^ ]+ \[[0-9]+\] (WARNING|ERROR|FATAL|PANIC):' > "$DIR/log4" || true
put p4_log_lines "$(wc -l < "$DIR/log4")"
put p4_log_first "$(sed -E 's/^[^ ]+ [^ ]+ [^ ]+ \[[0-9]+\] //' "$DIR/log4" | sort | uniq -c | sort -rn | head -n 3 | sed -E 's/^ +//' | paste -sd'|')"
log "   4c: p99 = $(get esmlatA_p99) ms (from source commit), $(get esmlatB_p99) ms (from created)"
fi  # part 4

###########################################################################
# 5. Event source mappings -> HTTP functions (before part 3, which drops the extension)
###########################################################################
if part 5; then
# shellcheck source=test/bench/part5_http.sh
. "$HERE/part5_http.sh"
fi  # part 5

###########################################################################
# 6. FilterCriteria (before part 3, which drops the extension)
###########################################################################
if part 6; then
# shellcheck source=test/bench/part6_filter.sh
. "$HERE/part6_filter.sh"
fi  # part 6

###########################################################################
# 3. pgbench TPC-B write TPS
###########################################################################
# Configurations, run in the order A F B C C B F A so that a drift of the
# machine over time weighs on all of them alike; each run starts from a fresh
# pgbench -i. A: extension not installed; F: not installed, but the tables
# have the replica identity C's streams set (what complete old images cost
# PostgreSQL's own WAL; absent for KEYS_ONLY); B: installed, no stream (the
# capture worker decodes and skips everything); C: streams on the four tables.
if part 3; then
log "3. pgbench TPC-B, scale $PGB_SCALE, -c 4 -j 2 -T $PGB_SECONDS; order $PGB_CONFIGS, reversed, ..."
# Nothing else may decode WAL during these runs: drop the extension in bench.
Q bench -c "DROP EXTENSION pg_streams CASCADE" >/dev/null
for _ in $(seq 1 100); do
  [ -z "$(worker_pid bench)" ] && [ "$(Q postgres -c "SELECT count(*) FROM pg_replication_slots")" = 0 ] && break
  sleep 0.1
done

ext_off() {
  Q pgb -c "DROP EXTENSION IF EXISTS pg_streams CASCADE" >/dev/null
  for _ in $(seq 1 100); do
    [ -z "$(Q postgres -c "SELECT pid FROM pg_stat_activity WHERE backend_type LIKE 'pg_streams%' AND datname = 'pgb'")" ] &&
      [ "$(Q postgres -c "SELECT count(*) FROM pg_replication_slots")" = 0 ] && return 0
    sleep 0.1
  done
  log "   the pg_streams processes of pgb did not stop"
}
ext_on() {
  if [ -z "$(Q pgb -c "SELECT 1 FROM pg_extension WHERE extname = 'pg_streams'")" ]; then
    Q pgb -c "CREATE EXTENSION pg_streams"
    PSLOT=$(wait_worker pgb)
    sleep 1
  fi
}
pgb_init() {
  timeout 300 runuser -u postgres -- "$PGBIN/pgbench" -i -q -s "$PGB_SCALE" -h "$DIR" -p "$PORT" pgb \
    > "$DIR/pgb_init.log" 2>&1 || { cat "$DIR/pgb_init.log" >&2; return 1; }
  Q pgb -c "ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY" >/dev/null
}
pgb_run() {  # pgb_run TAG ROUND: vacuum, checkpoint, run, record figures
  local tag=$1 n=$2 c0 c1 s0 s1 l0 l1 w0 w1 wpid out fin te rc rb
  Q pgb -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
  if [ "$tag" = idle ] || [ "$tag" = on ]; then
    # The capture worker decodes pgbench -i's big COPY transaction (spilled
    # to disk) for a while after it ends: let it finish before measuring.
    te=$(date +%s.%N)
    fin=$(Q pgb -c "SELECT extract(epoch FROM bench_wait_confirmed('$PSLOT', pg_current_wal_insert_lsn(), 120))")
    put "pgb_${tag}_catchup_s_$n" "$(since "$fin" "$te")"
  fi
  c0=$(pgs_ticks pgb)
  s0=$(cpu_snap)
  l0=$(Q pgb -c "SELECT pg_current_wal_insert_lsn()")
  w0=$(Q pgb -F ' ' -c "SELECT wal_write, wal_sync FROM pg_stat_wal")
  # Wait events of the pgbench backends, sampled every 50 ms from 1 s in.
  QTIMEOUT=$((PGB_SECONDS + 60)) Q pgb -c "SELECT pg_sleep(1)" -c "CALL bench_waits('pgb', 'client backend', 'pgbench', $PGB_SECONDS - 2, 0.05)" \
    > "$DIR/waits_${tag}_$n" 2>/dev/null &
  wpid=$!; BG_PIDS+=("$wpid")
  out=$(timeout $((PGB_SECONDS + 120)) runuser -u postgres -- "$PGBIN/pgbench" -n -c 4 -j 2 -T "$PGB_SECONDS" \
        -h "$DIR" -p "$PORT" pgb 2>&1)
  s1=$(cpu_snap)
  c1=$(pgs_ticks pgb)
  put "pgb_${tag}_other_$n" "$(other_cpu "$s0" "$s1")"
  l1=$(Q pgb -c "SELECT pg_current_wal_insert_lsn()")
  wait "$wpid" || true
  w1=$(Q pgb -F ' ' -c "SELECT pg_stat_clear_snapshot(); SELECT wal_write, wal_sync FROM pg_stat_wal" | tail -n 1)
  put "pgb_${tag}_walsync_$n" "$(( ${w1#* } - ${w0#* } ))"
  put "pgb_${tag}_waits_$n" "$(awk 'NF == 2 { n[$1] = $2; t += $2 } END { for (k in n) printf "%s %.0f%%\n", k, 100 * n[k] / t }' "$DIR/waits_${tag}_$n" | sort -k2 -t' ' -rn | head -n 5 | paste -sd, | sed 's/,/, /g')"
  put "pgb_${tag}_tps_$n" "$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out" | head -n 1)"
  put "pgb_${tag}_lat_$n" "$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out" | head -n 1)"
  put "pgb_${tag}_txns_$n" "$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")"
  put "pgb_${tag}_wal_mb_$n" "$(Q pgb -c "SELECT round((pg_wal_lsn_diff('$l1', '$l0') / 1048576.0)::numeric, 1)")"
  put "pgb_${tag}_cpu_s_$n" "$(calc "($c1 - $c0) / $CLK_TCK")"
  if [ "$tag" = on ]; then
    # Capture backlog left when the run ended, and how long it takes to drain.
    put "pgb_on_lag_mb_$n" "$(Q pgb -c "SELECT round((pg_wal_lsn_diff('$l1', confirmed_flush_lsn) / 1048576.0)::numeric, 1) FROM pg_replication_slots WHERE slot_name = '$PSLOT'")"
    te=$(date +%s.%N)
    fin=$(Q pgb -c "SELECT extract(epoch FROM bench_wait_confirmed('$PSLOT', '$l1', 120))")
    put "pgb_on_drain_s_$n" "$(since "$fin" "$te")"
    read -r rc rb <<<"$(Q pgb -F ' ' -c "SELECT count(*), round(avg(octet_length(r.record))) FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.status = 'ENABLED'")"
    put "pgb_on_records_$n" "$rc"; put "pgb_on_record_bytes_$n" "$rb"
  fi
  log "   $tag: $(get "pgb_${tag}_tps_$n") tps"
}
pgb_config() {  # pgb_config TAG ROUND
  case $1 in
    noext) ext_off; pgb_init ;;
    full)
      ext_off; pgb_init
      for t in pgbench_accounts pgbench_branches pgbench_tellers pgbench_history; do
        Q pgb -c "ALTER TABLE $t REPLICA IDENTITY FULL" >/dev/null
      done ;;
    idle) ext_on; pgb_init ;;
    on)
      ext_on; pgb_init
      for t in pgbench_accounts pgbench_branches pgbench_tellers pgbench_history; do
        Q pgb -c "SELECT streams.enable_stream('$t', '$PGB_VIEW', 4)" >/dev/null
      done ;;
  esac
  pgb_run "$1" "$2"
}
PGB_CONFIGS_REVERSED=$(tr ' ' '\n' <<<"$PGB_CONFIGS" | tac | paste -sd' ')
for ((r = 1; r <= PGB_ROUNDS; r++)); do
  if ((r % 2)); then order=$PGB_CONFIGS; else order=$PGB_CONFIGS_REVERSED; fi
  for c in $order; do pgb_config "$c" "$r"; done
done
fi  # part 3

###########################################################################
# Report
###########################################################################
put parts "$PARTS"; put rows "$ROWS"; put txns "$TXNS"; put per_txn "$PER_TXN"
put reps "$REPS"; put esm_rows "$ESM_ROWS"; put esm_per_txn "$PER_TXN"; put esm_txns "$ESM_TXNS"; put esm_lat_seconds "$ESM_LAT_SECONDS"; put esm_lat_rate "$ESM_LAT_RATE"
put lat_seconds "$LAT_SECONDS"; put lat_rate "$LAT_RATE"
put pgb_seconds "$PGB_SECONDS"; put pgb_rounds "$PGB_ROUNDS"; put pgb_view "$PGB_VIEW"; put pgb_scale "$PGB_SCALE"; put have_w2j "$HAVE_W2J"
put load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
put build "installed pg_streams.so md5 ${SO_ID% *} built ${SO_ID#* }; repo HEAD $GIT_ID with $GIT_DIRTY modified tracked files"
[ "$(so_id)" = "$SO_ID" ] || put build_changed "the installed pg_streams.so was replaced during the run (the cluster kept the one it loaded at start)"
put cpus "$(nproc)"; put pg_version "$("$PGBIN/postgres" --version)"
python3 "$HERE/report.py" "$RES"
