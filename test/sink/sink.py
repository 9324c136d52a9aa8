#!/usr/bin/env python3
"""A loopback HTTP sink for pg_streams' tests and demo.

    python3 test/sink/sink.py --port 8765 [--log requests.jsonl]

Every POST is recorded (path, query, headers, body, time, client port, and how many
requests of its path were being answered when it arrived, itself included) and answered as
its query string asks, so each test chooses its faults through the URL it gives
the HTTP function:

    status=500        answer with this status (default 200)
    times=2           apply status/delay/reset/body/fail_id to the first 2 requests of
                      this path only, then answer 200 with an empty body
    delay=1.5         wait this many seconds before answering
    reset=1           close the connection without an answer (a reset)
    body=<text>       the response body (default empty)
    retry_after=3     add a Retry-After header
    fail_id=6         answer {"batchItemFailures":[{"itemIdentifier":<seq>}]} naming
                      the records whose dynamodb.Keys.id.N is 6 (several: fail_id=6,7)
    bad_json=1        answer a body that is not JSON
    lambda_error=1    answer as the AWS Lambda Runtime Interface Emulator does for a function
                      error: 200, X-Amz-Function-Error: Unhandled, a body
                      {"errorMessage": "boom", "errorType": "Error"} (error_message= sets the message)
    error_id=37       answer 500 when the batch holds a record whose dynamodb.Keys.id.N is 37
    big=100000000     answer 200 with a body of this many bytes, framed as framing= says:
                      chunked (default), close (no length, ended by closing the connection)
                      or length (Content-Length); GET /_sent?path=/p tells how many body
                      bytes the last such answer got out before the client hung up

For the benchmark (many requests, big bodies) two modes keep figures instead of requests:

    quiet=1           do not record the request; count it in the path's figures (requests,
                      records = occurrences of '{"eventID":' in the body, bytes, time of the
                      first and last request) and keep only the first body
    note=1            with quiet=1: also note, per record, its dynamodb.SequenceNumber, its
                      NewImage.created.S and the time the request arrived

GET /_requests?path=/p returns the recorded requests (all when path is absent) as
a JSON array; GET /_stats?path=/p the figures of a quiet path as a JSON object;
GET /_notes?path=/p the notes as CSV lines "seq,created,received" (received in
epoch seconds); GET /_first?path=/p the first body of a quiet path; GET /_health
answers 200; POST /_reset forgets everything.
"""
import argparse
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
REQUESTS = []
COUNTS = {}
ACTIVE = {}  # path -> requests being answered now
STATS = {}   # quiet paths: path -> {"requests", "records", "bytes", "first", "last"}
NOTES = {}   # path -> ["seq,created,received", ...]
SENT = {}    # big= paths: path -> body bytes written by the last answer
FIRST = {}   # quiet paths: path -> first body
LOG = None


