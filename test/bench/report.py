#!/usr/bin/env python3
"""Prints the benchmark table from the key=value results file of bench.sh."""
import sys


def load(path):
    r = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" in line:
                k, v = line.split("=", 1)
                r[k] = v
    return r


R = load(sys.argv[1])


def num(key):
    try:
        return float(R[key])
    except (KeyError, ValueError):
        return None


def fmt(v, spec="{:,.0f}", missing="n/a"):
    return missing if v is None else spec.format(v)


def rate(n, s):
    return None if n is None or not s else n / s


def ratio(a, b):
    return None if a is None or not b else a / b


def median(vals):
    v = sorted(x for x in vals if x is not None)
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def spread(vals, spec="{:,.0f}"):
    """'median (min-max)' of the values that were measured."""
    v = [x for x in vals if x is not None]
    if not v:
        return "n/a"
    if len(v) == 1:
        return spec.format(v[0])
    return f"{spec.format(median(v))} ({spec.format(min(v))}–{spec.format(max(v))})"


def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "NOT met")


def latency_table(rows):
    """Prints percentile rows: (results key prefix, label) pairs."""
    print("   source commits from 1 s after start to the end of the run; percentiles are nearest-rank, in ms")
    print(f"   {'method':<64}{'records':>9}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}")
    for key, label in rows:
        print(f"   {label:<64}{fmt(num(key + '_count')):>9}" +
              "".join(f"{fmt(num(f'{key}_{p}'), '{:.2f}'):>8}" for p in ("p50", "p90", "p99", "max")))


PARTS = R.get("parts", "1 2 3 4").split()


def part(n):
    return str(n) in PARTS


W = 100
print()
print("=" * W)
print(f"pg_streams benchmark   {R.get('pg_version', '')}   {R.get('cpus', '?')} CPUs")
print(f"build: {R.get('build', '?')}")
print(f"CPU used by other processes on the machine (not this cluster, not its clients; kernel threads count), and time the"
      " hypervisor gave our virtual CPUs to other machines (steal): part 1"
      f" {R.get('p1_other_cpu', '?')} in {fmt(num('p1_wall'), '{:.0f}')} s, part 2 {R.get('p2_other_cpu', '?')}"
      f" in {fmt(num('p2_wall'), '{:.0f}')} s, part 3 per run below")
print(f"load average (1/5/15 min) at start {R.get('load_start', '?')}, at end {R.get('load_end', '?')}"
      " - anything else running on the machine perturbs every figure")
if R.get("build_changed"):
    print(f"WARNING: {R['build_changed']}")
print(f"pg_streams processes per database: {R.get('pgs_procs', '?')}  ('pg_streams CPU' below is their sum)")
print("=" * W)

# --------------------------------------------------------------------------
rows, txns, per = R.get("rows"), R.get("txns"), R.get("per_txn")
if part(1):
    print()
    print(f"1. CAPTURE THROUGHPUT  {int(rows):,} rows = {txns} transactions x {per} inserted rows"
          " (one heap insert per row)")
    print("   table bench_items(id bigint PK, account int, amount numeric, note text, created timestamptz),"
          " NEW_AND_OLD_IMAGES, 4 shards")
    hdr = f"   {'':<64}{'records':>10}{'seconds':>10}{'records/s':>12}{'x pgoutput':>11}"


    def block(tag, title, notes, capture_label, capture_time_key):
        print()
        print(f"   {title}")
        for n in notes:
            print(f"      {n}")
        print(hdr)
        pgo = rate(num(f"{tag}_pgoutput_n"), num(f"{tag}_pgoutput_s"))
        cap_n, cap_s = num(f"{tag}_count"), num(capture_time_key)
        cap = rate(cap_n, cap_s)
        lines = [(capture_label, cap_n, cap_s, cap)]
        lines.append(("baseline pgoutput   (get_binary_changes, proto 1, publication)",
                      num(f"{tag}_pgoutput_n"), num(f"{tag}_pgoutput_s"), pgo))
        if R.get("have_w2j") == "1":
            lines.append(("baseline wal2json   (get_changes, format-version 2, add-tables)",
                          num(f"{tag}_wal2json_n"), num(f"{tag}_wal2json_s"),
                          rate(num(f"{tag}_wal2json_n"), num(f"{tag}_wal2json_s"))))
        lines.append(("pg_streams plugin alone (get_changes, records as text)",
                      num(f"{tag}_pgsplugin_n"), num(f"{tag}_pgsplugin_s"),
                      rate(num(f"{tag}_pgsplugin_n"), num(f"{tag}_pgsplugin_s"))))
        for label, n, s, r in lines:
            print(f"   {label:<64}{fmt(n):>10}{fmt(s, '{:.3f}'):>10}{fmt(r):>12}{fmt(ratio(r, pgo), '{:.2f}'):>11}")
        return ratio(cap, pgo)


    live_ratio = block(
        "live", "a) live: the workload is written while the capture worker runs",
        [f"workload took {fmt(num('live_gen_s'), '{:.2f}')} s, {R.get('live_wal_mb', '?')} MB of WAL"
         " (source rows + the worker's own appends, interleaved);",
         "capture time = first source commit (min arrival) -> worker confirms the last workload commit (5 ms poll);",
         "baselines decode the same LSN range afterwards, one after the other, nothing else running;",
         f"pg_streams CPU during the capture: {fmt(num('live_cpu_s'), '{:.2f}')} s;",
         f"the writer committed from first to last in {fmt(num('live_src_s'), '{:.3f}')} s"
         f" ({fmt(rate(num('live_count'), num('live_src_s')))} records/s: live capture cannot go faster);"
         f" the last commit was in the stream {fmt(num('live_tail_ms'), '{:.0f}')} ms after it was made"],
        "pg_streams capture -> streams.record (live)", "live_s")
    backlog_ratio = block(
        "backlog", "b) backlog: the same workload written while the worker waits on a lock on streams.record_batch",
        [f"{R.get('backlog_wal_mb', '?')} MB of WAL with nothing else in it; pg_streams waiting on the lock:"
         f" {'yes' if R.get('backlog_blocked', '0') not in ('0', '') else 'NO (check)'};",
         "baselines decode exactly that WAL; then the lock goes and the worker drains it:",
         "capture time = lock released -> worker confirms the last workload commit (5 ms poll);",
         f"pg_streams CPU during the drain: {fmt(num('backlog_cpu_s'), '{:.2f}')} s"],
        "pg_streams capture -> streams.record (drain)", "backlog_s")
    reps = int(R.get("reps", "1"))
    bruns = []
    for i in range(1, reps + 1):
        c = rate(num(f"backlog{i}_count"), num(f"backlog{i}_s"))
        p = rate(num(f"backlog{i}_pgoutput_n"), num(f"backlog{i}_pgoutput_s"))
        bruns.append((c, p, ratio(c, p), num(f"backlog{i}_s")))
    if bruns:
        print(f"      the backlog was measured {reps} times (above: run {R.get('backlog_median_run', '?')}, the median ratio):")
        for i, (c, p, x, sec) in enumerate(bruns, 1):
            print(f"      run {i}: capture {fmt(c)}/s in {fmt(sec, '{:.2f}')} s, pgoutput {fmt(p)}/s, {fmt(x, '{:.2f}')} x")
        print(f"      median (min–max): capture {spread([b[0] for b in bruns])}/s, pgoutput {spread([b[1] for b in bruns])}/s,"
              f" {spread([b[2] for b in bruns], '{:.2f}')} x")
        backlog_ratio = median([b[2] for b in bruns]) if any(b[2] is not None for b in bruns) else backlog_ratio
    print()
    print(f"   target capture >= 0.8 x pgoutput:   backlog (the same WAL for both) {fmt(backlog_ratio, '{:.2f}')} x"
          f" ({verdict(None if backlog_ratio is None else backlog_ratio >= 0.8)});   live {fmt(live_ratio, '{:.2f}')} x,"
          " bounded by the writer's pace (above), not by capture")

