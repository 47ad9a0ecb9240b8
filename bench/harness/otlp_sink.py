"""The OTLP/HTTP receiver of the telemetry case (run as `python3 bench/run.py --otlp-sink PORT`),
standing in for an OpenTelemetry Collector: `POST /v1/traces` (and /v1/metrics, /v1/logs) answered
200 with an empty body, which is a valid empty Export*ServiceResponse in protobuf (`{}` for JSON);
what arrived is counted: exports, bytes, content types, and from the protobuf itself the spans per
service.name, their distinct trace ids, root spans, names, and the traces that have spans of more
than one service. `GET /stats` answers the counts as JSON; `POST /stats/reset` answers them and
starts again from zero. The first export holding spans is kept as `otlp-first-traces.bin` in the
working directory (`protoc --decode_raw < otlp-first-traces.bin` reads it).

Standard library only: the protobuf is walked by hand, just deep enough (ExportTraceServiceRequest
-> ResourceSpans -> Resource's service.name, ScopeSpans -> Span's fields 1-5: trace id, parent span
id and name, which encoders write first, in field order). Past DETAIL_SPANS spans since the last
reset, spans are only counted, so a run with every request sampled costs the shared cores little."""

import json
import signal
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DETAIL_SPANS = 50_000
MAX_NAMES = 64  # distinct span names kept per service; the rest count as "(other)"
FIRST_BODY = "otlp-first-traces.bin"


# -- the protobuf wire format, as far as the counts need it


def varint(b, i):
    x = b[i]
    if x < 0x80:
        return x, i + 1
    r, s = x & 0x7F, 7
    i += 1
    while True:
        x = b[i]
        i += 1
        r |= (x & 0x7F) << s
        if x < 0x80:
            return r, i
        s += 7


def skip(b, i, wire):
    if wire == 0:
        return varint(b, i)[1]
    if wire == 2:
        n, i = varint(b, i)
        return i + n
    if wire == 1:
        return i + 8
    if wire == 5:
        return i + 4
    raise ValueError(f"wire type {wire}")


def messages(b, i, end, field):
    """(start, end) of each length-delimited `field` in b[i:end]; other fields are skipped."""
    tag = field << 3 | 2
    while i < end:
        key, i = varint(b, i)
        if key == tag:
            n, i = varint(b, i)
            if i + n > end:
                raise ValueError("truncated")
            yield i, i + n
            i += n
        else:
            i = skip(b, i, key & 7)
    if i != end:
        raise ValueError("truncated")


def service_name(b, i, end):
    """Resource (b[i:end]) -> the string value of its service.name attribute."""
    for ks, ke in messages(b, i, end, 1):  # KeyValue
        key, value = None, None
        j = ks
        while j < ke:
            k, j = varint(b, j)
            if k in (0x0A, 0x12):
                n, j = varint(b, j)
                if k == 0x0A:
                    key = b[j:j + n]
                else:
                    value = (j, j + n)
                j += n
            else:
                j = skip(b, j, k & 7)
        if key == b"service.name" and value:
            for s, e in messages(b, value[0], value[1], 1):  # AnyValue.string_value
                return b[s:e].decode(errors="replace")
    return "(unnamed)"


def span_head(b, i, end):
    """Span (b[i:end]) -> (trace id, has a parent, name) from its fields 1-5."""
    trace, parent, name = b"", False, b""
    while i < end:
        k, i = varint(b, i)
        if k >> 3 > 5:
            break
        if k & 7 == 2:
            n, i = varint(b, i)
            f = k >> 3
            if f == 1:
                trace = b[i:i + n]
            elif f == 4:
                parent = n > 0
            elif f == 5:
                name = b[i:i + n]
            i += n
        else:
            i = skip(b, i, k & 7)
    return trace, parent, name.decode(errors="replace")


def parse_traces(b, detail):
    """ExportTraceServiceRequest -> [(service, spans, [(trace id, has parent, name)] for the
    first `detail` spans)]."""
    out = []
    for rs, re_ in messages(b, 0, len(b), 1):  # ResourceSpans
        service, count, heads = "(unnamed)", 0, []
        for f_s, f_e in messages(b, rs, re_, 1):  # its Resource (at most one)
            service = service_name(b, f_s, f_e)
        for ss, se in messages(b, rs, re_, 2):  # ScopeSpans
            for s, e in messages(b, ss, se, 2):  # Span
                count += 1
                if detail > 0:
                    detail -= 1
                    heads.append(span_head(b, s, e))
        out.append((service, count, heads))
    return out


