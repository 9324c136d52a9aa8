# Part 5 of bench.sh (sourced by it, uses its helpers): event source mappings
# to HTTP functions, delivered to the loopback sink (test/sink/sink.py).
#
#   5a. records/s to the sink, BatchSize 1000: a backlog of ESM_ROWS rows
#       (part 1's shape) drained after the mapping is enabled; baselines in the
#       same run: the same records to a no-op SQL function, and the same sink
#       fed by a plain keep-alive client posting one of the batches it received
#   5b. the same with BatchSize 1 (HTTP_B1_ROWS rows, one request per record)
#   5c. commit -> sink latency at ~ESM_LAT_RATE commits/s, BatchSize 1
#
# One mapping is enabled at a time. Knobs: BENCH_SINK_PORT (5511),
# BENCH_HTTP_B1_ROWS (20000).

SINK_PORT=${BENCH_SINK_PORT:-5511}
B1_TXNS=$(( ${BENCH_HTTP_B1_ROWS:-20000} / PER_TXN ))
[ "$B1_TXNS" -ge 1 ] || B1_TXNS=1
B1_ROWS=$((B1_TXNS * PER_TXN))
SINK="http://127.0.0.1:$SINK_PORT"

log "5. event source mappings -> HTTP functions: the loopback sink on port $SINK_PORT"
S5=$(cpu_snap); T5S=$(date +%s.%N); LOG5=$(wc -l < "$DIR/server.log")

python3 "$REPO/test/sink/sink.py" --port "$SINK_PORT" > "$DIR/sink.log" 2>&1 &
SINK_PID=$!; BG_PIDS+=("$SINK_PID")
sink_get() {  # sink_get PATH_AND_QUERY: the sink's answer on stdout
  python3 -c 'import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=30).read())' "$SINK$1"
}
sink_stat() {  # sink_stat PATH FIELD: one figure of a quiet path
  sink_get "/_stats?path=$1" | python3 -c 'import json, sys; v = json.load(sys.stdin)[sys.argv[1]]; print("" if v is None else v)' "$2"
}
sink_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$SINK_PID/stat"; }
for _ in $(seq 1 100); do
  sink_get /_health >/dev/null 2>&1 && break
  sleep 0.1
done
sink_get /_health >/dev/null || { log "   the sink did not start"; cat "$DIR/sink.log" >&2; exit 1; }