# --------------------------------------------------------------------------
if part(2):
    print()
    print(f"2. LATENCY commit -> readable in streams.record   pgbench --rate={R.get('lat_rate')} -c 4 -j 2"
          f" -T {R.get('lat_seconds')} -M prepared, one single-row INSERT per transaction")
    print(f"   achieved {fmt(num('lat_tps'), '{:,.1f}')} tps (pgbench average latency {R.get('lat_pgb_lat', '?')} ms),"
          f" {fmt(num('lat_records'))} records; pg_streams CPU {fmt(num('lat_cpu_s'), '{:.2f}')} s"
          f" over {fmt(num('lat_wall_s'), '{:.1f}')} s;")
    latency_table((("latA", "A  worker's COMMIT record time - source COMMIT time  (WAL, 1 us)"),
                   ("latB", "B  poller: first snapshot showing it - source COMMIT time")))
    print("      A: commit time of the transaction that appended the record, read from its COMMIT record with")
    print("         pg_walinspect, minus the record's arrival (the source COMMIT record's time). Exact: appends")
    print("         commit without waiting for a WAL flush, so the records are visible from that moment.")
    print(f"      B: a server-side loop (plpgsql, fresh snapshot per query) polling streams.record every"
          f" {fmt(num('latB_interval_ms'), '{:.2f}')} ms on average;")
    print("         the time stamped is taken before the snapshot in which the record first appears, so B")
    print("         overstates by up to one poll interval. The poller itself uses some CPU.")
    p99a = num("latA_p99")
    print(f"   target p99 < 50 ms:   A {fmt(p99a, '{:.2f}')} ms ({verdict(None if p99a is None else p99a < 50)}),"
          f"   B {fmt(num('latB_p99'), '{:.2f}')} ms ({verdict(None if num('latB_p99') is None else num('latB_p99') < 50)})")