# -- the counts


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.first_saved = False
        self._zero()

    def _zero(self):
        self.since = time.time()
        self.exports, self.content_types, self.encodings = {}, {}, {}
        self.bytes = self.decoded_bytes = self.malformed = self.spans = self.detail_spans = 0
        self.services = {}
        self.traces = {}  # trace id -> set of services (spans read in detail only)
        self.first_export = self.last_export = None

    def add(self, path, ctype, encoding, body):
        now = time.time()
        spans, parsed, bad, raw = 0, [], 0, body
        if path == "/v1/traces" and ctype.startswith("application/x-protobuf"):
            try:
                if encoding == "gzip":
                    body = zlib.decompress(body, 47)
                with self.lock:
                    detail = DETAIL_SPANS - self.detail_spans
                parsed = parse_traces(body, detail)
            except (ValueError, IndexError, zlib.error):
                bad, parsed = 1, []
        with self.lock:
            self.exports[path] = self.exports.get(path, 0) + 1
            self.content_types[ctype] = self.content_types.get(ctype, 0) + 1
            self.encodings[encoding or "identity"] = self.encodings.get(encoding or "identity", 0) + 1
            self.bytes += len(raw)
            self.decoded_bytes += len(body)
            self.malformed += bad
            self.first_export = self.first_export or now
            self.last_export = now
            for service, count, heads in parsed:
                spans += count
                sv = self.services.setdefault(service, {"spans": 0, "roots": 0, "traces": set(), "names": {}})
                sv["spans"] += count
                self.detail_spans += len(heads)
                for trace, parent, name in heads:
                    sv["traces"].add(trace)
                    self.traces.setdefault(trace, set()).add(service)
                    sv["roots"] += not parent
                    if name not in sv["names"] and len(sv["names"]) >= MAX_NAMES:
                        name = "(other)"
                    sv["names"][name] = sv["names"].get(name, 0) + 1
            self.spans += spans
            save_first = spans > 0 and not self.first_saved
            self.first_saved = self.first_saved or save_first
        if save_first:
            try:
                with open(FIRST_BODY, "wb") as f:
                    f.write(raw)
            except OSError:
                pass

    def snapshot(self, reset=False):
        with self.lock:
            rel = (lambda t: round(t - self.since, 3) if t else None)
            data = {
                "seconds": round(time.time() - self.since, 3),
                "exports": dict(self.exports), "bytes": self.bytes, "decoded_bytes": self.decoded_bytes,
                "content_types": dict(self.content_types), "encodings": dict(self.encodings),
                "malformed": self.malformed, "spans": self.spans, "detail_spans": self.detail_spans,
                "detail_limit": DETAIL_SPANS,
                "first_export_s": rel(self.first_export), "last_export_s": rel(self.last_export),
                "services": {s: {"spans": v["spans"], "roots": v["roots"], "traces": len(v["traces"]),
                                 "names": dict(sorted(v["names"].items(), key=lambda kv: -kv[1]))}
                             for s, v in self.services.items()},
                "traces": len(self.traces),
                "traces_multi_service": sum(1 for s in self.traces.values() if len(s) > 1),
            }
            if reset:
                self._zero()
        return data


class OtlpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                n = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(n))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, status, body=b"", ctype="application/x-protobuf"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        body = self._body()
        counts = self.server.counts
        if path == "/stats/reset":
            self._answer(200, json.dumps(counts.snapshot(reset=True)).encode(), "application/json")
        elif path in ("/v1/traces", "/v1/metrics", "/v1/logs"):
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            counts.add(path, ctype, (self.headers.get("Content-Encoding") or "").strip().lower(), body)
            if ctype == "application/json":
                self._answer(200, b"{}", "application/json")
            else:
                self._answer(200)
        else:
            self._answer(404, ctype="text/plain")

    def do_GET(self):
        if self.path.split("?", 1)[0] == "/stats":
            self._answer(200, json.dumps(self.server.counts.snapshot()).encode(), "application/json")
        else:
            self._answer(404, ctype="text/plain")


def run_otlp_sink(port):
    srv = ThreadingHTTPServer(("127.0.0.1", port), OtlpHandler)
    srv.daemon_threads = True
    srv.counts = Counts()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv.serve_forever()
