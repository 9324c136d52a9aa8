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


def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "NOT met")


W = 100
print()
print("=" * W)
print(f"pg_streams benchmark   {R.get('pg_version', '')}   {R.get('cpus', '?')} CPUs")
print(f"build: {R.get('build', '?')}")
print(f"CPU used by other processes on the machine (not this cluster, not its clients; kernel threads count): part 1"
      f" {R.get('p1_other_cpu', '?')} CPU-s in {fmt(num('p1_wall'), '{:.0f}')} s, part 2 {R.get('p2_other_cpu', '?')} CPU-s"
      f" in {fmt(num('p2_wall'), '{:.0f}')} s, part 3 per run below")
print(f"load average (1/5/15 min) at start {R.get('load_start', '?')}, at end {R.get('load_end', '?')}"
      " - anything else running on the machine perturbs every figure")
if R.get("build_changed"):
    print(f"WARNING: {R['build_changed']}")
print(f"pg_streams processes per database: {R.get('pgs_procs', '?')}  ('pg_streams CPU' below is their sum)")
print("=" * W)

# --------------------------------------------------------------------------
rows, txns, per = R.get("rows"), R.get("txns"), R.get("per_txn")
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
     f"pg_streams CPU during the capture: {fmt(num('live_cpu_s'), '{:.2f}')} s"],
    "pg_streams capture -> streams.record (live)", "live_s")
backlog_ratio = block(
    "backlog", "b) backlog: the same workload written while the worker waits on a lock on streams.record",
    [f"{R.get('backlog_wal_mb', '?')} MB of WAL with nothing else in it; pg_streams waiting on the lock:"
     f" {'yes' if R.get('backlog_blocked', '0') not in ('0', '') else 'NO (check)'};",
     "baselines decode exactly that WAL; then the lock goes and the worker drains it:",
     "capture time = lock released -> worker confirms the last workload commit (5 ms poll);",
     f"pg_streams CPU during the drain: {fmt(num('backlog_cpu_s'), '{:.2f}')} s"],
    "pg_streams capture -> streams.record (drain)", "backlog_s")
print()
print(f"   target capture >= 0.8 x pgoutput:   live {fmt(live_ratio, '{:.2f}')} x ({verdict(None if live_ratio is None else live_ratio >= 0.8)}),"
      f"   backlog {fmt(backlog_ratio, '{:.2f}')} x ({verdict(None if backlog_ratio is None else backlog_ratio >= 0.8)})")

# --------------------------------------------------------------------------
print()
print(f"2. LATENCY commit -> readable in streams.record   pgbench --rate={R.get('lat_rate')} -c 4 -j 2"
      f" -T {R.get('lat_seconds')} -M prepared, one single-row INSERT per transaction")
print(f"   achieved {fmt(num('lat_tps'), '{:,.1f}')} tps (pgbench average latency {R.get('lat_pgb_lat', '?')} ms),"
      f" {fmt(num('lat_records'))} records; pg_streams CPU {fmt(num('lat_cpu_s'), '{:.2f}')} s"
      f" over {fmt(num('lat_wall_s'), '{:.1f}')} s;")
print("   source commits from 1 s after start to the end of the run; percentiles are nearest-rank, in ms")
print(f"   {'method':<64}{'records':>9}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}")
for key, label in (("latA", "A  worker's COMMIT record time - source COMMIT time  (WAL, 1 us)"),
                   ("latB", f"B  poller: first snapshot showing it - source COMMIT time")):
    print(f"   {label:<64}{fmt(num(key + '_count')):>9}" +
          "".join(f"{fmt(num(f'{key}_{p}'), '{:.2f}'):>8}" for p in ("p50", "p90", "p99", "max")))
print("      A: commit time of the transaction that appended the record, read from its COMMIT record with")
print("         pg_walinspect, minus the record's arrival (the source COMMIT record's time). Exact, but stops")
print("         short of the append's WAL flush (~0.3 ms here) after which the records are visible.")
print(f"      B: a server-side loop (plpgsql, fresh snapshot per query) polling streams.record every"
      f" {fmt(num('latB_interval_ms'), '{:.2f}')} ms on average;")
print("         the time stamped is taken before the snapshot in which the record first appears, so B")
print("         overstates by up to one poll interval. The poller itself uses some CPU.")
p99a = num("latA_p99")
print(f"   target p99 < 50 ms:   A {fmt(p99a, '{:.2f}')} ms ({verdict(None if p99a is None else p99a < 50)}),"
      f"   B {fmt(num('latB_p99'), '{:.2f}')} ms ({verdict(None if num('latB_p99') is None else num('latB_p99') < 50)})")