# --------------------------------------------------------------------------
if part(3):
    print()
    rounds = int(R.get("pgb_rounds", "2"))
    runs = range(1, rounds + 1)
    configs = [("noext", "A", "A  extension not installed (baseline)"),
               ("full", "F", "F  not installed, REPLICA IDENTITY FULL"),
               ("idle", "B", "B  extension installed, no stream"),
               ("on", "C", f"C  streams on the 4 tables, {R.get('pgb_view', 'NEW_AND_OLD_IMAGES')}")]
    configs = [c for c in configs if num(f"pgb_{c[0]}_tps_1") is not None]
    shorts = [c[1] for c in configs]
    print(f"3. WRITE TPS   pgbench TPC-B (default script), scale {R.get('pgb_scale')}, -c 4 -j 2 -T {R.get('pgb_seconds')} -n,"
          f" {rounds} runs per configuration, in the order {' '.join(shorts)}, {' '.join(reversed(shorts))}, ...;")
    print("   every run starts from a fresh pgbench -i (pgbench_history gets an id bigserial PRIMARY KEY),"
          " VACUUM ANALYZE, CHECKPOINT")


    def values(key):
        return [x for x in (num(f"{key}_{n}") for n in runs) if x is not None]


    def mean(key):
        v = values(key)
        return sum(v) / len(v) if v else None


    def median(key):
        v = sorted(values(key))
        if not v:
            return None
        m = len(v) // 2
        return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2


    print(f"   {'configuration':<50}{'tps per run':>{max(12, 9 * rounds)}}{'median':>9}{'lat ms':>8}{'WAL KB/tx':>10}"
          f"{'pg_streams CPU s':>17}{'overhead':>10}")


    def wal_per_txn(tag):
        v = [num(f"pgb_{tag}_wal_mb_{n}") * 1024 / num(f"pgb_{tag}_txns_{n}")
             for n in runs if num(f"pgb_{tag}_wal_mb_{n}") and num(f"pgb_{tag}_txns_{n}")]
        return sum(v) / len(v) if v else None
    base = median("pgb_noext_tps")
    for tag, _, label in configs:
        tps = median(f"pgb_{tag}_tps")
        ov = None if tps is None or not base else (base - tps) / base * 100
        per_run = " ".join(fmt(num(f"pgb_{tag}_tps_{n}")) for n in runs)
        print(f"   {label:<50}{per_run:>{max(12, 9 * rounds)}}"
              f"{fmt(tps, '{:,.1f}'):>9}{fmt(mean(f'pgb_{tag}_lat'), '{:.2f}'):>8}{fmt(wal_per_txn(tag), '{:,.1f}'):>10}"
              f"{fmt(mean(f'pgb_{tag}_cpu_s') if tag in ('idle', 'on') else None, '{:.2f}', '-'):>17}"
              f"{'' if tag == 'noext' else fmt(ov, '{:+.1f} %'):>10}")
    ran = [c[0] for c in configs]
    for n in runs if "on" in ran else ():
        print(f"   C run {n}: {fmt(num(f'pgb_on_records_{n}'))} records (average {fmt(num(f'pgb_on_record_bytes_{n}'))} bytes)"
              f" for {fmt(num(f'pgb_on_txns_{n}'))} transactions;"
              f" capture backlog at the end of the run {R.get(f'pgb_on_lag_mb_{n}', '?')} MB of WAL,"
              f" in the stream {fmt(num(f'pgb_on_drain_s_{n}'), '{:.2f}', R.get(f'pgb_on_drain_s_{n}', 'n/a'))} s later")
    print("   per run: CPU used by other processes on the machine (not this cluster, not pgbench), WAL fsyncs")
    print("   (pg_stat_wal.wal_sync), and what the pgbench backends were doing (pg_stat_activity every 50 ms):")
    for tag, short, _ in configs:
        for n in runs:
            print(f"   {short} run {n}: other load {R.get(f'pgb_{tag}_other_{n}', '?')}; {fmt(num(f'pgb_{tag}_walsync_{n}'))} fsyncs;"
                  f" {R.get(f'pgb_{tag}_waits_{n}', '?')}")
    if "idle" in ran or "on" in ran:
        print("   before each B and C run the capture worker was let finish decoding pgbench -i (a 1-transaction COPY"
              " it must spill to disk):")
        print("   " + ", ".join(f"{t} run {n} {fmt(num(f'pgb_{t}_catchup_s_{n}'), '{:.1f}', R.get(f'pgb_{t}_catchup_s_{n}', '?'))} s" for t in ("idle", "on") if t in ran for n in runs)
              + " after VACUUM + CHECKPOINT")
    on, idle, full = median("pgb_on_tps"), median("pgb_idle_tps"), median("pgb_full_tps")
    ov_on = None if on is None or not base else (base - on) / base * 100
    print(f"   target write overhead <= 5 %:   C {fmt(ov_on, '{:+.1f} %')} vs A"
          f" ({verdict(None if ov_on is None else ov_on <= 5)})"
          + (f";  C {fmt((idle - on) / idle * 100, '{:+.1f} %')} vs B" if on and idle else "")
          + (f";  C {fmt((full - on) / full * 100, '{:+.1f} %')} vs F, F {fmt((base - full) / base * 100, '{:+.1f} %')} vs A"
             if on and full and base else ""))
    print("   overhead = (baseline tps - tps) / baseline tps, on the medians; WAL KB/tx = WAL written during the run per")
    print("   pgbench transaction, including what the capture appends;")
    print("   'pg_streams CPU s' is the CPU the capture processes used during the run, out of"
          f" {R.get('cpus', '?')} x {R.get('pgb_seconds')} s")

