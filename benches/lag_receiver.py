#!/usr/bin/env python3
"""A sink for benches/audit_lag.sh: takes the daemon's ndjson batches (gzip or plain) on any
path, answers 200, and appends one line per event to OUT: arrival time (Unix seconds, float),
source, occurred_at (RFC 3339), id. Usage: lag_receiver.py PORT OUT"""
import gzip
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, OUT = int(sys.argv[1]), sys.argv[2]
out = open(OUT, "a", buffering=1)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        arrived = time.time()
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        for line in body.splitlines():
            if line.strip():
                e = json.loads(line)
                out.write(f"{arrived:.3f}\t{e.get('source')}\t{e.get('occurred_at')}\t{e.get('id')}\n")
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ready")

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
