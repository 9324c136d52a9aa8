# Part 6 of bench.sh (sourced; uses its cluster and helpers): FilterCriteria.
#   6a. the matcher alone (test/unit/filter_test --bench): records/s of one core
#       (CPU time) for a 3-condition pattern, 1 % and 100 % matching, and for
#       the two filters of 6b over records of this workload;
#   6b. BENCH_REPS times, each on a fresh table (NEW_AND_OLD_IMAGES, 4 shards):
#       FILTER_ROWS rows written while the capture worker waits on a lock, then
#       the capture backlog rate (lock released -> all stored); then that backlog
#       drained by one mapping at a time to a no-op SQL function (BatchSize
#       1000, TRIM_HORIZON): without a filter, with a filter matching 1 % of the
#       records (NewImage.account.N in 10 of 1,000 values) and with one matching
#       all of them (eventName + numeric on ApproximateCreationDateTime);
#       time = enable committed -> checkpoints past every record; the order of
#       the three drains is reversed every other repetition.
log "6. filtering: matcher alone, then $REPS x ($FILTER_ROWS-row capture backlog, drained without a filter, 1 %, 100 %)"
S6=$(cpu_snap); T6S=$(date +%s.%N)
if g++ -std=c++17 -O2 -I"$REPO/src" "$REPO"/src/filter/*.cpp "$REPO/test/unit/filter_test.cpp" -o "$DIR/filter_test" 2> "$DIR/filter_test.log"; then
  "$DIR/filter_test" --bench "$MATCHER_SECONDS" > "$DIR/matcher.out"
  i=0
  while read -r line; do
    i=$((i + 1))
    put "f_matcher_${i}_label" "$(sed -E 's/^matcher, ([^:]*):.*/\1/' <<<"$line")"
    put "f_matcher_${i}_rate" "$(sed -E 's/.*: ([0-9]+) records\/s.*/\1/' <<<"$line")"
    put "f_matcher_${i}_matched" "$(sed -E 's/.* ([0-9.]+)% matched.*/\1/' <<<"$line")"
  done < "$DIR/matcher.out"
  put f_matcher_n "$i"
else
  log "   filter_test does not build: $(head -n 3 "$DIR/filter_test.log")"
fi

Q bench >/dev/null <<'SQL'
CREATE OR REPLACE FUNCTION f_noop(event jsonb) RETURNS jsonb LANGUAGE sql AS 'SELECT NULL::jsonb';
SELECT streams.create_function('f_noop', 'f_noop(jsonb)', timeout => 60)
WHERE NOT EXISTS (SELECT 1 FROM streams.function WHERE function_name = 'f_noop');
SQL
F_ONE='{"Filters": [{"Pattern": "{\"eventName\": [\"INSERT\"], \"dynamodb\": {\"NewImage\": {\"account\": {\"N\": [\"0\", \"1\", \"2\", \"3\", \"4\", \"5\", \"6\", \"7\", \"8\", \"9\"]}}}}"}]}'
F_ALL='{"Filters": [{"Pattern": "{\"eventName\": [\"INSERT\"], \"dynamodb\": {\"ApproximateCreationDateTime\": [{\"numeric\": [\">\", 0]}]}}"}]}'

