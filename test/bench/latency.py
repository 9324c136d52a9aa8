#!/usr/bin/env python3
"""Percentiles of commit -> readable latency.

Reads CSV lines "source_commit_epoch,readable_epoch[,poll_no]" (seconds since
the epoch, microsecond resolution) on stdin; a line with an empty first field
carries the poller's total poll count in its third field. Keeps the records
whose source commit lies in [from_epoch, to_epoch]. Prints key=value lines
prefixed with the given prefix: count, p50, p90, p99, max (milliseconds,
nearest-rank percentiles), and for poller input the mean poll interval.

usage: latency.py PREFIX FROM_EPOCH TO_EPOCH < data.csv
"""
import math
import sys


def main():
    prefix, lo, hi = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    lat = []
    polls = None
    first_seen = last_seen = None
    for line in sys.stdin:
        f = line.strip().split(",")
        if len(f) < 2:
            continue
        if f[0] == "":
            polls = int(f[2]) if len(f) > 2 and f[2] else None
            last_seen = float(f[1])
            continue
        src, seen = float(f[0]), float(f[1])
        first_seen = seen if first_seen is None else min(first_seen, seen)
        if lo <= src <= hi:
            lat.append((seen - src) * 1000.0)
    lat.sort()
    out = {"count": len(lat)}

    def pct(p):
        # nearest rank
        return lat[max(0, math.ceil(p / 100.0 * len(lat)) - 1)]

    if lat:
        out.update(p50=pct(50), p90=pct(90), p99=pct(99), max=lat[-1], min=lat[0],
                   mean=sum(lat) / len(lat))
    if polls and first_seen is not None and last_seen is not None:
        out["polls"] = polls
    for k, v in out.items():
        print(f"{prefix}_{k}={v:.3f}" if isinstance(v, float) else f"{prefix}_{k}={v}")


if __name__ == "__main__":
    main()