# --------------------------------------------------------------------------
cap_live = rate(num("live_count"), num("live_s"))
cap_backlog = rate(num("backlog_count"), num("backlog_s"))
esm_rows = num("esm_rows")
esm = {}
if part(4):
    print()
    print(f"4. EVENT SOURCE MAPPINGS -> SQL functions   {fmt(esm_rows)} rows per measurement = {R.get('esm_txns')} transactions"
          f" x {per} inserted rows (part 1's shape)")
    print("   tables like bench_items, NEW_AND_OLD_IMAGES, 4 shards; BatchSize 1000, MaximumBatchingWindowInSeconds 0;"
          " one mapping (one dispatcher) at a time")
    print("   handlers: no-op = LANGUAGE sql 'SELECT NULL::jsonb';  copy = plpgsql INSERT INTO esm_sink (id, image)"
          " SELECT Keys.id, NewImage FROM jsonb_array_elements(event->'Records')")
    print("   backlog: the rows are in the stream, then the mapping (TRIM_HORIZON, created disabled) is enabled:"
          " time = enable committed -> records_delivered = N;")
    print("   live: the mapping (LATEST) and its dispatcher are up, then the workload writes:"
          " time = workload start -> records_delivered = N;")
    print("   records_delivered polled every 5 ms (streams.mapping_shard, the counter the stats view sums);"
          " 'x capture' = records/s / part 1's capture-only records/s")
    print(f"   {'':<44}{'records':>10}{'seconds':>9}{'records/s':>11}{'capture-only (part 1)':>24}{'x capture':>10}")
    for tag, label, cap, cap_label in (
            ("esm_noop_backlog", "a) no-op handler, backlog", cap_backlog, "1b backlog"),
            ("esm_noop_live", "a) no-op handler, live", cap_live, "1a live"),
            ("esm_copy_backlog", "b) copy handler, backlog", cap_backlog, "1b backlog"),
            ("esm_copy_live", "b) copy handler, live", cap_live, "1a live")):
        n, sec = num(f"{tag}_delivered"), num(f"{tag}_done_s")
        r = rate(n, sec)
        esm[tag] = (r, ratio(r, cap), cap)
        done = R.get(f"{tag}_done_s", "n/a")
        print(f"   {label:<44}{fmt(n):>10}{fmt(sec, '{:.3f}', done):>9}{fmt(r):>11}"
              f"{fmt(cap) + ' (' + cap_label + ')':>24}{fmt(ratio(r, cap), '{:.2f}'):>10}")
    for tag, label in (("esm_noop_backlog", "a backlog"), ("esm_noop_live", "a live"),
                       ("esm_copy_backlog", "b backlog"), ("esm_copy_live", "b live")):
        first = num(f"{tag}_first_s")
        extra = ""
        if tag.endswith("backlog"):
            extra = (f"dispatcher took the mapping up {fmt(num(f'{tag}_started_s'), '{:.2f}')} s after enabling,"
                     f" first batch delivered at {fmt(first, '{:.2f}')} s"
                     f" ({fmt(rate(num(f'{tag}_delivered'), (num(f'{tag}_done_s') or 0) - (first or 0)) if first else None)}"
                     " records/s from there);")
        else:
            extra = (f"workload took {fmt(num(f'{tag}_gen_s'), '{:.2f}')} s, all captured at"
                     f" {fmt(num(f'{tag}_capture_s'), '{:.2f}', 'n/a')} s, first batch at {fmt(first, '{:.2f}')} s;"
                     f" capture+append CPU {fmt(num(f'{tag}_capture_cpu_s'), '{:.2f}')} s;")
        print(f"      {label}: {extra} {fmt(num(f'{tag}_invocations'))} invocations, dispatcher CPU"
              f" {fmt(num(f'{tag}_disp_cpu_s'), '{:.2f}')} s")
    checks = []
    for tag in ("esm_noop_backlog", "esm_noop_live", "esm_copy_backlog", "esm_copy_live"):
        bad = []
        if R.get(f"{tag}_delivered") != R.get("esm_rows"):
            bad.append(f"records_delivered {R.get(f'{tag}_delivered', '?')}")
        if R.get(f"{tag}_view_delivered") != R.get(f"{tag}_delivered"):
            bad.append(f"view says {R.get(f'{tag}_view_delivered', '?')}")
        for k in ("function_errors", "view_retries"):
            if R.get(f"{tag}_{k}", "0") != "0":
                bad.append(f"{k} {R.get(f'{tag}_{k}')}")
        if R.get(f"{tag}_view_backlog", "0") != "0":
            bad.append(f"backlog {R.get(f'{tag}_view_backlog')}")
        if tag.startswith("esm_copy") and not (R.get(f"{tag}_sink_rows") == R.get(f"{tag}_sink_ids") == R.get("esm_rows")):
            bad.append(f"esm_sink {R.get(f'{tag}_sink_rows', '?')} rows, {R.get(f'{tag}_sink_ids', '?')} ids")
        checks.append(f"{tag[4:]} " + ("OK" if not bad else "WRONG: " + ", ".join(bad)))
    print("   checks (delivered = N, the stats view agrees, no errors or retries, backlog 0, esm_sink holds each id once): "
          + "; ".join(checks))
    ra, rl = esm.get("esm_noop_backlog", (None,))[0], esm.get("esm_noop_live", (None,))[0]
    print(f"   target >= 100,000 records/s to the no-op handler:   backlog {fmt(ra)}/s"
          f" ({verdict(None if ra is None else ra >= 100000)}),   live {fmt(rl)}/s ({verdict(None if rl is None else rl >= 100000)})")

    print()
    print(f"4c. LATENCY commit -> handler   pgbench --rate={R.get('esm_lat_rate')} -c 4 -j 2 -T {R.get('esm_lat_seconds')}"
          " -M prepared, one single-row INSERT per transaction;")
    print("   mapping LATEST, BatchSize 1, MaximumBatchingWindowInSeconds 0; the handler inserts (SequenceNumber,"
          " NewImage.created, clock_timestamp()) per record")
    print(f"   achieved {fmt(num('esm_lat_tps'), '{:,.1f}')} tps (pgbench average latency {R.get('esm_lat_pgb_lat', '?')} ms);"
          f" {fmt(num('esm_lat_view_invocations'))} invocations for {fmt(num('esm_lat_seen'))} records"
          f" ({fmt(num('esm_lat_seen_distinct'))} distinct);")
    print(f"   dispatcher CPU {fmt(num('esm_lat_disp_cpu_s'), '{:.2f}')} s, capture+append CPU"
          f" {fmt(num('esm_lat_capture_cpu_s'), '{:.2f}')} s over {fmt(num('esm_lat_wall_s'), '{:.1f}')} s;"
          f" dispatcher waits: {R.get('esm_lat_waits', '?')}")
    print(f"   when pgbench ended {fmt(num('esm_lat_behind_at_end'))} records were not delivered yet;"
          f" all were {fmt(num('esm_lat_tail_done_s'), '{:.2f}', R.get('esm_lat_tail_done_s', 'n/a'))} s later")
    latency_table((("esmlatA", "A  handler's clock_timestamp() - source COMMIT time (arrival)"),
                   ("esmlatB", "B  handler's clock_timestamp() - NewImage.created")))
    print("      A: the record's arrival is the source COMMIT record's time (joined on the SequenceNumber), stamped")
    print("         before the commit's WAL flush; B: created is clock_timestamp() in the INSERT, a few us earlier.")
    print(f"   mean of A per second of the run (ms): {R.get('esm_lat_per_second', '?')}")
    p99c = num("esmlatA_p99")
    print(f"   target p99 < 100 ms:   A {fmt(p99c, '{:.2f}')} ms ({verdict(None if p99c is None else p99c < 100)}),"
          f"   B {fmt(num('esmlatB_p99'), '{:.2f}')} ms ({verdict(None if num('esmlatB_p99') is None else num('esmlatB_p99') < 100)})")
    print(f"   part 4 took {fmt(num('p4_wall'), '{:.0f}')} s; CPU used by other processes meanwhile {R.get('p4_other_cpu', '?')};"
          f" server log: {R.get('p4_log_lines', '?')} WARNING/ERROR lines"
          + (f" ({R.get('p4_log_first')})" if R.get("p4_log_first") else ""))