Q bench -c "$(items_table http_backlog)" >/dev/null
Q bench <<'SQL' >/dev/null
CREATE TABLE http_b1 (LIKE http_backlog INCLUDING ALL) WITH (autovacuum_enabled = off);
CREATE TABLE http_lat_items (
    id      bigserial PRIMARY KEY,
    payload text NOT NULL,
    created timestamptz NOT NULL
);
-- What the sink noted per record in 5c: SequenceNumber, NewImage.created and
-- the time the request arrived (the sink's clock, epoch seconds).
CREATE TABLE http_lat_seen (seq text NOT NULL, created timestamptz NOT NULL, received double precision NOT NULL);
CREATE FUNCTION http_sql_noop(event jsonb) RETURNS jsonb LANGUAGE sql AS 'SELECT NULL::jsonb';
SELECT streams.create_function('http_sql_noop', 'http_sql_noop(jsonb)', timeout => 60);
SQL
for f in b1000 b1; do
  Q bench -c "SELECT streams.create_http_function('http_$f', '$SINK/$f?quiet=1', '{\"Timeout\": 60}')" >/dev/null
done
Q bench -c "SELECT streams.create_http_function('http_lat', '$SINK/lat?quiet=1&note=1', '{\"Timeout\": 60}')" >/dev/null
for t in http_backlog http_b1 http_lat_items; do
  Q bench -c "SELECT streams.enable_stream('$t', 'NEW_AND_OLD_IMAGES', 4)" >/dev/null
done
HSID_T=$(Q bench -c "SELECT stream_id FROM streams.stream WHERE table_name = 'public.http_lat_items'")

# The backlogs: in the stream before any mapping is enabled.
workload 1 "$DIR/h1.sql" http_backlog "$ESM_TXNS"
workload 1 "$DIR/h2.sql" http_b1 "$B1_TXNS"
Q bench -f "$DIR/h1.sql" -f "$DIR/h2.sql" >/dev/null
DONE=$(Q bench -c "SELECT extract(epoch FROM bench_wait_confirmed('$SLOT', pg_current_wal_insert_lsn(), 120))")
[ -n "$DONE" ] || log "   capture of the part 5 backlogs did not finish within 120 s"

http_drain() {  # http_drain TAG TABLE FUNCTION BATCH N: a mapping created disabled, then drained
  local tag=$1 mid uuid k0
  read -r mid uuid <<<"$(esm_create "$2" "$3" TRIM_HORIZON false "$4")"
  esm_wait "$mid" Disabled
  k0=$(sink_ticks)
  esm_drain "$tag" "$mid" "$uuid" "$5"
  put "${tag}_sink_cpu_s" "$(calc "($(sink_ticks) - $k0) / $CLK_TCK")"
}
http_drain http_sql1000 http_backlog http_sql_noop 1000 "$ESM_ROWS"
http_drain http_1000 http_backlog http_b1000 1000 "$ESM_ROWS"
http_drain http_sql1 http_b1 http_sql_noop 1 "$B1_ROWS"
http_drain http_1 http_b1 http_b1 1 "$B1_ROWS"
for f in b1000 b1; do
  put "http_sink_${f}_records" "$(sink_stat "/$f" records)"
  put "http_sink_${f}_requests" "$(sink_stat "/$f" requests)"
  put "http_sink_${f}_bytes" "$(sink_stat "/$f" bytes)"
done

# Baseline: the sink fed by a plain client, as many requests as the mapping
# sent, each one the first body the mapping sent (a full batch).
sink_baseline() {  # sink_baseline TAG FROM_PATH
  local tag=$1 n out k0
  sink_get "/_first?path=/$2" > "$DIR/body_$2.json"
  n=$(get "http_sink_${2}_requests")
  put "${tag}_records_per_request" "$(grep -o '{"eventID":' "$DIR/body_$2.json" | wc -l)"
  put "${tag}_requests" "$n"
  k0=$(sink_ticks)
  out=$(python3 "$HERE/post_loop.py" "$SINK/base_$2?quiet=1" "$DIR/body_$2.json" "$n")
  put "${tag}_s" "$(sed -n 's/^seconds=//p' <<<"$out")"
  put "${tag}_failed" "$(sed -n 's/^failed=//p' <<<"$out")"
  put "${tag}_sink_cpu_s" "$(calc "($(sink_ticks) - $k0) / $CLK_TCK")"
}
sink_baseline http_base1000 b1000
sink_baseline http_base1 b1

# 5c. Latency commit -> sink at ~ESM_LAT_RATE commits/s, BatchSize 1.
log "   5c. latency: pgbench --rate=$ESM_LAT_RATE for $ESM_LAT_SECONDS s, BatchSize 1, to the sink"
read -r M_HLAT U_HLAT <<<"$(lat_mapping http_lat_items http_lat)"
c0=$(pgs_ticks bench 'pg_streams dispatch'); k0=$(sink_ticks)
HT0=$(date +%s.%N)
timeout $((ESM_LAT_SECONDS + 60)) runuser -u postgres -- "$PGBIN/pgbench" -n -M prepared -c 4 -j 2 -T "$ESM_LAT_SECONDS" \
  --rate="$ESM_LAT_RATE" -f "$DIR/http_lat_items.sql" -h "$DIR" -p "$PORT" bench > "$DIR/http_lat_pgbench.out" 2>&1
HT1=$(date +%s.%N)
read -r a b <<<"$(Q bench -F ' ' -c "SELECT (SELECT count(*) FROM http_lat_items), (SELECT sum(records_delivered) FROM streams.mapping_shard WHERE mapping_id = $M_HLAT)")"
put http_lat_behind_at_end "$((a - b))"
QTIMEOUT=200 Q bench -c "CALL bench_esm_watch($M_HLAT, '$SLOT', $a, 150, 0.005)" > "$DIR/watch_http_lat.csv"
python3 "$HERE/esm_watch.py" http_lat_tail "$HT1" "$a" < "$DIR/watch_http_lat.csv" >> "$RES"
put http_lat_disp_cpu_s "$(calc "($(pgs_ticks bench 'pg_streams dispatch') - $c0) / $CLK_TCK")"
put http_lat_sink_cpu_s "$(calc "($(sink_ticks) - $k0) / $CLK_TCK")"
put http_lat_tps "$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$DIR/http_lat_pgbench.out" | head -n 1)"
put http_lat_pgb_lat "$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$DIR/http_lat_pgbench.out" | head -n 1)"
put http_lat_wall_s "$(calc "$HT1 - $HT0")"
esm_check http_lat "$M_HLAT"
esm_disable "$M_HLAT" "$U_HLAT"
sink_get "/_notes?path=/lat" > "$DIR/http_lat_notes.csv"
Q bench -c "COPY http_lat_seen (seq, created, received) FROM STDIN WITH CSV" < "$DIR/http_lat_notes.csv"
put http_lat_seen "$(Q bench -c "SELECT count(*) FROM http_lat_seen")"
put http_lat_seen_distinct "$(Q bench -c "SELECT count(DISTINCT seq) FROM http_lat_seen")"
put http_lat_sink_requests "$(sink_stat /lat requests)"
# Window: source commits from 1 s after pgbench started to the end of the run.
FROM=$(calc "$HT0 + 1"); TO=$HT1
# A: the sink's clock when the request arrived - the source commit time (the
# record's arrival, decoded from the source COMMIT; SequenceNumber = 1 + commit
# LSN (20 digits) + index (10)). B: the same - the row's created.
Q bench -c "COPY (
  SELECT extract(epoch FROM r.arrival), s.received
  FROM http_lat_seen s JOIN streams.record r
    ON r.stream_id = $HSID_T AND r.lsn = substr(s.seq, 2, 20)::bigint AND r.idx = substr(s.seq, 22, 10)::integer) TO STDOUT WITH CSV" \
  > "$DIR/http_lat_a.csv"