f_drain() {  # f_drain TABLE REP KIND CRITERIA
  local tbl=$1 r=$2 kind=$3 fc=$4 uuid mid t0 t1 a b c
  uuid=$(Q bench -c "SELECT streams.create_event_source_mapping('{\"EventSourceArn\": \"$tbl\", \"FunctionName\": \"f_noop\",
      \"StartingPosition\": \"TRIM_HORIZON\", \"BatchSize\": 1000, \"Enabled\": false${fc:+, \"FilterCriteria\": $fc}}')->>'UUID'" 2>/dev/null)
  mid=$(Q bench -c "SELECT mapping_id FROM streams.event_source_mapping WHERE uuid = '$uuid'")
  esm_wait "$mid" Disabled
  Q bench -c "CHECKPOINT"
  t0=$(Q bench -c "SELECT streams.update_event_source_mapping('$uuid', '{\"Enabled\": true}')" \
               -c "SELECT extract(epoch FROM clock_timestamp())" | tail -n 1)
  t1=$(QTIMEOUT=1900 Q bench -c "SELECT extract(epoch FROM bench_wait_drained($mid, 1800))")
  # The dispatcher started after t0: all of its CPU is this drain's.
  put "f_${kind}_cpu_$r" "$(calc "$(pgs_ticks bench 'pg_streams dispatch') / $CLK_TCK")"
  put "f_${kind}_s_$r" "$(since "$t1" "$t0")"
  read -r a b c <<<"$(Q bench -F ' ' -c "SELECT records_delivered, records_filtered, invocations
      FROM streams.event_source_mapping_stats WHERE uuid = '$uuid'")"
  put "f_${kind}_delivered_$r" "$a"; put "f_${kind}_filtered_$r" "$b"; put "f_${kind}_invocations_$r" "$c"
  Q bench -c "SELECT streams.update_event_source_mapping('$uuid', '{\"Enabled\": false}')" >/dev/null
  esm_wait "$mid" Disabled
  Q bench -c "SELECT streams.delete_event_source_mapping('$uuid')" >/dev/null
  log "   rep $r, $kind: $(get "f_${kind}_s_$r") s ($a delivered, $b filtered)"
}

F_TXNS=$((FILTER_ROWS / PER_TXN)); [ "$F_TXNS" -ge 1 ] || F_TXNS=1
put f_rows "$((F_TXNS * PER_TXN))"
for ((r = 1; r <= REPS; r++)); do
  tbl=f_items_$r
  Q bench -c "$(items_table "$tbl")" >/dev/null
  Q bench -c "SELECT streams.enable_stream('$tbl', 'NEW_AND_OLD_IMAGES', 4)" >/dev/null
  workload 1 "$DIR/f$r.sql" "$tbl" "$F_TXNS"
  Q bench -c "CHECKPOINT"
  QTIMEOUT=3700 Q "dbname=bench application_name=bench_lock" \
    -c "BEGIN; LOCK TABLE streams.record_batch IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3600); COMMIT;" >/dev/null 2>&1 &
  LOCK_PID=$!; BG_PIDS+=("$LOCK_PID")
  for _ in $(seq 1 100); do
    [ "$(Q bench -c "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'bench_lock' AND l.granted AND l.mode = 'AccessExclusiveLock' AND l.relation = 'streams.record_batch'::regclass")" = 1 ] && break
    sleep 0.1
  done
  QTIMEOUT=3600 Q bench -f "$DIR/f$r.sql" >/dev/null
  FEND=$(Q bench -c "SELECT pg_current_wal_insert_lsn()")
  prev=-1
  for _ in $(seq 1 100); do  # the pipeline stalls (its buffer full) before the lock goes
    cur=$(pgs_ticks bench)
    [ "$cur" = "$prev" ] && break
    prev=$cur; sleep 0.3
  done
  C0=$(pgs_ticks bench)
  REL=$(Q bench -F ' ' -c "SELECT extract(epoch FROM clock_timestamp()), pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'bench_lock'")
  REL=${REL%% *}
  DONE=$(QTIMEOUT=1900 Q bench -c "SELECT extract(epoch FROM bench_wait_confirmed('$SLOT', '$FEND', 1800))")
  put "f_cap_cpu_$r" "$(calc "($(pgs_ticks bench) - $C0) / $CLK_TCK")"
  wait "$LOCK_PID" 2>/dev/null || true
  put "f_cap_s_$r" "$(since "$DONE" "$REL")"
  put "f_cap_n_$r" "$(Q bench -c "SELECT count(*) FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.table_name = 'public.$tbl'")"
  log "   rep $r: capture backlog of $(get "f_cap_n_$r") records in $(get "f_cap_s_$r") s"
  if ((r % 2)); then order="none one all"; else order="all one none"; fi
  for kind in $order; do
    case $kind in
      none) f_drain "$tbl" "$r" none "" ;;
      one) f_drain "$tbl" "$r" one "$F_ONE" ;;
      all) f_drain "$tbl" "$r" all "$F_ALL" ;;
    esac
  done
  Q bench -c "SELECT streams.disable_stream('$tbl')" -c "DROP TABLE $tbl" >/dev/null 2>&1 || true
done
put p6_other_cpu "$(other_cpu "$S6" "$(cpu_snap)")"; put p6_wall "$(calc "$(date +%s.%N) - $T6S")"