# --------------------------------------------------------------------------
http = {}
if part(5):
    b1 = num("http_b1_rows")
    print()
    print(f"5. EVENT SOURCE MAPPINGS -> HTTP functions, delivered to the loopback sink (test/sink/sink.py, Python,"
          f" port {R.get('http_sink_port', '?')})")
    print(f"   backlogs in the stream, then the mapping (TRIM_HORIZON, created disabled) is enabled: time = enable committed"
          f" -> records_delivered = N; tables like bench_items, 4 shards")
    print("   baselines in the same run: the same records to a no-op SQL function (same dispatcher, no HTTP), and the"
          " sink fed by a plain")
    print("   keep-alive Python client posting, one after the other, as many requests as the mapping sent, each a copy"
          " of the mapping's first body")
    print(f"   {'':<46}{'records':>10}{'requests':>10}{'seconds':>9}{'records/s':>11}{'dispatcher CPU s':>18}{'sink CPU s':>12}")
    for tag, label in (("http_1000", "a) HTTP, BatchSize 1000"), ("http_sql1000", "   no-op SQL function, BatchSize 1000"),
                       ("http_1", "b) HTTP, BatchSize 1"), ("http_sql1", "   no-op SQL function, BatchSize 1")):
        n, sec = num(f"{tag}_delivered"), num(f"{tag}_done_s")
        r = rate(n, sec)
        http[tag] = r
        print(f"   {label:<46}{fmt(n):>10}{fmt(num(tag + '_invocations')):>10}{fmt(sec, '{:.3f}', R.get(tag + '_done_s', 'n/a')):>9}"
              f"{fmt(r):>11}{fmt(num(tag + '_disp_cpu_s'), '{:.2f}'):>18}{fmt(num(tag + '_sink_cpu_s'), '{:.2f}') if tag.startswith('http_1') else '':>12}")
    for tag, label in (("http_base1000", "   sink ceiling, plain client, 1000-record bodies"),
                       ("http_base1", "   sink ceiling, plain client, 1-record bodies")):
        n = (num(tag + "_requests") or 0) * (num(tag + "_records_per_request") or 0)
        r = rate(n, num(tag + "_s"))
        http[tag] = r
        print(f"   {label:<46}{fmt(n):>10}{fmt(num(tag + '_requests')):>10}{fmt(num(tag + '_s'), '{:.3f}'):>9}{fmt(r):>11}"
              f"{'':>18}{fmt(num(tag + '_sink_cpu_s'), '{:.2f}'):>12}")
    checks = []
    for tag, path, n in (("http_1000", "b1000", num("esm_rows")), ("http_1", "b1", b1),
                         ("http_sql1000", None, num("esm_rows")), ("http_sql1", None, b1)):
        bad = []
        if num(f"{tag}_delivered") != n:
            bad.append(f"records_delivered {R.get(f'{tag}_delivered', '?')}")
        if R.get(f"{tag}_view_delivered") != R.get(f"{tag}_delivered"):
            bad.append(f"view says {R.get(f'{tag}_view_delivered', '?')}")
        for k in ("function_errors", "view_retries", "view_backlog"):
            if R.get(f"{tag}_{k}", "0") != "0":
                bad.append(f"{k} {R.get(f'{tag}_{k}')}")
        if path and num(f"http_sink_{path}_records") != n:
            bad.append(f"sink received {R.get(f'http_sink_{path}_records', '?')} records")
        if path and R.get(f"http_sink_{path}_requests") != R.get(f"{tag}_invocations"):
            bad.append(f"sink received {R.get(f'http_sink_{path}_requests', '?')} requests")
        checks.append(f"{tag} " + ("OK" if not bad else "WRONG: " + ", ".join(bad)))
    for tag in ("http_base1000", "http_base1"):
        if R.get(f"{tag}_failed", "0") != "0":
            checks.append(f"{tag} WRONG: {R.get(f'{tag}_failed')} failed requests")
    print("   checks (delivered = N, the stats view agrees, no errors or retries, backlog 0, the sink received N records"
          " in as many requests as invocations): " + "; ".join(checks))
    print(f"   bytes received by the sink: BatchSize 1000 {fmt(num('http_sink_b1000_bytes'))},"
          f" BatchSize 1 {fmt(num('http_sink_b1_bytes'))}")
    r1000 = http.get("http_1000")
    print(f"   target >= 50,000 records/s with BatchSize 1000: {fmt(r1000)}/s ({verdict(None if r1000 is None else r1000 >= 50000)})")

    print()
    print(f"5c. LATENCY commit -> sink   pgbench --rate={R.get('esm_lat_rate')} -c 4 -j 2 -T {R.get('esm_lat_seconds')}"
          " -M prepared, one single-row INSERT per transaction;")
    print("   mapping LATEST, BatchSize 1, MaximumBatchingWindowInSeconds 0; the sink notes (SequenceNumber,"
          " NewImage.created, time the request arrived) per record")
    print(f"   achieved {fmt(num('http_lat_tps'), '{:,.1f}')} tps (pgbench average latency {R.get('http_lat_pgb_lat', '?')} ms);"
          f" {fmt(num('http_lat_view_invocations'))} invocations, {fmt(num('http_lat_sink_requests'))} requests received"
          f" for {fmt(num('http_lat_seen'))} records ({fmt(num('http_lat_seen_distinct'))} distinct);")
    print(f"   dispatcher CPU {fmt(num('http_lat_disp_cpu_s'), '{:.2f}')} s, sink CPU {fmt(num('http_lat_sink_cpu_s'), '{:.2f}')} s"
          f" over {fmt(num('http_lat_wall_s'), '{:.1f}')} s; when pgbench ended {fmt(num('http_lat_behind_at_end'))} records"
          f" were not delivered yet, all were {fmt(num('http_lat_tail_done_s'), '{:.2f}', R.get('http_lat_tail_done_s', 'n/a'))} s later")
    latency_table((("httplatA", "A  request arrived at the sink - source COMMIT time (arrival)"),
                   ("httplatB", "B  request arrived at the sink - NewImage.created")))
    p99h = num("httplatA_p99")
    print(f"   target p99 < 100 ms:   A {fmt(p99h, '{:.2f}')} ms ({verdict(None if p99h is None else p99h < 100)})")
    print(f"   part 5 took {fmt(num('p5_wall'), '{:.0f}')} s; CPU used by other processes meanwhile {R.get('p5_other_cpu', '?')};"
          f" server log: {R.get('p5_log_lines', '?')} WARNING/ERROR lines"
          + (f" ({R.get('p5_log_first')})" if R.get("p5_log_first") else ""))

