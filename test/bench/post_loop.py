#!/usr/bin/env python3
"""Baseline of part 5 of bench.sh: how fast the loopback sink takes bodies from a
plain client. POSTs the body in BODY_FILE N times, one request after the other
over one keep-alive connection (as a dispatcher sends a mapping's batches), and
prints "seconds=<wall time>" and "failed=<non-2xx answers>".

usage: post_loop.py URL BODY_FILE N
"""
import http.client
import sys
import time
from urllib.parse import urlsplit


def main():
    url, body_file, n = urlsplit(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    with open(body_file, "rb") as f:
        body = f.read()
    target = url.path + ("?" + url.query if url.query else "")
    headers = {"Content-Type": "application/json"}
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    failed = 0
    t0 = time.time()
    for _ in range(n):
        conn.request("POST", target, body, headers)
        resp = conn.getresponse()
        resp.read()
        if not 200 <= resp.status < 300:
            failed += 1
    print(f"seconds={time.time() - t0:.6f}")
    print(f"failed={failed}")
    conn.close()


if __name__ == "__main__":
    main()
