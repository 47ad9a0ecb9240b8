"""The upstream of the 100 MiB case: a small HTTP server (run as `python3 bench/run.py --sink
PORT`) that discards request bodies, answering with the byte count, and streams
GET /download/<n> bytes back."""

import json
import re
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SinkHandler(BaseHTTPRequestHandler):
    """Discards request bodies; GET /download/<n> streams n bytes back."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _discard(self):
        n = int(self.headers.get("Content-Length") or 0)
        got = 0
        while got < n:
            chunk = self.rfile.read(min(1 << 20, n - got))
            if not chunk:
                break
            got += len(chunk)
        body = json.dumps({"bytes": got}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_PUT = _discard
    do_POST = _discard

    def do_GET(self):
        m = re.fullmatch(r"/download/(\d+)", self.path.split("?")[0])
        if not m:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        n = int(m.group(1))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        chunk = b"d" * (1 << 20)
        sent = 0
        while sent < n:
            part = chunk[: min(len(chunk), n - sent)]
            self.wfile.write(part)
            sent += len(part)


def run_sink(port):
    srv = ThreadingHTTPServer(("127.0.0.1", port), SinkHandler)
    srv.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv.serve_forever()