# --------------------------------------------------------------------------
f6 = {}
if part(6):
    reps = int(R.get("reps", "3"))
    print()
    print(f"6. FILTERING (FilterCriteria)   matcher alone, then {reps} x: a capture backlog of {fmt(num('f_rows'))} rows"
          " (fresh table like bench_items, NEW_AND_OLD_IMAGES, 4 shards),")
    print("   drained by one mapping at a time to a no-op SQL function (BatchSize 1000, TRIM_HORIZON);"
          " drain time = enable committed -> checkpoints past every record")
    print("   a) matcher alone (test/unit/filter_test --bench), one core, CPU time:")
    for i in range(1, int(R.get("f_matcher_n", "0")) + 1):
        print(f"      {R.get(f'f_matcher_{i}_label', '?'):<58}{fmt(num(f'f_matcher_{i}_rate')):>12} records/s"
              f"  ({R.get(f'f_matcher_{i}_matched', '?')} % matched)")
    print(f"   b) {'run':<6}{'capture s':>10}{'capture/s':>11}"
          + "".join(f"{h:>13}" for h in ("none s", "none/s", "1 % s", "1 %/s", "1 % x cap", "all s", "all/s", "all vs none",
                                          "CPU vs none")))
    cols = {k: [] for k in ("cap", "none", "one", "all", "ratio", "cost", "cpucost", "dur")}
    for r in range(1, reps + 1):
        cap = rate(num(f"f_cap_n_{r}"), num(f"f_cap_s_{r}"))
        n = num(f"f_cap_n_{r}")
        none, one, all_ = (rate(n, num(f"f_{k}_s_{r}")) for k in ("none", "one", "all"))
        ratio_one = ratio(one, cap)
        cost = None if not none or all_ is None else all_ / none - 1  # the rate's change; -10 % is the limit
        cn, ca = num(f"f_none_cpu_{r}"), num(f"f_all_cpu_{r}")
        cpucost = None if not cn or ca is None else ca / cn - 1
        for k, v in (("cap", cap), ("none", none), ("one", one), ("all", all_), ("ratio", ratio_one), ("cost", cost),
                     ("cpucost", cpucost)):
            cols[k].append(v)
        cols["dur"] += [num(f"f_cap_s_{r}"), num(f"f_none_s_{r}"), num(f"f_one_s_{r}"), num(f"f_all_s_{r}")]
        print(f"      {r:<6}{fmt(num(f'f_cap_s_{r}'), '{:.2f}'):>10}{fmt(cap):>11}{fmt(num(f'f_none_s_{r}'), '{:.2f}'):>13}"
              f"{fmt(none):>13}{fmt(num(f'f_one_s_{r}'), '{:.2f}'):>13}{fmt(one):>13}{fmt(ratio_one, '{:.2f}'):>13}"
              f"{fmt(num(f'f_all_s_{r}'), '{:.2f}'):>13}{fmt(all_):>13}{fmt(cost, '{:+.1%}'):>13}{fmt(cpucost, '{:+.1%}'):>13}")
        bad = []
        if R.get(f"f_none_delivered_{r}") != R.get(f"f_cap_n_{r}") or R.get(f"f_all_delivered_{r}") != R.get(f"f_cap_n_{r}"):
            bad.append(f"delivered without filter {R.get(f'f_none_delivered_{r}')}, with the all filter {R.get(f'f_all_delivered_{r}')}")
        if n and num(f"f_one_delivered_{r}") is not None and num(f"f_one_filtered_{r}") is not None and \
                num(f"f_one_delivered_{r}") + num(f"f_one_filtered_{r}") != n:
            bad.append(f"1 %: {R.get(f'f_one_delivered_{r}')} delivered + {R.get(f'f_one_filtered_{r}')} filtered")
        if bad:
            print(f"         WRONG: {'; '.join(bad)}")
        else:
            print(f"         checks OK: 1 % filter delivered {R.get(f'f_one_delivered_{r}', '?')} and filtered"
                  f" {R.get(f'f_one_filtered_{r}', '?')} in {R.get(f'f_one_invocations_{r}', '?')} invocations;"
                  f" dispatcher CPU s: none {R.get(f'f_none_cpu_{r}', '?')}, 1 % {R.get(f'f_one_cpu_{r}', '?')},"
                  f" all {R.get(f'f_all_cpu_{r}', '?')}; capture CPU {R.get(f'f_cap_cpu_{r}', '?')} s")
    f6 = cols
    short = [d for d in cols["dur"] if d is not None and d < 5]
    print(f"   all vs none = (all/s) / (none/s) - 1: what a filter matching everything changes in the no-op figure;"
          " CPU vs none = dispatcher CPU-s with it / without - 1 (less sensitive to other load)")
    print(f"   median (min–max) of {reps}: capture {spread(cols['cap'])}/s; 1 % drain {spread(cols['one'])}/s ="
          f" {spread(cols['ratio'], '{:.2f}')}x capture (target >= 0.6x); all vs none {spread(cols['cost'], '{:+.1%}')},"
          f" CPU {spread(cols['cpucost'], '{:+.1%}')} (target: no more than 10 % slower)")
    if short:
        print(f"   NOTE: {len(short)} of the timed runs lasted under 5 s (shortest {min(short):.2f} s):"
              " raise BENCH_FILTER_ROWS for figures that stand")
    print(f"   part 6 took {fmt(num('p6_wall'), '{:.0f}')} s; CPU used by other processes meanwhile {R.get('p6_other_cpu', '?')}")
