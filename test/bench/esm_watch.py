#!/usr/bin/env python3
"""Times of one event source mapping measurement (part 4 of bench.sh).

Reads the samples of bench_esm_watch on stdin: CSV lines
"t,confirmed,delivered,invocations,function_errors,state" (t in epoch seconds,
confirmed = the capture slot's confirmed_flush_lsn as a number). Prints
key=value lines prefixed with PREFIX, times in seconds after T0:

  started_s   first sample with state Enabled (the dispatcher took the mapping up)
  first_s     first sample with records delivered
  done_s      first sample with delivered >= TARGET ("timeout" if never)
  capture_s   first sample with confirmed >= CAPTURE_END_LSN (given as a number; optional)
  delivered, invocations, function_errors: the last sample's counters

usage: esm_watch.py PREFIX T0 TARGET [CAPTURE_END_LSN] < samples.csv
"""
import sys


def main():
    prefix, t0, target = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    lsn = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] else None
    out = {}
    last = None
    for line in sys.stdin:
        f = line.strip().split(",")
        if len(f) < 6 or not f[0]:
            continue
        t = float(f[0])
        conf = int(float(f[1])) if f[1] else None
        delivered = int(f[2]) if f[2] else 0
        state = f[5]
        if "started_s" not in out and state == "Enabled":
            out["started_s"] = t - t0
        if "first_s" not in out and delivered > 0:
            out["first_s"] = t - t0
        if "done_s" not in out and delivered >= target:
            out["done_s"] = t - t0
        if lsn is not None and "capture_s" not in out and conf is not None and conf >= lsn:
            out["capture_s"] = t - t0
        last = f
    out.setdefault("done_s", "timeout")
    if last is not None:
        out["delivered"] = int(last[2] or 0)
        out["invocations"] = int(last[3] or 0)
        out["function_errors"] = int(last[4] or 0)
        out["state"] = last[5]
    for k, v in out.items():
        print(f"{prefix}_{k}={v:.6f}" if isinstance(v, float) else f"{prefix}_{k}={v}")


if __name__ == "__main__":
    main()