Q bench -c "COPY (SELECT extract(epoch FROM created), received FROM http_lat_seen) TO STDOUT WITH CSV" > "$DIR/http_lat_b.csv"
python3 "$HERE/latency.py" httplatA "$FROM" "$TO" < "$DIR/http_lat_a.csv" >> "$RES"
python3 "$HERE/latency.py" httplatB "$FROM" "$TO" < "$DIR/http_lat_b.csv" >> "$RES"
put p5_other_cpu "$(other_cpu "$S5" "$(cpu_snap)")"; put p5_wall "$(calc "$(date +%s.%N) - $T5S")"
tail -n +"$((LOG5 + 1))" "$DIR/server.log" | grep -E '^[^ ]+ [^ ]+ [^ ]+ \[[0-9]+\] (WARNING|ERROR|FATAL|PANIC):' > "$DIR/log5" || true
put p5_log_lines "$(wc -l < "$DIR/log5")"
put p5_log_first "$(sed -E 's/^[^ ]+ [^ ]+ [^ ]+ \[[0-9]+\] //' "$DIR/log5" | sort | uniq -c | sort -rn | head -n 3 | sed -E 's/^ +//' | paste -sd'|')"
put http_b1_rows "$B1_ROWS"; put http_sink_port "$SINK_PORT"
log "   5c: p99 = $(get httplatA_p99) ms (from source commit), $(get httplatB_p99) ms (from created)"
kill "$SINK_PID" 2>/dev/null || true