print("=" * W)

# --------------------------------------------------------------------------
# The same figures as a Markdown table (the latest-run table in the README and docs/benchmark.md).
def mark(ok):
    return "n/a" if ok is None else ("met" if ok else "**not met**")


print()
print("| Figure | pg_streams | Baseline (same run) | Target |")
print("|---|---|---|---|")
if part(1):
    pgo_l = rate(num("live_pgoutput_n"), num("live_pgoutput_s"))
    pgo_b = rate(num("backlog_pgoutput_n"), num("backlog_pgoutput_s"))
    w2j = rate(num("live_wal2json_n"), num("live_wal2json_s"))
    plug = rate(num("live_pgsplugin_n"), num("live_pgsplugin_s"))
    w2j_b = rate(num("backlog_wal2json_n"), num("backlog_wal2json_s"))
    print(f"| Capture into the stream, {fmt(num('rows'), '{:,.0f}')} rows in {txns} txns, written live | {fmt(cap_live)} records/s"
          f" | pgoutput {fmt(pgo_l)}/s ({fmt(ratio(cap_live, pgo_l), '{:.2f}')}×), wal2json {fmt(w2j)}/s,"
          f" pg_streams plugin alone {fmt(plug)}/s | ≥ 0.8× pgoutput — bounded by the writer"
          f" ({fmt(rate(num('live_count'), num('live_src_s')))} records/s committed); the last commit was in the stream"
          f" {fmt(num('live_tail_ms'), '{:.0f}')} ms after it |")
    print(f"| Capture of a backlog of {fmt(num('backlog_count'))} records, median (min–max) of {len(bruns)} runs"
          f" | {spread([b[0] for b in bruns])} records/s"
          f" | pgoutput {spread([b[1] for b in bruns])}/s ({spread([b[2] for b in bruns], '{:.2f}')}×),"
          f" wal2json {fmt(w2j_b)}/s (run {R.get('backlog_median_run', '?')})"
          f" | ≥ 0.8× pgoutput — {mark(None if backlog_ratio is None else backlog_ratio >= 0.8)} |")
if part(2):
    print(f"| Commit → readable in `streams.record` at {fmt(num('lat_rate'))} commits/s"
          f" | p50 {fmt(num('latA_p50'), '{:.2f}')} ms, p99 {fmt(num('latA_p99'), '{:.2f}')} ms (WAL commit times);"
          f" p50 {fmt(num('latB_p50'), '{:.2f}')} ms, p99 {fmt(num('latB_p99'), '{:.2f}')} ms (poller) | — |"
          f" p99 < 50 ms — {mark(None if num('latA_p99') is None else num('latA_p99') < 50)} |")
if part(3):
    others = [f"{fmt(base)} tps without the extension ({fmt(-ov_on if ov_on is not None else None, '{:+.1f} %')})"]
    if full:
        others.append(f"{fmt(full)} tps without it but with `REPLICA IDENTITY FULL`")
    if idle:
        others.append(f"{fmt(idle)} tps installed without streams")
    print(f"| pgbench TPC-B, scale {R.get('pgb_scale')}, 4 clients, {R.get('pgb_seconds')} s, streams on all 4 tables"
          f" ({R.get('pgb_view', 'NEW_AND_OLD_IMAGES')}) | {fmt(on)} tps | {', '.join(others)}"
          f" | ≤ 5 % — {mark(None if ov_on is None else ov_on <= 5)} |")