def first(q, key, default=None):
    v = q.get(key)
    return v[0] if v else default


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _send(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/_health":
            return self._send(200, b"ok")
        if url.path == "/_requests":
            q = parse_qs(url.query)
            path = first(q, "path")
            with LOCK:
                out = [r for r in REQUESTS if path is None or r["path"] == path]
            return self._send(200, json.dumps(out).encode(), {"Content-Type": "application/json"})
        path = first(parse_qs(url.query), "path", "")
        if url.path == "/_stats":
            with LOCK:
                out = dict(STATS.get(path, {"requests": 0, "records": 0, "bytes": 0, "first": None, "last": None}))
            return self._send(200, json.dumps(out).encode(), {"Content-Type": "application/json"})
        if url.path == "/_notes":
            with LOCK:
                lines = list(NOTES.get(path, []))
            return self._send(200, "".join(line + "\n" for line in lines).encode(), {"Content-Type": "text/csv"})
        if url.path == "/_sent":
            with LOCK:
                out = {"sent": SENT.get(path)}
            return self._send(200, json.dumps(out).encode(), {"Content-Type": "application/json"})
        if url.path == "/_first":
            with LOCK:
                out = FIRST.get(path, b"")
            return self._send(200, out, {"Content-Type": "application/json"})
        return self._send(404)

    def _quiet(self, url, q, body):
        now = time.time()
        notes = []
        if first(q, "note") == "1":
            try:
                for r in json.loads(body).get("Records", []):
                    d = r.get("dynamodb", {})
                    created = d.get("NewImage", {}).get("created", {}).get("S", "")
                    notes.append(f"{d.get('SequenceNumber', '')},{created},{now:.6f}")
            except (ValueError, AttributeError, TypeError):
                pass
        with LOCK:
            st = STATS.setdefault(url.path, {"requests": 0, "records": 0, "bytes": 0, "first": now, "last": now})
            st["requests"] += 1
            st["records"] += body.count(b'{"eventID":')
            st["bytes"] += len(body)
            st["last"] = now
            FIRST.setdefault(url.path, body)
            if notes:
                NOTES.setdefault(url.path, []).extend(notes)
        return self._send(200)

    def _big(self, path, size, framing):
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        if framing == "chunked":
            head += "Transfer-Encoding: chunked\r\n"
        elif framing == "length":
            head += f"Content-Length: {size}\r\n"
        else:
            head += "Connection: close\r\n"
        self.close_connection = True
        sent = 0
        piece = b" " * 65536
        try:
            self.wfile.write((head + "\r\n").encode())
            while sent < size:
                n = min(len(piece), size - sent)
                data = piece[:n]
                if framing == "chunked":
                    data = f"{n:x}\r\n".encode() + data + b"\r\n"
                self.wfile.write(data)
                sent += n
                with LOCK:
                    SENT[path] = sent
            if framing == "chunked":
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
        with LOCK:
            SENT[path] = sent

    def do_POST(self):
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if url.path == "/_reset":
            with LOCK:
                REQUESTS.clear()
                COUNTS.clear()
                STATS.clear()
                NOTES.clear()
                FIRST.clear()
            return self._send(200)
        q = parse_qs(url.query)
        if first(q, "quiet") == "1":
            return self._quiet(url, q, body)
        with LOCK:
            n = COUNTS.get(url.path, 0) + 1
            COUNTS[url.path] = n
            ACTIVE[url.path] = ACTIVE.get(url.path, 0) + 1
            rec = {"path": url.path, "query": url.query, "n": n, "time": time.time(),
                   "peer": self.client_address[1],  # the client's port: one per connection
                   "active": ACTIVE[url.path],  # requests of this path being answered, this one included
                   "headers": {k.lower(): v for k, v in self.headers.items()},
                   "body": body.decode("utf-8", "replace")}
            REQUESTS.append(rec)
            if LOG:
                LOG.write(json.dumps(rec) + "\n")
                LOG.flush()
        try:
            return self._answer(url, q, body, n)
        finally:
            with LOCK:
                ACTIVE[url.path] -= 1

    def _answer(self, url, q, body, n):
        if first(q, "big"):
            return self._big(url.path, int(first(q, "big")), first(q, "framing", "chunked"))
        error_ids = first(q, "error_id")
        if error_ids:
            wanted = set(error_ids.split(","))
            try:
                keys = {r.get("dynamodb", {}).get("Keys", {}).get("id", {}).get("N")
                        for r in json.loads(body).get("Records", [])}
            except (ValueError, AttributeError, TypeError):
                keys = set()
            return self._send(500 if keys & wanted else 200)
        times = first(q, "times")
        faulty = times is None or n <= int(times)
        if not faulty:
            return self._send(200)
        delay = float(first(q, "delay", "0"))
        if delay:
            time.sleep(delay)
        if first(q, "reset") == "1":
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            except OSError:
                pass
            self.close_connection = True
            self.connection.close()
            return
        status = int(first(q, "status", "200"))
        headers = {}
        if first(q, "retry_after"):
            headers["Retry-After"] = first(q, "retry_after")
        out = first(q, "body", "").encode()
        if first(q, "bad_json") == "1":
            out = b"{not json"
        if first(q, "lambda_error") == "1":
            out = json.dumps({"errorMessage": first(q, "error_message", "boom"), "errorType": "Error",
                              "stackTrace": []}).encode()
            headers["X-Amz-Function-Error"] = "Unhandled"
            headers["Content-Type"] = "application/json"
        fail_ids = first(q, "fail_id")
        if fail_ids:
            wanted = set(fail_ids.split(","))
            try:
                event = json.loads(body)
                failures = [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in event.get("Records", [])
                            if r.get("dynamodb", {}).get("Keys", {}).get("id", {}).get("N") in wanted]
            except (ValueError, AttributeError, KeyError, TypeError):
                failures = []
            out = json.dumps({"batchItemFailures": failures}).encode()
            headers["Content-Type"] = "application/json"
        self._send(status, out, headers)


def main():
    global LOG
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log")
    a = p.parse_args()
    if a.log:
        LOG = open(a.log, "a", encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