# --------------------------------------------------------------------------
print()
print(f"3. WRITE TPS   pgbench TPC-B (default script), scale {R.get('pgb_scale')}, -c 4 -j 2 -T {R.get('pgb_seconds')} -n,"
      " twice per configuration, in the order A B C C B A;")
print("   every run starts from a fresh pgbench -i (pgbench_history gets an id bigserial PRIMARY KEY),"
      " VACUUM ANALYZE, CHECKPOINT")


def mean(key):
    v = [num(f"{key}_{n}") for n in (1, 2)]
    v = [x for x in v if x is not None]
    return sum(v) / len(v) if v else None


print(f"   {'configuration':<50}{'tps run 1':>10}{'run 2':>9}{'mean':>9}{'lat ms':>8}{'WAL KB/tx':>10}"
      f"{'pg_streams CPU s':>17}{'overhead':>10}")


def wal_per_txn(tag):
    v = [num(f"pgb_{tag}_wal_mb_{n}") * 1024 / num(f"pgb_{tag}_txns_{n}")
         for n in (1, 2) if num(f"pgb_{tag}_wal_mb_{n}") and num(f"pgb_{tag}_txns_{n}")]
    return sum(v) / len(v) if v else None
base = mean("pgb_noext_tps")
for tag, label in (("noext", "A  extension not installed (baseline)"),
                   ("idle", "B  extension installed, no stream"),
                   ("on", "C  streams on the 4 tables, NEW_AND_OLD_IMAGES")):
    tps = mean(f"pgb_{tag}_tps")
    ov = None if tps is None or not base else (base - tps) / base * 100
    print(f"   {label:<50}{fmt(num(f'pgb_{tag}_tps_1'), '{:,.1f}'):>10}{fmt(num(f'pgb_{tag}_tps_2'), '{:,.1f}'):>9}"
          f"{fmt(tps, '{:,.1f}'):>9}{fmt(mean(f'pgb_{tag}_lat'), '{:.2f}'):>8}{fmt(wal_per_txn(tag), '{:,.1f}'):>10}"
          f"{fmt(mean(f'pgb_{tag}_cpu_s') if tag != 'noext' else None, '{:.2f}', '-'):>17}"
          f"{'' if tag == 'noext' else fmt(ov, '{:+.1f} %'):>10}")
for n in (1, 2):
    print(f"   C run {n}: {fmt(num(f'pgb_on_records_{n}'))} records (average {fmt(num(f'pgb_on_record_bytes_{n}'))} bytes)"
          f" for {fmt(num(f'pgb_on_txns_{n}'))} transactions;"
          f" capture backlog at the end of the run {R.get(f'pgb_on_lag_mb_{n}', '?')} MB of WAL,"
          f" in the stream {fmt(num(f'pgb_on_drain_s_{n}'), '{:.2f}', R.get(f'pgb_on_drain_s_{n}', 'n/a'))} s later")
print("   per run: CPU used by other processes on the machine (not this cluster, not pgbench), WAL fsyncs")
print("   (pg_stat_wal.wal_sync), and what the pgbench backends were doing (pg_stat_activity every 50 ms):")
for tag, short in (("noext", "A"), ("idle", "B"), ("on", "C")):
    for n in (1, 2):
        print(f"   {short} run {n}: other load {R.get(f'pgb_{tag}_other_{n}', '?')} CPU-s; {fmt(num(f'pgb_{tag}_walsync_{n}'))} fsyncs;"
              f" {R.get(f'pgb_{tag}_waits_{n}', '?')}")
print("   before each B and C run the capture worker was let finish decoding pgbench -i (a 1-transaction COPY"
      " it must spill to disk):")
print("   " + ", ".join(f"{t} run {n} {fmt(num(f'pgb_{t}_catchup_s_{n}'), '{:.1f}', R.get(f'pgb_{t}_catchup_s_{n}', '?'))} s" for t in ("idle", "on") for n in (1, 2))
      + " after VACUUM + CHECKPOINT")
on, idle = mean("pgb_on_tps"), mean("pgb_idle_tps")
ov_on = None if on is None or not base else (base - on) / base * 100
print(f"   target write overhead <= 5 %:   C {fmt(ov_on, '{:+.1f} %')} vs A"
      f" ({verdict(None if ov_on is None else ov_on <= 5)})"
      + (f";  C {fmt((idle - on) / idle * 100, '{:+.1f} %')} vs B" if on and idle else ""))
print("   overhead = (baseline tps - tps) / baseline tps, on the means; WAL KB/tx = WAL written during the run per")
print("   pgbench transaction, including what the capture appends;")
print("   'pg_streams CPU s' is the CPU the capture processes used during the run, out of"
      f" {R.get('cpus', '?')} x {R.get('pgb_seconds')} s")
print("=" * W)