if part(4):
    def esm_cell(tag):
        r, x, _ = esm.get(tag, (None, None, None))
        return f"{fmt(r)}/s ({fmt(x, '{:.2f}')}× capture)"
    ra, rl = esm["esm_noop_backlog"][0], esm["esm_noop_live"][0]
    print(f"| Event source mapping → no-op SQL handler, BatchSize 1000, {fmt(esm_rows)} rows"
          f" | backlog {esm_cell('esm_noop_backlog')}, live {esm_cell('esm_noop_live')}"
          f" | capture only: backlog {fmt(cap_backlog)}/s, live {fmt(cap_live)}/s"
          f" | ≥ 100k records/s — {mark(None if ra is None or rl is None else min(ra, rl) >= 100000)} |")
    print(f"| Event source mapping → handler copying each record into a table, BatchSize 1000"
          f" | backlog {esm_cell('esm_copy_backlog')}, live {esm_cell('esm_copy_live')} | same | — |")
    print(f"| Commit → SQL handler at {fmt(num('esm_lat_rate'))} commits/s, BatchSize 1"
          f" | p50 {fmt(num('esmlatA_p50'), '{:.2f}')} ms, p99 {fmt(num('esmlatA_p99'), '{:.2f}')} ms (from source commit);"
          f" p50 {fmt(num('esmlatB_p50'), '{:.2f}')} ms, p99 {fmt(num('esmlatB_p99'), '{:.2f}')} ms (from `created`) | — |"
          f" p99 < 100 ms — {mark(None if num('esmlatA_p99') is None else num('esmlatA_p99') < 100)} |")
if part(5):
    r1000, r1 = http.get("http_1000"), http.get("http_1")
    print(f"| Event source mapping → HTTP function (loopback sink), BatchSize 1000, {fmt(esm_rows)} rows"
          f" | {fmt(r1000)} records/s | no-op SQL function {fmt(http.get('http_sql1000'))}/s;"
          f" sink with a plain client {fmt(http.get('http_base1000'))}/s"
          f" | ≥ 50k records/s — {mark(None if r1000 is None else r1000 >= 50000)} |")
    print(f"| Event source mapping → HTTP function, BatchSize 1, {fmt(num('http_b1_rows'))} rows"
          f" | {fmt(r1)} records/s | no-op SQL function {fmt(http.get('http_sql1'))}/s;"
          f" sink with a plain client {fmt(http.get('http_base1'))}/s | — |")
    print(f"| Commit → HTTP sink at {fmt(num('esm_lat_rate'))} commits/s, BatchSize 1"
          f" | p50 {fmt(num('httplatA_p50'), '{:.2f}')} ms, p99 {fmt(num('httplatA_p99'), '{:.2f}')} ms (from source commit);"
          f" p50 {fmt(num('httplatB_p50'), '{:.2f}')} ms, p99 {fmt(num('httplatB_p99'), '{:.2f}')} ms (from `created`) | — |"
          f" p99 < 100 ms — {mark(None if num('httplatA_p99') is None else num('httplatA_p99') < 100)} |")

if part(6) and f6:
    m1 = m100 = None
    for i in range(1, int(R.get("f_matcher_n", "0")) + 1):
        lab = R.get(f"f_matcher_{i}_label", "")
        if lab.startswith("status in") and R.get(f"f_matcher_{i}_matched", "").startswith("1.0"):
            m1 = num(f"f_matcher_{i}_rate")
        if lab.startswith("status in") and R.get(f"f_matcher_{i}_matched", "").startswith("100"):
            m100 = num(f"f_matcher_{i}_rate")
    reps = R.get("reps", "3")
    print(f"| Matcher alone, 3 conditions (`eventName`, `NewImage` S value, `numeric` on `ApproximateCreationDateTime`),"
          f" 1 % matching, one core | {fmt(m1)} records/s | 100 % matching (every record parsed) {fmt(m100)} records/s"
          f" | ≥ 1M records/s — {mark(None if m1 is None else m1 >= 1e6)} |")
    none_ratio = [ratio(a, b) for a, b in zip(f6["none"], f6["cap"])]
    med_none = median(f6["none"])
    print(f"| Backlog of {fmt(num('f_rows'))} records to a no-op SQL function, no filter (BatchSize 1000),"
          f" median (min–max) of {reps} | {spread(f6['none'])} records/s, {spread(none_ratio, '{:.2f}')}× capture"
          f" | capture backlog {spread(f6['cap'])} records/s"
          f" | ≥ 100k records/s — {mark(None if med_none is None else med_none >= 100000)} |")
    med_ratio = median(f6["ratio"])
    print(f"| Backlog of {fmt(num('f_rows'))} records drained through a filter matching 1 % (no-op SQL function,"
          f" BatchSize 1000), median (min–max) of {reps} | {spread(f6['one'])} records/s,"
          f" {spread(f6['ratio'], '{:.2f}')}× capture | capture backlog {spread(f6['cap'])} records/s"
          f" | ≥ 0.6× capture — {mark(None if med_ratio is None else med_ratio >= 0.6)} |")
    med_cost = median(f6["cost"])
    print(f"| The same with a filter matching everything, median (min–max) of {reps} | {spread(f6['all'])} records/s"
          f" ({spread(f6['cost'], '{:+.1%}')} against no filter; dispatcher CPU {spread(f6['cpucost'], '{:+.1%}')})"
          f" | no filter {spread(f6['none'])} records/s | ≤ 10 % cost — {mark(None if med_cost is None else med_cost >= -0.10)} |")
