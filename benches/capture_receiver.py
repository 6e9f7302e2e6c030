#!/usr/bin/env python3
"""A receiver that keeps what it is sent: every POST body (gunzipped when sent with
`Content-Encoding: gzip`) is appended to a file and answered 200. With the pipeline bench
pointed at it, the file holds the events exactly as the daemon shipped them, one per line,
for `BENCH_EVENTS_FILE` of the guardrails bench:

    python3 benches/capture_receiver.py 9977 /tmp/events.ndjson &
    BENCH_RUNS=1 BENCH_EVENTS=112000 \\
      BENCH_DAEMON_ENV="OAI_INGEST__SINK__URL=http://127.0.0.1:9977/" \\
      target/release/deps/pipeline-<hash>          # its own counts read 0: the fake saw nothing
    BENCH_EVENTS_FILE=/tmp/events.ndjson cargo bench --bench guardrails

Standard library only.
"""
import gzip
import http.server
import sys


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    out = open(path, "ab")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            out.write(body if body.endswith(b"\n") else body + b"\n")
            out.flush()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
