#!/usr/bin/env python3
"""Benchmark harness for backend-api and frontend-gateway (issue 6). Python 3 standard library only.

Builds and installs nothing. Expects:
  * release binaries (`cargo build --release -p backend-api -p frontend-gateway`) in
    target/release (or BIN_DIR);
  * wrk, nginx (case d), psql, a PostgreSQL server at DATABASE_URL (default
    postgres://postgres@127.0.0.1:5432/postgres) on which it may create a database;
  * valgrind (callgrind) for the instruction counts (skipped with a note otherwise; `perf stat`
    is used instead when valgrind is missing and the CPU exposes an instruction counter).

What it does (every server bound to 127.0.0.1, every process it starts stopped at the end, also
on Ctrl-C or an error; only the database BENCH_DB (default `bench`) is dropped and re-created):
  1. creates BENCH_DB, starts backend-api once (it applies the migrations), seeds it with
     bench/seed.sql (the anchor's data shape: 1000 users x 10 workspaces), then measures cold
     starts (process start -> first 200 from /readyz, migrations already applied);
  2. starts frontend-gateway (cold starts measured the same way), registers a helper user
     through POST /api/auth/register to get a real argon2id hash, gives every seeded user that
     hash (the password is known), signs user1 in for the session cookie, mints a long-lived
     bearer token for user1 (HS256, the auth-contract shape), and starts nginx (case d);
  3. runs wrk (THREADS threads, CONNECTIONS connections, WARMUP s warm-up, then DURATION s
     measured with --latency) for the cases
        a  backend direct, bearer token                 -> 200
        b  full stack through the gateway, session cookie -> 200
        c  full stack, no cookie                        -> 401
        d  nginx -> backend, nginx adds a fixed bearer   -> 200
        storm  case b while STORM_CONCURRENCY (16) loops sign in continuously
     recording req/s, p50/p99, non-2xx, socket errors, per-process peak RSS (VmHWM after
     `echo 5 > /proc/PID/clear_refs`) and CPU seconds (utime+stime deltas);
  4. extra checks: 100 MiB up and down through the gateway to a small upstream (an extra
     GATEWAY_REWRITES rule) with the gateway's peak-RSS growth; session revocation seen by a
     second gateway instance; instructions per proxied request (callgrind);
  5. writes BENCHMARKS.md (repository root) and bench/results/latest.json, comparing with the
     anchor's figures from ../shared/anchors/seed-stack/results/summary.md (an earlier run on a
     machine like this one) or, with --anchor, with the anchor run just before ours.

Usage:
  python3 bench/run.py                      # everything (about 4 minutes)
  DURATION=3 WARMUP=1 python3 bench/run.py  # smoke run (figures are not measurements)
  python3 bench/run.py --only backend,nginx # a subset: a b c d storm bigbody revoke instr
                                            # (aliases: backend=a, gateway=b,c, nginx=d)
  python3 bench/run.py --anchor             # run the anchor's ./run.sh first (needs its setup.sh)

Knobs (environment): DURATION (20), WARMUP (5), RUNS (1), THREADS (2), CONNECTIONS (64),
WRK_TIMEOUT (10s), DATABASE_URL, BENCH_DB (bench), BIN_DIR (target/release), BACKEND_PORT (18080),
GATEWAY_PORT (13000), NGINX_PORT (18090), SINK_PORT (18099), NGINX_UPSTREAM_KEEPALIVE (64),
STORM_CONCURRENCY (16), BIG_BODY_MIB (100), INSTR_REQUESTS (2000), COLD_STARTS (3),
ANCHOR_DIR (../shared/anchors/seed-stack), BENCH_OUT (BENCHMARKS.md), BENCH_JSON
(bench/results/latest.json). DATABASE_MAX_CONNECTIONS, SESSION_CACHE_MS and PASSWORD_HASH_CONCURRENCY
are passed through to the services when set.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import platform
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
ALL_CASES = ["a", "b", "c", "d", "storm", "bigbody", "revoke", "instr"]
ALIASES = {"backend": ["a"], "gateway": ["b", "c"], "nginx": ["d"], "all": ALL_CASES}
GATEWAY_CASES = {"b", "c", "storm", "bigbody", "revoke"}
GROUPS = ["gateway", "backend", "proxy"]
CASE_GROUPS = {"a": ["backend"], "b": ["gateway", "backend"], "c": ["gateway", "backend"],
               "d": ["proxy", "backend"], "storm": ["gateway", "backend"]}
CASE_TITLES = {
    "a": "backend direct (bearer)",
    "b": "full stack (session cookie)",
    "c": "full stack, no cookie",
    "d": "nginx -> backend (fixed bearer)",
    "storm": "full stack (session cookie) during a sign-in storm",
}
# Benchmark-only placeholders; nothing here protects real data.
API_SECRET = "bench-api-secret-not-for-production-0123456789abcdef"
PASSWORD = "bench-password-0123"
HELPER_EMAIL = "bench-hash-helper@example.com"
SINK_RULE_PREFIX = "/api/bench-sink"
# Service settings passed through from the harness's environment when set (A/B runs).
PASSTHROUGH = ["HTTP_WORKERS", "DATABASE_MAX_CONNECTIONS", "SESSION_CACHE_MS", "PASSWORD_HASH_CONCURRENCY"]
# Every process of a case shares the same 2 cores with wrk and PostgreSQL: one actix worker per
# service (like the anchor's one event loop per Node process) keeps the runnable threads below
# the core count's multiple that makes tails long. Overridable (HTTP_WORKERS=2 ...) for A/B runs.
SERVICE_DEFAULTS = {"HTTP_WORKERS": "1"}


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def env_secs(name, default):
    v = os.environ.get(name, str(default)).strip()
    m = re.fullmatch(r"([0-9]+)\s*s?", v)
    if not m:
        sys.exit(f"{name} must be a number of seconds (e.g. 20 or 20s), got {v!r}")
    return int(m.group(1))


def env_int(name, default):
    try:
        return int(os.environ.get(name, str(default)))
    except ValueError:
        sys.exit(f"{name} must be an integer")


class Config:
    def __init__(self):
        self.duration = env_secs("DURATION", 20)
        self.warmup = env_secs("WARMUP", 5)
        self.runs = env_int("RUNS", 1)
        self.threads = env_int("THREADS", 2)
        self.connections = env_int("CONNECTIONS", 64)
        self.wrk_timeout = os.environ.get("WRK_TIMEOUT", "10s")
        self.database_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
        self.bench_db = os.environ.get("BENCH_DB", "bench")
        self.bin_dir = Path(os.environ.get("BIN_DIR", ROOT / "target" / "release"))
        self.ports = {
            "backend": env_int("BACKEND_PORT", 18080),
            "gateway": env_int("GATEWAY_PORT", 13000),
            "nginx": env_int("NGINX_PORT", 18090),
            "sink": env_int("SINK_PORT", 18099),
        }
        self.nginx_keepalive = env_int("NGINX_UPSTREAM_KEEPALIVE", 64)
        self.storm = env_int("STORM_CONCURRENCY", 16)
        self.big_mib = env_int("BIG_BODY_MIB", 100)
        self.instr_requests = env_int("INSTR_REQUESTS", 2000)
        self.cold_starts = max(1, env_int("COLD_STARTS", 3))
        self.anchor_dir = Path(os.environ.get("ANCHOR_DIR", ROOT.parent / "shared" / "anchors" / "seed-stack"))
        self.out_md = Path(os.environ.get("BENCH_OUT", ROOT / "BENCHMARKS.md"))
        self.out_json = Path(os.environ.get("BENCH_JSON", BENCH / "results" / "latest.json"))
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", self.bench_db):
            sys.exit("BENCH_DB must be a plain lower-case identifier")
        u = urllib.parse.urlsplit(self.database_url)
        admin_db = u.path.lstrip("/") or "postgres"
        if admin_db == self.bench_db:
            sys.exit(f"BENCH_DB ({self.bench_db}) must differ from DATABASE_URL's database: it is dropped and re-created")
        self.bench_url = urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + self.bench_db, u.query, u.fragment))
        self.db_host = u.hostname or "127.0.0.1"

    @property
    def smoke(self):
        return self.duration < 20 or self.warmup < 5


# ----------------------------------------------------------------------------- processes


class Processes:
    """Every process the harness starts, stopped in reverse order by PID."""

    def __init__(self):
        self.items = []

    def start(self, name, argv, env, log_path, cwd):
        logf = open(log_path, "ab")
        t0 = time.monotonic()
        p = subprocess.Popen(argv, env=env, cwd=cwd, stdout=logf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        p.bench_name = name
        p.bench_log = log_path
        p.bench_t0 = t0
        self.items.append(p)
        return p

    def stop(self, p, timeout=10.0):
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{p.bench_name} (pid {p.pid}) still alive after SIGTERM, sending SIGKILL")
                p.kill()
                p.wait(5)
        if p in self.items:
            self.items.remove(p)

    def stop_all(self):
        for p in reversed(list(self.items)):
            if p.poll() is None:
                log(f"stopping {p.bench_name} (pid {p.pid})")
            self.stop(p)


def log_tail(path, n=25):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port(preferred):
    if port_free(preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log(f"port {preferred} is in use; using {port}")
    return port


# ----------------------------------------------------------------------------- /proc


def descendants(pid):
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return sorted(out)


def status_kb(pid, field):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pid):
    try:
        rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


CLK_TCK = os.sysconf("SC_CLK_TCK")


def clear_refs(pids):
    for p in pids:
        try:
            Path(f"/proc/{p}/clear_refs").write_text("5")
        except OSError:
            pass


def postgres_pids(local):
    if not local:
        return []
    try:
        uid = pwd.getpwnam("postgres").pw_uid
    except KeyError:
        return []
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.stat(f"/proc/{d}").st_uid == uid:
                    out.append(int(d))
            except OSError:
                pass
    return out


class Snapshot:
    """Peak RSS and CPU of process groups over one measured window."""

    def __init__(self, groups, pg_pids):
        self.groups = {g: descendants(pid) for g, pid in groups.items() if pid}
        self.pg = pg_pids
        for pids in self.groups.values():
            clear_refs(pids)
        self.cpu0 = {g: {p: cpu_ticks(p) for p in pids} for g, pids in self.groups.items()}
        self.pg0 = {p: cpu_ticks(p) for p in self.pg}

    def finish(self):
        out = {}
        for g, pids in self.groups.items():
            ticks = sum(cpu_ticks(p) - self.cpu0[g].get(p, 0) for p in pids)
            out[g] = {
                "pids": pids,
                "peak_rss_kb": sum(status_kb(p, "VmHWM") for p in pids),
                "rss_after_kb": sum(status_kb(p, "VmRSS") for p in pids),
                "cpu_s": round(ticks / CLK_TCK, 2),
            }
        pg_ticks = sum(max(0, cpu_ticks(p) - t) for p, t in self.pg0.items())
        return out, round(pg_ticks / CLK_TCK, 2)


# ----------------------------------------------------------------------------- HTTP


def request(port, method, path, headers=None, body=None, timeout=10.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        data = res.read()
        return res.status, res.getheaders(), data
    finally:
        conn.close()


def header(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def cookie_from(headers, name):
    for k, v in headers:
        if k.lower() == "set-cookie":
            first = v.split(";", 1)[0]
            cname, _, value = first.partition("=")
            if cname.strip() == name and value:
                return value.strip()
    return None


def probe(port, path, timeout=0.5):
    try:
        status, _, _ = request(port, "GET", path, timeout=timeout)
        return status
    except (OSError, http.client.HTTPException):
        return None


def wait_ready(proc, port, paths, timeout):
    """Polls every 5 ms; returns (ms from t0 to the first 2xx, path). paths are tried in order each round."""
    t0 = proc.bench_t0
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.bench_name} exited with {proc.returncode}:\n{log_tail(proc.bench_log)}")
        for path in paths:
            status = probe(port, path)
            if status is not None and 200 <= status < 300:
                return round((time.monotonic() - t0) * 1000.0, 1), path
        time.sleep(0.005)
    raise RuntimeError(f"{proc.bench_name} not ready on :{port} after {timeout} s:\n{log_tail(proc.bench_log)}")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_token(secret, sub, email, lifetime=30 * 86400):
    """An auth-contract token: HS256, kid = hex of the first 8 bytes of sha256(secret)."""
    kid = hashlib.sha256(secret.encode()).digest()[:8].hex()
    now = int(time.time())
    head = {"alg": "HS256", "typ": "JWT", "kid": kid}
    claims = {"sub": sub, "email": email, "iat": now, "exp": now + lifetime,
              "iss": "frontend-gateway", "aud": "backend-api", "jti": str(uuid.uuid4())}
    signing_input = b64url(json.dumps(head, separators=(",", ":")).encode()) + "." + \
        b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


def dummy_argon2id():
    """A well-formed argon2id PHC string that matches no password."""
    def b64(data):  # PHC: standard alphabet, no padding
        return base64.b64encode(data).rstrip(b"=").decode()

    salt = b64(hashlib.sha256(b"bench-salt").digest()[:16])
    digest = b64(hashlib.sha256(b"bench-dummy").digest())
    return f"$argon2id$v=19$m=19456,t=2,p=1${salt}${digest}"


# ----------------------------------------------------------------------------- database


def psql(url, *, sql=None, file=None, variables=None, check=True):
    argv = ["psql", url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]
    for k, v in (variables or {}).items():
        argv += ["-v", f"{k}={v}"]
    argv += ["-c", sql] if sql is not None else ["-f", str(file)]
    r = subprocess.run(argv, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"psql failed: {r.stderr.strip()}")
    return r.stdout.strip()


# ----------------------------------------------------------------------------- wrk

UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def to_ms(tok):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", tok.strip())
    return float(m.group(1)) * UNIT_MS[m.group(2)] if m else None


def parse_wrk(text):
    """The anchor's bench/report.py parser (same fields)."""
    out = {"requests": None, "duration_s": None, "requests_per_s": None, "latency_avg_ms": None,
           "latency_max_ms": None, "p50_ms": None, "p75_ms": None, "p90_ms": None, "p99_ms": None,
           "non_2xx_3xx": 0, "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0},
           "transfer_per_s": None}
    for line in text.splitlines():
        s = line.strip()
        m = re.match(r"(\d+) requests in ([0-9.]+)(us|ms|s|m)", s)
        if m:
            out["requests"] = int(m.group(1))
            out["duration_s"] = to_ms(m.group(2) + m.group(3)) / 1000.0
            continue
        m = re.match(r"Requests/sec:\s+([0-9.]+)", s)
        if m:
            out["requests_per_s"] = float(m.group(1))
            continue
        m = re.match(r"Transfer/sec:\s+(\S+)", s)
        if m:
            out["transfer_per_s"] = m.group(1)
            continue
        m = re.match(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", s)
        if m and out["latency_avg_ms"] is None:
            out["latency_avg_ms"] = to_ms(m.group(1))
            out["latency_max_ms"] = to_ms(m.group(3))
            continue
        m = re.match(r"(50|75|90|99)%\s+(\S+)", s)
        if m:
            out["p%s_ms" % m.group(1)] = to_ms(m.group(2))
            continue
        m = re.match(r"Non-2xx or 3xx responses:\s+(\d+)", s)
        if m:
            out["non_2xx_3xx"] = int(m.group(1))
            continue
        m = re.match(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", s)
        if m:
            out["socket_errors"] = dict(zip(["connect", "read", "write", "timeout"], map(int, m.groups())))
    return out


# ----------------------------------------------------------------------------- upstream sink


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


# ----------------------------------------------------------------------------- sign-in storm


class Storm:
    """N threads, each signing in over its own keep-alive connection in a loop."""

    def __init__(self, port, credentials, n):
        self.port, self.credentials, self.n = port, credentials, n
        self.stop_event = threading.Event()
        self.samples = []  # (end time, latency ms, status)
        self.lock = threading.Lock()
        self.threads = []

    def _loop(self, i):
        email, password = self.credentials[i % len(self.credentials)]
        body = json.dumps({"email": email, "password": password})
        conn = None
        while not self.stop_event.is_set():
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("POST", "/api/auth/signin", body=body, headers={"Content-Type": "application/json"})
                res = conn.getresponse()
                res.read()
                status = res.status
                if (res.getheader("Connection") or "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                status = 0
                if conn is not None:
                    conn.close()
                conn = None
            t1 = time.monotonic()
            with self.lock:
                self.samples.append((t1, (t1 - t0) * 1000.0, status))
        if conn is not None:
            conn.close()

    def start(self):
        for i in range(self.n):
            t = threading.Thread(target=self._loop, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(35)

    def stats(self, t_from, t_to):
        with self.lock:
            s = [x for x in self.samples if t_from <= x[0] <= t_to]
        lat = sorted(x[1] for x in s)
        ok = sum(1 for x in s if x[2] == 200)
        span = max(t_to - t_from, 1e-9)

        def pct(q):
            return round(lat[min(len(lat) - 1, int(q * len(lat)))], 1) if lat else None

        return {"concurrency": self.n, "sign_ins": len(s), "ok": ok, "errors": len(s) - ok,
                "per_s": round(len(s) / span, 1), "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


# ----------------------------------------------------------------------------- anchor


def read_anchor(results_dir):
    """Case -> list of runs from the anchor's summary.md (fallback: summary.json)."""
    md = Path(results_dir) / "summary.md"
    out = {"source": str(md), "date": None, "cases": {}}
    if md.exists():
        text = md.read_text()
        m = re.search(r"date \(UTC\): (\S+)", text)
        out["date"] = m.group(1) if m else None
        lines = [l for l in text.splitlines() if l.startswith("|")]
        hdr = None
        for l in lines:
            cells = [c.strip() for c in l.strip("|").split("|")]
            if cells[:3] == ["case", "run", "req/s"]:
                hdr = cells
                continue
            if hdr is None or set(l) <= set("|-: "):
                continue
            if len(cells) != len(hdr) or not re.match(r"[a-z] ", cells[0]):
                if hdr and not re.match(r"[a-z] ", cells[0]):
                    hdr = None if cells[0] in ("case", "group") else hdr
                continue
            row = dict(zip(hdr, cells))

            def num(k):
                v = row.get(k, "").replace(",", "")
                try:
                    return float(v)
                except ValueError:
                    return None

            out["cases"].setdefault(cells[0][0], []).append({
                "run": int(num("run") or 0), "title": cells[0][2:], "requests_per_s": num("req/s"),
                "p50_ms": num("p50 ms"), "p99_ms": num("p99 ms"), "non_2xx_3xx": num("non-2xx/3xx"),
                "peak_rss_mib": {g: num(f"{g} peak RSS MiB") for g in GROUPS},
            })
        if out["cases"]:
            return out
    js = Path(results_dir) / "summary.json"
    if js.exists():
        d = json.loads(js.read_text())
        out["source"], out["date"] = str(js), d["meta"].get("date")
        for r in d["results"]:
            out["cases"].setdefault(r["case"], []).append({
                "run": r["run"], "title": r["case_title"], "requests_per_s": r["wrk"]["requests_per_s"],
                "p50_ms": r["wrk"]["p50_ms"], "p99_ms": r["wrk"]["p99_ms"], "non_2xx_3xx": r["wrk"]["non_2xx_3xx"],
                "peak_rss_mib": {g: p["peak_rss_kb"] / 1024.0 for g, p in r["processes"].items()},
            })
    return out


def run_anchor(cfg, run_dir):
    d = cfg.anchor_dir
    ready = (d / "run.sh").exists() and (d / "api/dist/main.js").exists() and (d / "web/.next/BUILD_ID").exists()
    if not ready:
        log(f"--anchor: {d} is not set up (run its ./setup.sh once); using its stored results instead")
        return None
    out = run_dir / "anchor"
    env = dict(os.environ, RESULTS_DIR=str(out), KEEP_POSTGRES="1", DURATION=f"{cfg.duration}s",
               WARMUP=f"{cfg.warmup}s", THREADS=str(cfg.threads), CONNECTIONS=str(cfg.connections),
               RUNS=str(cfg.runs))
    env.pop("DATABASE_URL", None)  # the anchor has its own (env.sh)
    log(f"--anchor: running {d}/run.sh (results in {out})")
    r = subprocess.run(["./run.sh"], cwd=d, env=env)
    if r.returncode != 0:
        log(f"--anchor: run.sh failed ({r.returncode}); using its stored results instead")
        return None
    return out


# ----------------------------------------------------------------------------- the run


class Bench:
    def __init__(self, cfg, cases, args):
        self.cfg, self.cases, self.args = cfg, cases, args
        self.procs = Processes()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.run_dir = BENCH / ".run" / stamp
        (self.run_dir / "raw").mkdir(parents=True, exist_ok=True)
        self.pids = {"gateway": None, "backend": None, "proxy": None}
        self.results = []
        self.extras = {}
        self.notes = []
        self.preflight = []
        self.local_pg = cfg.db_host in ("127.0.0.1", "localhost", "::1")
        self.session_key = os.urandom(48).hex()  # 96 bytes
        self.backend_bin = cfg.bin_dir / "backend-api"
        self.gateway_bin = cfg.bin_dir / "frontend-gateway"
        self.need_gateway = bool(GATEWAY_CASES & set(cases)) or ("instr" in cases)
        self.ports = {}
        self.storm = None

    # -- services

    def service_env(self, extra):
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ")}
        env.update(DATABASE_URL=self.cfg.bench_url, API_SECRET=API_SECRET, RUST_LOG="warn")
        env.update(SERVICE_DEFAULTS)
        for knob in PASSTHROUGH:
            if knob in os.environ:
                env[knob] = os.environ[knob]
        env.update(extra)
        return env

    def start(self, name, argv, env):
        return self.procs.start(name, argv, env, self.run_dir / f"{name}.log", cwd=self.run_dir)

    def start_backend(self):
        port = self.ports["backend"]
        p = self.start("backend-api", [str(self.backend_bin)],
                       self.service_env({"BACKEND_API_ADDR": f"127.0.0.1:{port}"}))
        ms, _ = wait_ready(p, port, ["/readyz"], 60)
        return p, ms

    def gateway_env(self, port):
        rules = [{"source": f"{SINK_RULE_PREFIX}/:path*",
                  "destination": f"http://127.0.0.1:{self.ports['sink']}/:path*"}]
        return self.service_env({
            "GATEWAY_ADDR": f"127.0.0.1:{port}",
            "SESSION_KEY": self.session_key,
            "BACKEND_API_URL": f"http://127.0.0.1:{self.ports['backend']}",
            "PUBLIC_ORIGIN": f"http://127.0.0.1:{self.ports['gateway']}",
            "GATEWAY_REWRITES": json.dumps(rules),
            # Every bench client (the storm's 16 "users" included) comes from 127.0.0.1, which the
            # per-IP sign-in throttle would cut off after 20 attempts a minute, so the storm would
            # measure fast 429s instead of argon2. The per-account limit stays on (the storm signs
            # in with correct passwords).
            "SIGNIN_MAX_ATTEMPTS_PER_IP": "0",
        })

    GATEWAY_READY = ["/readyz", "/healthz", "/api/auth/providers"]

    def start_gateway(self, name="frontend-gateway", port=None, wrapper=(), timeout=60):
        port = port or self.ports["gateway"]
        p = self.start(name, [*wrapper, str(self.gateway_bin)], self.gateway_env(port))
        ms, path = wait_ready(p, port, self.GATEWAY_READY, timeout)
        return p, ms, path

    # -- steps

    def check_tools(self):
        missing = []
        need = ["psql"]
        if set(self.cases) & {"a", "b", "c", "d", "storm"}:
            need.append("wrk")
        if "d" in self.cases:
            need.append("nginx")
        for tool in need:
            if shutil.which(tool) is None:
                missing.append(tool)
        if not self.backend_bin.exists():
            missing.append(str(self.backend_bin))
        if self.need_gateway and not self.gateway_bin.exists():
            missing.append(str(self.gateway_bin))
        if missing:
            sys.exit("missing: " + ", ".join(missing) +
                     "\n(build: cargo build --release -p backend-api -p frontend-gateway; "
                     "tools: apt-get install -y wrk nginx postgresql-client; or use --only)")

    def pick_ports(self):
        for k, v in self.cfg.ports.items():
            self.ports[k] = free_port(v)
        self.ports["gateway2"] = free_port(self.ports["gateway"] + 1)
        self.ports["gateway_instr"] = free_port(self.ports["gateway"] + 2)
        self.ports["backend_instr"] = free_port(self.ports["backend"] + 2)

    def create_db(self):
        cfg = self.cfg
        log(f"(re)creating database {cfg.bench_db} on {cfg.db_host}")
        psql(cfg.database_url, sql=f"DROP DATABASE IF EXISTS {cfg.bench_db} WITH (FORCE)")
        psql(cfg.database_url, sql=f"CREATE DATABASE {cfg.bench_db}")

    def setup_backend(self):
        log("starting backend-api on an empty database (applies the migrations)")
        p, ms = self.start_backend()
        self.extras["backend_first_start_with_migrations_ms"] = ms
        log(f"  ready after {ms} ms (including migrations); seeding")
        t0 = time.monotonic()
        psql(self.cfg.bench_url, file=BENCH / "seed.sql", variables={"dummy_hash": dummy_argon2id()})
        counts = psql(self.cfg.bench_url, sql="SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM workspaces), "
                                              "(SELECT count(*) FROM workspace_members)")
        log(f"  seeded in {time.monotonic() - t0:.1f} s: users|workspaces|members = {counts}")
        self.extras["seed"] = counts
        self.procs.stop(p)
        starts = []
        for i in range(self.cfg.cold_starts):
            p, ms = self.start_backend()
            starts.append(ms)
            if i + 1 < self.cfg.cold_starts:
                self.procs.stop(p)
        log(f"backend-api cold starts to 200 /readyz (migrations applied): {starts} ms")
        self.extras["cold_start_backend_ms"] = starts
        self.pids["backend"] = p.pid
        self.user = psql(self.cfg.bench_url, sql="SELECT id || '|' || email FROM users WHERE email = 'user1@example.com'").split("|")
        self.token = mint_token(API_SECRET, self.user[0], self.user[1])

    def setup_gateway(self):
        if not self.need_gateway:
            return
        self.sink = self.start("sink", [sys.executable, str(Path(__file__).resolve()), "--sink", str(self.ports["sink"])],
                               dict(os.environ))
        starts, path = [], None
        for i in range(self.cfg.cold_starts):
            p, ms, path = self.start_gateway()
            starts.append(ms)
            if i + 1 < self.cfg.cold_starts:
                self.procs.stop(p)
        self.gateway = p
        self.pids["gateway"] = p.pid
        self.extras["cold_start_gateway_ms"] = starts
        self.extras["gateway_ready_path"] = path
        log(f"frontend-gateway cold starts to 2xx {path}: {starts} ms")
        if path != "/readyz":
            self.notes.append(f"frontend-gateway has no /readyz answering 200; its cold start was timed to the "
                              f"first 2xx from `{path}` instead.")
        gp = self.ports["gateway"]
        # A real argon2id hash: register a helper user, copy its hash to every seeded user.
        status, _, body = request(gp, "POST", "/api/auth/register",
                                  {"Content-Type": "application/json"},
                                  json.dumps({"email": HELPER_EMAIL, "password": PASSWORD, "name": "Bench helper"}))
        if status not in (200, 201):
            raise RuntimeError(f"POST /api/auth/register answered {status}: {body[:300]!r}")
        psql(self.cfg.bench_url, sql=(
            f"UPDATE users SET password_hash = (SELECT password_hash FROM users WHERE email = '{HELPER_EMAIL}') "
            f"WHERE email <> '{HELPER_EMAIL}'; DELETE FROM users WHERE email = '{HELPER_EMAIL}'"))
        self.cookie = self.sign_in(gp, "user1@example.com")
        log("signed in as user1@example.com (session cookie obtained)")

    def sign_in(self, port, email):
        status, headers, body = request(port, "POST", "/api/auth/signin",
                                        {"Content-Type": "application/json"},
                                        json.dumps({"email": email, "password": PASSWORD}))
        cookie = cookie_from(headers, "session") or cookie_from(headers, "__Host-session")
        if status != 200 or not cookie:
            raise RuntimeError(f"sign-in as {email} answered {status} (cookie {'set' if cookie else 'missing'}): {body[:300]!r}")
        return cookie

    def setup_nginx(self):
        if "d" not in self.cases:
            return
        prefix = self.run_dir / "nginx"
        prefix.mkdir(exist_ok=True)
        ka = f"keepalive {self.cfg.nginx_keepalive};" if self.cfg.nginx_keepalive > 0 else ""
        conf = (BENCH / "nginx.conf.template").read_text()
        for k, v in {"@PREFIX@": str(prefix), "@LISTEN@": f"127.0.0.1:{self.ports['nginx']}",
                     "@UPSTREAM@": f"127.0.0.1:{self.ports['backend']}", "@TOKEN@": self.token,
                     "@KEEPALIVE@": ka}.items():
            conf = conf.replace(k, v)
        (prefix / "nginx.conf").write_text(conf)
        argv = ["nginx", "-e", str(prefix / "error.log"), "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
        r = subprocess.run(argv + ["-t", "-q"], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"nginx -t failed: {r.stderr}")
        p = self.start("nginx", argv, dict(os.environ))
        wait_ready(p, self.ports["nginx"], ["/readyz"], 30)
        time.sleep(0.3)  # let the workers come up
        self.pids["proxy"] = p.pid

    # -- wrk cases

    def case_def(self, key):
        bp, gp, np_ = self.ports.get("backend"), self.ports.get("gateway"), self.ports.get("nginx")
        if key == "a":
            return f"http://127.0.0.1:{bp}/workspaces", [f"Authorization: Bearer {self.token}"], 200
        if key in ("b", "storm"):
            return f"http://127.0.0.1:{gp}/api/workspaces", [f"Cookie: session={self.cookie}"], 200
        if key == "c":
            return f"http://127.0.0.1:{gp}/api/workspaces", [], 401
        if key == "d":
            return f"http://127.0.0.1:{np_}/workspaces", [], 200
        raise KeyError(key)

    def do_preflight(self, key, url, hdrs, expect):
        u = urllib.parse.urlsplit(url)
        headers = dict(h.split(": ", 1) for h in hdrs)
        status, rh, body = request(u.port, "GET", u.path, headers)
        items = None
        try:
            items = len(json.loads(body)["items"])
        except (ValueError, KeyError, TypeError):
            pass
        pf = {"case": key, "url": url, "expected": expect, "status": status, "bytes": len(body),
              "items": items, "connection": header(rh, "connection") or "keep-alive (HTTP/1.1 default)"}
        self.preflight.append(pf)
        log(f"case {key} ({CASE_TITLES[key]}): preflight {status} ({len(body)} bytes, {items} items), expected {expect}")
        if status != expect:
            self.notes.append(f"case {key}: the pre-flight request answered {status}, expected {expect}.")
        return pf

    def wrk(self, url, hdrs, seconds, latency, raw):
        cfg = self.cfg
        argv = ["wrk", f"-t{cfg.threads}", f"-c{cfg.connections}", f"-d{seconds}s", "--timeout", cfg.wrk_timeout]
        if latency:
            argv.append("--latency")
        for h in hdrs:
            argv += ["-H", h]
        argv.append(url)
        r = subprocess.run(argv, capture_output=True, text=True)
        Path(raw).write_text(r.stdout + r.stderr)
        if r.returncode != 0:
            log(f"wrk exited with {r.returncode} (see {raw})")
        return parse_wrk(r.stdout)

    def run_case(self, key, storm=None):
        url, hdrs, expect = self.case_def(key)
        self.do_preflight(key, url, hdrs, expect)
        for run in range(1, self.cfg.runs + 1):
            raw = self.run_dir / "raw" / f"case-{key}-run{run}.txt"
            if storm:
                self.storm = storm
                storm.start()
            self.wrk(url, hdrs, self.cfg.warmup, False, str(raw).replace(".txt", "-warmup.txt"))
            snap = Snapshot(self.pids, postgres_pids(self.local_pg))
            log(f"case {key} run {run}: wrk -t{self.cfg.threads} -c{self.cfg.connections} -d{self.cfg.duration}s --latency {url}")
            t0 = time.monotonic()
            w = self.wrk(url, hdrs, self.cfg.duration, True, raw)
            t1 = time.monotonic()
            procs, pg_cpu = snap.finish()
            r = {"case": key, "case_title": CASE_TITLES[key], "run": run, "url": url, "expected_status": expect,
                 "raw": str(raw.relative_to(ROOT)), "wrk": w, "processes": procs, "postgres_cpu_s": pg_cpu}
            if storm:
                storm.stop()
                r["storm"] = storm.stats(t0, t1)
                st = r["storm"]
                if st["sign_ins"] and st["errors"] > 0.1 * st["sign_ins"]:
                    msg = (f"storm run {run}: {st['errors']} of {st['sign_ins']} sign-ins were not 200 (throttled?), "
                           "so the storm did little argon2 work and its p99 figure means little.")
                    log("WARNING: " + msg)
                    self.notes.append(msg)
                storm = Storm(storm.port, storm.credentials, storm.n)  # fresh threads for the next run
            self.results.append(r)
            mem = ", ".join(f"{g} {p['peak_rss_kb'] / 1024:.1f} MiB" for g, p in procs.items() if g in CASE_GROUPS[key])
            cpu = ", ".join(f"{g} {p['cpu_s']} s" for g, p in procs.items() if g in CASE_GROUPS[key])
            log(f"    -> {w['requests_per_s']} req/s, p50 {w['p50_ms']} ms, p99 {w['p99_ms']} ms, non-2xx {w['non_2xx_3xx']}, "
                f"socket errors {sum(w['socket_errors'].values())}; peak RSS {mem}; CPU {cpu}"
                + (f"; storm {r['storm']}" if storm else ""))

    # -- extras

    def big_body(self):
        gp, n = self.ports["gateway"], self.cfg.big_mib * 1024 * 1024
        pid = self.pids["gateway"]
        path = f"{SINK_RULE_PREFIX}/upload"
        # warm-up: a small request each way (pools, buffers)
        status, _, _ = request(gp, "PUT", path, {"Content-Type": "application/octet-stream"}, b"x" * 1024)
        if status != 200:
            self.extras["big_body"] = {"error": f"PUT {path} through the gateway answered {status}"}
            self.notes.append(f"100 MiB case skipped: a 1 KiB PUT to {path} (GATEWAY_REWRITES rule) answered {status}.")
            return
        request(gp, "GET", f"{SINK_RULE_PREFIX}/download/1024")
        out = {"bytes": n, "path_up": path, "path_down": f"{SINK_RULE_PREFIX}/download/{n}"}
        rss_before = status_kb(pid, "VmRSS")
        out["rss_before_kb"] = rss_before
        # upload
        clear_refs([pid])
        chunk = b"u" * (1 << 16)
        conn = http.client.HTTPConnection("127.0.0.1", gp, timeout=120)
        t0 = time.monotonic()
        conn.putrequest("PUT", path)
        conn.putheader("Content-Type", "application/octet-stream")
        conn.putheader("Content-Length", str(n))
        conn.endheaders()
        sent = 0
        while sent < n:
            part = chunk[: min(len(chunk), n - sent)]
            conn.send(part)
            sent += len(part)
        res = conn.getresponse()
        echo = res.read()
        t1 = time.monotonic()
        conn.close()
        out["up"] = {"status": res.status,
                     "seconds": round(t1 - t0, 2), "mib_per_s": round(n / (1 << 20) / (t1 - t0), 1),
                     "peak_rss_kb": status_kb(pid, "VmHWM")}
        # download
        clear_refs([pid])
        conn = http.client.HTTPConnection("127.0.0.1", gp, timeout=120)
        t0 = time.monotonic()
        conn.request("GET", out["path_down"])
        res = conn.getresponse()
        got = 0
        while True:
            b = res.read(1 << 20)
            if not b:
                break
            got += len(b)
        t1 = time.monotonic()
        conn.close()
        out["down"] = {"status": res.status, "received": got, "seconds": round(t1 - t0, 2),
                       "mib_per_s": round(got / (1 << 20) / (t1 - t0), 1), "peak_rss_kb": status_kb(pid, "VmHWM")}
        out["rss_growth_kb"] = max(out["up"]["peak_rss_kb"], out["down"]["peak_rss_kb"]) - rss_before
        try:
            echoed = json.loads(echo)["bytes"]
        except (ValueError, KeyError, TypeError):
            echoed = None
        out["up"]["upstream_received"] = echoed
        ok = out["up"]["status"] == 200 and echoed == n and out["down"]["status"] == 200 and got == n
        out["ok"] = ok
        self.extras["big_body"] = out
        log(f"100 MiB through the gateway: up {out['up']['status']} in {out['up']['seconds']} s, down {out['down']['status']} "
            f"({got} bytes) in {out['down']['seconds']} s; gateway RSS before {rss_before / 1024:.1f} MiB, growth "
            f"{out['rss_growth_kb'] / 1024:.1f} MiB")

    def revoke(self):
        """Sign-out on instance 1 must stop the cookie on instance 2 within 1 s."""
        g1 = self.ports["gateway"]
        p2, _, _ = self.start_gateway("frontend-gateway-2", self.ports["gateway2"])
        g2 = self.ports["gateway2"]
        try:
            cookie = self.sign_in(g1, "user2@example.com")
            before = {g: request(g, "GET", "/api/workspaces", {"Cookie": f"session={cookie}"})[0] for g in (g1, g2)}
            status, headers, body = request(g1, "GET", "/api/auth/csrf", {"Cookie": f"session={cookie}"})
            csrf_cookie = cookie_from(headers, "next-auth.csrf-token")
            token = json.loads(body)["csrfToken"]
            form = urllib.parse.urlencode({"csrfToken": token, "json": "true"})
            status, _, body = request(g1, "POST", "/api/auth/signout", {
                "Cookie": f"session={cookie}; next-auth.csrf-token={csrf_cookie}",
                "Content-Type": "application/x-www-form-urlencoded"}, form)
            t0 = time.monotonic()
            out = {"status_before": before, "signout_status": status, "stopped_after_ms": {}}
            pending = {"instance 1": g1, "instance 2": g2}
            while pending and time.monotonic() - t0 < 5:
                for name, g in list(pending.items()):
                    s = request(g, "GET", "/api/workspaces", {"Cookie": f"session={cookie}"})[0]
                    if s == 401:
                        out["stopped_after_ms"][name] = round((time.monotonic() - t0) * 1000, 1)
                        del pending[name]
                time.sleep(0.01)
            for name in pending:
                out["stopped_after_ms"][name] = None
            ms = list(out["stopped_after_ms"].values())
            out["ok"] = all(v == 200 for v in before.values()) and status == 200 and all(v is not None and v <= 1000 for v in ms)
            self.extras["revoke"] = out
            log(f"session revocation: before {before}, sign-out {status}, cookie refused after {out['stopped_after_ms']} ms")
        finally:
            self.procs.stop(p2)

    def instructions(self):
        out = {}
        if shutil.which("valgrind") and shutil.which("callgrind_control"):
            tool = "callgrind"
        elif self.perf_supported():
            tool = "perf"
        else:
            self.notes.append("Instruction counts skipped: valgrind is missing and `perf stat -e instructions` is not supported here.")
            return
        n = self.cfg.instr_requests
        if "b" in self.cases or self.need_gateway:
            out["gateway_proxied"] = self.count_instructions(
                tool, "gateway", n, f"/api/workspaces", {"Cookie": f"session={self.cookie}"})
        out["backend_direct"] = self.count_instructions(
            tool, "backend", n, "/workspaces", {"Authorization": f"Bearer {self.token}"})
        self.extras["instructions"] = out

    @staticmethod
    def perf_supported():
        if not shutil.which("perf"):
            return False
        r = subprocess.run(["perf", "stat", "-x,", "-e", "instructions:u", "true"], capture_output=True, text=True)
        return r.returncode == 0 and "<not supported>" not in r.stderr and "<not counted>" not in r.stderr

    def count_instructions(self, tool, which, n, path, headers):
        """Runs a second instance of `which` under the tool, sends n sequential keep-alive requests."""
        port = self.ports[f"{which}_instr"]
        cg_out = self.run_dir / f"callgrind.{which}.%p.out"
        wrapper = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={cg_out}"] if tool == "callgrind" else []
        log(f"instruction count: {which} under {tool} on :{port}, {n} requests to {path}")
        if which == "gateway":
            env = self.gateway_env(port)
            p = self.start(f"{which}-{tool}", [*wrapper, str(self.gateway_bin)], env)
            wait_ready(p, port, self.GATEWAY_READY, 300)
        else:
            env = self.service_env({"BACKEND_API_ADDR": f"127.0.0.1:{port}"})
            p = self.start(f"{which}-{tool}", [*wrapper, str(self.backend_bin)], env)
            wait_ready(p, port, ["/readyz"], 300)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def send(k):
            bad = 0
            for _ in range(k):
                conn.request("GET", path, headers=headers)
                res = conn.getresponse()
                res.read()
                bad += res.status != 200
            return bad

        try:
            send(min(100, n))  # warm-up: connection pools, lazy statics
            perf = None
            if tool == "callgrind":
                subprocess.run(["callgrind_control", "-i", "on", str(p.pid)], capture_output=True, check=True, timeout=60)
                subprocess.run(["callgrind_control", "-z", str(p.pid)], capture_output=True, check=True, timeout=60)
            else:
                perf_out = self.run_dir / f"perf.{which}.txt"
                perf = subprocess.Popen(["perf", "stat", "-x,", "-e", "instructions:u", "-p", str(p.pid), "-o", str(perf_out)])
                time.sleep(0.3)
            t0 = time.monotonic()
            bad = send(n)
            secs = time.monotonic() - t0
            if tool == "callgrind":
                before = set(self.run_dir.glob(f"callgrind.{which}.*.out*"))
                subprocess.run(["callgrind_control", "-d", str(p.pid)], capture_output=True, check=True, timeout=120)
                subprocess.run(["callgrind_control", "-i", "off", str(p.pid)], capture_output=True, timeout=60)
                dumps = sorted(set(self.run_dir.glob(f"callgrind.{which}.*.out*")) - before, key=lambda f: f.stat().st_mtime)
                total = None
                for f in dumps:
                    for line in f.read_text(errors="replace").splitlines():
                        if line.startswith(("totals:", "summary:")):
                            total = int(line.split()[1])
                if total is None:
                    raise RuntimeError("no callgrind dump with totals found")
                dump = str(dumps[-1].relative_to(ROOT))
            else:
                perf.send_signal(signal.SIGINT)
                perf.wait(10)
                text = (self.run_dir / f"perf.{which}.txt").read_text()
                total = int(next(l.split(",")[0] for l in text.splitlines() if "instructions" in l))
                dump = None
            res = {"tool": tool, "requests": n, "non_200": bad, "total_instructions": total,
                   "per_request": round(total / n), "seconds_under_tool": round(secs, 1), "dump": dump,
                   "path": path}
            log(f"    -> {res['per_request']:,} instructions per request ({which}, {tool}, {n} requests, {bad} non-200)")
            return res
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, RuntimeError, OSError,
                http.client.HTTPException, StopIteration, ValueError) as e:
            msg = f"instruction count for {which} failed: {e}"
            log(msg)
            self.notes.append(msg)
            return {"tool": tool, "error": str(e)}
        finally:
            conn.close()
            self.procs.stop(p, timeout=30)

    # -- meta

    def meta(self):
        def cmd(argv):
            try:
                r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
                return (r.stdout or r.stderr).strip().splitlines()[0]
            except (OSError, IndexError, subprocess.TimeoutExpired):
                return "n/a"

        cpu = "?"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30)
        rev = cmd(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "crates", "migrations", "Cargo.lock"],
                               capture_output=True, text=True).stdout.strip() != ""
        bins = {}
        for b in (self.backend_bin, self.gateway_bin):
            if b.exists():
                st = b.stat()
                bins[b.name] = {"path": str(b), "mtime": datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc).isoformat(timespec="seconds"),
                                "bytes": st.st_size}
        return {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": f"{os.cpu_count()} cores ({cpu}), {mem_gib} GiB, kernel {platform.release()}",
            "load_average_before": self.load_before,
            "git": rev + ("+dirty" if dirty else ""),
            "binaries": bins,
            "wrk": {"threads": self.cfg.threads, "connections": self.cfg.connections, "duration_s": self.cfg.duration,
                    "warmup_s": self.cfg.warmup, "runs": self.cfg.runs, "timeout": self.cfg.wrk_timeout},
            "smoke": self.cfg.smoke,
            "service_settings": {**SERVICE_DEFAULTS, **{k: os.environ[k] for k in PASSTHROUGH if k in os.environ}},
            "cases": self.cases,
            "ports": self.ports,
            "database": f"{self.cfg.db_host}/{self.cfg.bench_db}",
            "versions": {
                "rustc": cmd(["rustc", "-V"]),
                "wrk": cmd(["dpkg-query", "-W", "-f=${Version}", "wrk"]),
                "nginx": cmd(["nginx", "-v"]).replace("nginx version: ", ""),
                "postgresql": psql(self.cfg.database_url, sql="SHOW server_version", check=False) or "n/a",
                "valgrind": cmd(["valgrind", "--version"]),
                "python": platform.python_version(),
            },
            "run_dir": str(self.run_dir.relative_to(ROOT)),
            "processes": getattr(self, "idle", {}),
        }

    # -- main

    def run(self):
        self.load_before = [round(x, 2) for x in os.getloadavg()]
        if self.load_before[0] > 0.8:
            log(f"WARNING: load average {self.load_before} before the run: other work (a compile?) will distort the figures")
        self.check_tools()
        anchor_dir = run_anchor(self.cfg, self.run_dir) if self.args.anchor else None
        if self.args.anchor and anchor_dir is None:
            self.notes.append("`--anchor` was given but the anchor could not run (see the log); its stored results were used.")
        self.anchor = read_anchor(anchor_dir or (self.cfg.anchor_dir / "results"))
        self.anchor["same_run"] = anchor_dir is not None
        self.pick_ports()
        self.create_db()
        self.setup_backend()
        self.setup_gateway()
        self.setup_nginx()
        time.sleep(0.5)
        self.idle = {}
        for g, pid in self.pids.items():
            if pid:
                pids = descendants(pid)
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                self.idle[g] = {"pids": pids, "cmd": cmdline[:120], "idle_rss_kb": sum(status_kb(p, "VmRSS") for p in pids)}
        for key in ("a", "b", "c", "d"):
            if key in self.cases:
                self.run_case(key)
        # The storm runs last among the gateway cases: argon2's memory stays mapped afterwards and
        # would hide the 100 MiB case's growth.
        if "bigbody" in self.cases:
            self.big_body()
        if "revoke" in self.cases:
            self.revoke()
        if "storm" in self.cases:
            creds = [(f"user{i}@example.com", PASSWORD) for i in range(2, 2 + self.cfg.storm)]
            self.run_case("storm", storm=Storm(self.ports["gateway"], creds, self.cfg.storm))
        if "instr" in self.cases:
            self.instructions()
        return self.meta()


# ----------------------------------------------------------------------------- report


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def fmt(v, nd=1):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def summarize_cases(results):
    """Case -> aggregate over runs (mean req/s, mean p50/p99, max peak RSS, sums)."""
    out = {}
    for key in dict.fromkeys(r["case"] for r in results):
        rs = [r for r in results if r["case"] == key]
        agg = {
            "runs": len(rs),
            "requests_per_s": mean([r["wrk"]["requests_per_s"] for r in rs]),
            "p50_ms": mean([r["wrk"]["p50_ms"] for r in rs]),
            "p99_ms": mean([r["wrk"]["p99_ms"] for r in rs]),
            "requests": sum(r["wrk"]["requests"] or 0 for r in rs),
            "non_2xx_3xx": sum(r["wrk"]["non_2xx_3xx"] for r in rs),
            "socket_errors": sum(sum(r["wrk"]["socket_errors"].values()) for r in rs),
            "peak_rss_mib": {}, "cpu_s": {},
            "postgres_cpu_s": round(sum(r["postgres_cpu_s"] for r in rs), 2),
        }
        for g in GROUPS:
            vals = [r["processes"][g] for r in rs if g in r["processes"]]
            if vals and g in CASE_GROUPS[key]:
                agg["peak_rss_mib"][g] = round(max(v["peak_rss_kb"] for v in vals) / 1024.0, 1)
                agg["cpu_s"][g] = round(sum(v["cpu_s"] for v in vals), 2)
        cpu = sum(agg["cpu_s"].values())
        agg["server_cpu_ms_per_req"] = round(1000.0 * cpu / agg["requests"], 3) if agg["requests"] else None
        if key == "storm":
            agg["storm"] = [r["storm"] for r in rs]
        out[key] = agg
    return out


def anchor_best(anchor, key):
    runs = anchor["cases"].get(key) or []
    if not runs:
        return None
    return {"requests_per_s": max(r["requests_per_s"] for r in runs), "p99_ms": min(r["p99_ms"] for r in runs),
            "requests_per_s_runs": [r["requests_per_s"] for r in runs], "p99_ms_runs": [r["p99_ms"] for r in runs],
            "peak_rss_mib": {g: max((r["peak_rss_mib"].get(g) or 0) for r in runs) for g in GROUPS}}


def anchor_mean(anchor, key):
    """The anchor's runs averaged the way ours are (req/s and p99 means over runs): like for like."""
    best = anchor_best(anchor, key)
    if not best:
        return None
    runs = anchor["cases"][key]
    return dict(best, requests_per_s=statistics.fmean(r["requests_per_s"] for r in runs),
                p99_ms=statistics.fmean(r["p99_ms"] for r in runs))


def targets(cases, extras, anchor):
    """The targets of issue 6, each {target, measured, result}."""
    T = []

    def add(name, measured, ok):
        T.append({"target": name, "measured": measured, "result": "not run" if ok is None else ("PASS" if ok else "FAIL")})

    b, d = cases.get("b"), cases.get("d")
    am, ab = anchor_mean(anchor, "b"), anchor_best(anchor, "b")
    if b and am:
        # Means over runs on both sides (like for like); the ratio to the anchor's single best
        # run, a stricter figure, is shown beside it.
        ratio = b["requests_per_s"] / am["requests_per_s"]
        best = b["requests_per_s"] / ab["requests_per_s"]
        add("full stack req/s >= 10x the anchor's", f"{fmt(b['requests_per_s'])} req/s = {ratio:.1f}x the anchor's "
            f"{fmt(am['requests_per_s'])} (mean of {len(ab['requests_per_s_runs'])} runs; {best:.1f}x its best run)",
            ratio >= 10)
        pr = am["p99_ms"] / b["p99_ms"] if b["p99_ms"] else None
        pb = ab["p99_ms"] / b["p99_ms"] if b["p99_ms"] else None
        add("full stack p99 <= 1/10 of the anchor's", f"{fmt(b['p99_ms'], 2)} ms = 1/{pr:.1f} of the anchor's "
            f"{fmt(am['p99_ms'], 2)} ms (mean of {len(ab['p99_ms_runs'])} runs; 1/{pb:.1f} of its best run)"
            if pr else "n/a", pr is not None and pr >= 10)
    else:
        add("full stack req/s >= 10x the anchor's", "n/a", None)
        add("full stack p99 <= 1/10 of the anchor's", "n/a", None)
    if b and d:
        ratio = b["requests_per_s"] / d["requests_per_s"]
        add("gateway hop <= 1.5x a bare nginx hop (full-stack req/s >= 0.67x nginx-hop req/s)",
            f"{fmt(b['requests_per_s'])} / {fmt(d['requests_per_s'])} = {ratio:.2f}", ratio >= 0.67)
    else:
        add("gateway hop <= 1.5x a bare nginx hop (full-stack req/s >= 0.67x nginx-hop req/s)", "n/a", None)
    rv = extras.get("revoke")
    add("a signed-out session stops working within 1 s on every gateway instance (2 instances)",
        ", ".join(f"{k}: {fmt(v)} ms" for k, v in rv["stopped_after_ms"].items()) if rv else "n/a",
        rv["ok"] if rv else None)
    for g, label in (("gateway", "gateway"), ("backend", "backend")):
        peaks = [(k, c["peak_rss_mib"][g]) for k, c in cases.items() if g in c["peak_rss_mib"] and k in ("a", "b", "c", "d")]
        if peaks:
            k, v = max(peaks, key=lambda x: x[1])
            add(f"{label} peak RSS under the 64-connection load <= 30 MiB", f"{fmt(v)} MiB (case {k})", v <= 30)
        else:
            add(f"{label} peak RSS under the 64-connection load <= 30 MiB", "n/a", None)
    bb = extras.get("big_body")
    if bb and "rss_growth_kb" in bb:
        g = bb["rss_growth_kb"] / 1024.0
        add("100 MiB through the proxy raises the gateway's RSS by < 16 MiB",
            f"+{fmt(g)} MiB (up {bb['up']['status']}, down {bb['down']['status']})", bb["ok"] and g < 16)
    else:
        add("100 MiB through the proxy raises the gateway's RSS by < 16 MiB", bb.get("error", "n/a") if bb else "n/a", None if not bb else False)
    s = cases.get("storm")
    if s and b:
        ratio = s["p99_ms"] / b["p99_ms"] if b["p99_ms"] else None
        add("sign-in storm at most doubles the proxied p99", f"{fmt(b['p99_ms'], 2)} -> {fmt(s['p99_ms'], 2)} ms "
            f"(x{ratio:.2f})" if ratio else "n/a", ratio is not None and ratio <= 2)
    else:
        add("sign-in storm at most doubles the proxied p99", "n/a", None)
    for svc in ("backend", "gateway"):
        cs = extras.get(f"cold_start_{svc}_ms")
        if cs:
            med = statistics.median(cs)
            add(f"{svc} cold start to a ready /readyz < 1 s (median of {len(cs)})",
                f"{fmt(med)} ms (all: {', '.join(fmt(x) for x in cs)})" +
                ("" if svc == "backend" or extras.get("gateway_ready_path") == "/readyz" else f"; timed to {extras.get('gateway_ready_path')}"),
                med < 1000)
        else:
            add(f"{svc} cold start to a ready /readyz < 1 s", "n/a", None)
    return T


def render(meta, results, extras, notes, preflight, anchor):
    cases = summarize_cases(results)
    L = []
    L.append("# Benchmarks")
    L.append("")
    L.append("Generated by `bench/run.py` (`just bench`); do not edit by hand. Issue 6 defines the workload and the targets.")
    L.append("")
    if meta["smoke"]:
        L.append(f"> **SMOKE RUN** ({meta['wrk']['duration_s']} s measured after {meta['wrk']['warmup_s']} s warm-up): "
                 "these figures only show the harness works; they are not measurements. Run `just bench` on an idle machine.")
        L.append("")
    L.append(f"- date (UTC): {meta['date']}; git {meta['git']}")
    L.append(f"- machine: {meta['machine']}; load average before the run: {', '.join(map(str, meta['load_average_before']))}")
    w = meta["wrk"]
    L.append(f"- wrk: {w['threads']} threads, {w['connections']} connections, {w['duration_s']} s measured after a "
             f"{w['warmup_s']} s warm-up (same settings), `--latency --timeout {w['timeout']}`; {w['runs']} run(s) per case "
             "(req/s and p50/p99 are means over runs, peak RSS the maximum)")
    L.append("- wrk, every server and PostgreSQL share the same cores; only ratios measured on one machine mean anything.")
    L.append("- data: the anchor's shape (1000 users, each a member of 10 workspaces: 5 owned, 5 shared); all load uses "
             "user1 (10 items, as in the anchor); release binaries, `RUST_LOG=warn`, everything on 127.0.0.1.")
    settings = ", ".join(f"`{k}={v}`" for k, v in sorted(meta.get("service_settings", {}).items()))
    L.append(f"- service settings: {settings} (everything else at its default; see README.md).")
    L.append("")
    L.append("## Results")
    L.append("")
    hdr = ["case", "req/s", "p50 ms", "p99 ms", "non-2xx/3xx", "socket errors", "requests",
           "gateway peak RSS MiB", "backend peak RSS MiB", "nginx peak RSS MiB",
           "gateway CPU s", "backend CPU s", "nginx CPU s", "postgres CPU s", "server CPU ms/req"]
    L.append("| " + " | ".join(hdr) + " |")
    L.append("|" + "|".join(["---"] * len(hdr)) + "|")
    for key, c in cases.items():
        row = [f"{key} {CASE_TITLES[key]}", fmt(c["requests_per_s"]), fmt(c["p50_ms"], 2), fmt(c["p99_ms"], 2),
               fmt(c["non_2xx_3xx"]), fmt(c["socket_errors"]), fmt(c["requests"])]
        row += [fmt(c["peak_rss_mib"].get(g)) if g in c["peak_rss_mib"] else "-" for g in GROUPS]
        row += [fmt(c["cpu_s"].get(g), 2) if g in c["cpu_s"] else "-" for g in GROUPS]
        row += [fmt(c["postgres_cpu_s"], 2), fmt(c["server_cpu_ms_per_req"], 3)]
        L.append("| " + " | ".join(row) + " |")
    L.append("")
    L.append("Peak RSS = VmHWM from /proc/PID/status, reset (`echo 5 > /proc/PID/clear_refs`) after the warm-up and read "
             "after the measured run (nginx: master + workers summed). CPU s = utime+stime during the measured run. "
             "postgres CPU s = every process of the postgres user (approximate). server CPU ms/req = CPU of the services "
             "a case's requests pass through / requests. Case c is expected to be all 401.")
    L.append("")
    # ratios
    L.append("## Ratios: against the anchor and against nginx")
    L.append("")
    if anchor.get("same_run"):
        L.append(f"Anchor (Node: Next.js 15 + NextAuth v4 -> NestJS 11) measured **in this run** by `bench/run.py --anchor` "
                 f"(`{os.path.relpath(anchor['source'], ROOT)}`), with the same wrk settings and number of runs.")
    else:
        L.append(f"Anchor figures (Node: Next.js 15 + NextAuth v4 -> NestJS 11) read from `{os.path.relpath(anchor['source'], ROOT)}`: measured in an "
                 f"**earlier run** ({anchor.get('date') or 'date unknown'}) on a machine like this one, not in this run. "
                 "`bench/run.py --anchor` (`just bench-anchor`) measures them side by side.")
    L.append("")
    L.append("Ratios compare means over runs on both sides (like for like); the ratio to the anchor's single best run "
             "(highest req/s, lowest p99), a stricter figure, is in parentheses.")
    L.append("")
    L.append("| case | ours req/s | anchor req/s mean (runs) | req/s ratio (vs its best run) | ours p99 ms | anchor p99 ms mean (runs) | p99 ratio anchor / ours (vs its best run) | ours peak RSS MiB | anchor peak RSS MiB | req/s vs our nginx hop (d) |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    d = cases.get("d")
    for key in ("a", "b", "c", "d"):
        c = cases.get(key)
        if not c:
            continue
        ab, am = anchor_best(anchor, key), anchor_mean(anchor, key)
        inv = CASE_GROUPS[key]
        ours_rss = ", ".join(f"{g} {fmt(c['peak_rss_mib'][g])}" for g in inv if g in c["peak_rss_mib"])
        if ab:
            a_rps = f"{fmt(am['requests_per_s'])} ({', '.join(fmt(x) for x in ab['requests_per_s_runs'])})"
            a_p99 = f"{fmt(am['p99_ms'], 2)} ({', '.join(fmt(x, 2) for x in ab['p99_ms_runs'])})"
            rr = f"{c['requests_per_s'] / am['requests_per_s']:.1f}x ({c['requests_per_s'] / ab['requests_per_s']:.1f}x)"
            pr = (f"{am['p99_ms'] / c['p99_ms']:.1f}x ({ab['p99_ms'] / c['p99_ms']:.1f}x)" if c["p99_ms"] else "n/a")
            a_rss = ", ".join(f"{g} {fmt(ab['peak_rss_mib'][g])}" for g in inv if ab["peak_rss_mib"].get(g))
        else:
            a_rps = a_p99 = rr = pr = a_rss = "n/a"
        vs_nginx = f"{c['requests_per_s'] / d['requests_per_s']:.2f}" if d and d["requests_per_s"] else "n/a"
        L.append(f"| {key} {CASE_TITLES[key]} | {fmt(c['requests_per_s'])} | {a_rps} | {rr} | {fmt(c['p99_ms'], 2)} | {a_p99} | {pr} | {ours_rss} | {a_rss} | {vs_nginx} |")
    L.append("")
    # extras
    L.append("## Extra cases")
    L.append("")
    s = cases.get("storm")
    if s:
        st = s["storm"][0]
        b = cases.get("b")
        L.append(f"- **Sign-in storm**: {st['concurrency']} concurrent sign-in loops (Python threads, keep-alive, "
                 f"`POST /api/auth/signin`, correct password, users 2-{1 + st['concurrency']}) during case b: "
                 f"{fmt(st['sign_ins'])} sign-ins ({fmt(st['per_s'])}/s, {st['errors']} not 200, sign-in p50 "
                 f"{fmt(st['p50_ms'])} ms, p99 {fmt(st['p99_ms'])} ms). Proxied `GET /api/workspaces` p99: "
                 f"{fmt(b['p99_ms'], 2) if b else 'n/a'} ms without, {fmt(s['p99_ms'], 2)} ms with the storm; req/s "
                 f"{fmt(b['requests_per_s']) if b else 'n/a'} -> {fmt(s['requests_per_s'])}.")
    bb = extras.get("big_body")
    if bb and "up" in bb:
        L.append(f"- **{bb['bytes'] // 2 ** 20} MiB through the proxy** (a `GATEWAY_REWRITES` rule `{SINK_RULE_PREFIX}/:path*` "
                 f"-> a Python upstream that discards uploads and streams downloads): PUT up {bb['up']['status']} (upstream received {fmt(bb['up'].get('upstream_received'))} bytes) in "
                 f"{bb['up']['seconds']} s ({bb['up']['mib_per_s']} MiB/s), GET down {bb['down']['status']} "
                 f"({fmt(bb['down']['received'])} bytes) in {bb['down']['seconds']} s ({bb['down']['mib_per_s']} MiB/s). "
                 f"Gateway RSS before {fmt(bb['rss_before_kb'] / 1024)} MiB, peak during upload "
                 f"{fmt(bb['up']['peak_rss_kb'] / 1024)} MiB, during download {fmt(bb['down']['peak_rss_kb'] / 1024)} MiB: "
                 f"growth **{fmt(bb['rss_growth_kb'] / 1024)} MiB**.")
    elif bb:
        L.append(f"- **100 MiB through the proxy**: not measured ({bb.get('error')}).")
    cs_b, cs_g = extras.get("cold_start_backend_ms"), extras.get("cold_start_gateway_ms")
    if cs_b or cs_g:
        parts = []
        if cs_b:
            parts.append(f"backend-api {', '.join(fmt(x) for x in cs_b)} ms (first start on the empty database, "
                         f"migrations included: {fmt(extras.get('backend_first_start_with_migrations_ms'))} ms)")
        if cs_g:
            parts.append(f"frontend-gateway {', '.join(fmt(x) for x in cs_g)} ms (to the first 2xx from "
                         f"`{extras.get('gateway_ready_path')}`)")
        L.append("- **Cold start** (process start to the first 2xx from /readyz, polled every 5 ms, migrations already "
                 "applied): " + "; ".join(parts) + ".")
    rv = extras.get("revoke")
    if rv:
        L.append(f"- **Session revocation**: a session signed in on gateway instance 1 answered "
                 f"{'/'.join(str(v) for v in rv['status_before'].values())} on instances 1/2; after `POST /api/auth/signout` "
                 f"({rv['signout_status']}) on instance 1 the same cookie got 401 after "
                 + ", ".join(f"{k}: {fmt(v)} ms" for k, v in rv["stopped_after_ms"].items()) + ".")
    ins = extras.get("instructions")
    if ins:
        for k, v in ins.items():
            label = {"gateway_proxied": "gateway, per proxied `GET /api/workspaces` (session cookie)",
                     "backend_direct": "backend-api, per `GET /workspaces` (bearer)"}[k]
            if "per_request" in v:
                L.append(f"- **Instructions** ({label}): **{v['per_request']:,}** ({v['tool']}, {fmt(v['requests'])} sequential "
                         f"keep-alive requests after 100 warm-up ones, total {v['total_instructions']:,} Ir, {v['non_200']} not 200; "
                         "user-space instructions of that process only).")
            else:
                L.append(f"- **Instructions** ({label}): failed ({v.get('error')}).")
    L.append("")
    # targets
    L.append("## Targets (issue 6)")
    L.append("")
    L.append("| target | measured | result |")
    L.append("|---|---|---|")
    for t in targets(cases, extras, anchor):
        L.append(f"| {t['target']} | {t['measured']} | {t['result']} |")
    L.append("")
    if meta["smoke"]:
        L.append("PASS/FAIL above come from a smoke run and decide nothing.")
        L.append("")
    if notes:
        L.append("## Notes")
        L.append("")
        for n in notes:
            L.append(f"- {n}")
        L.append("")
    L.append("## Pre-flight (one request per case)")
    L.append("")
    L.append("| case | URL | expected | got | body bytes | items | `connection` |")
    L.append("|---|---|---|---|---|---|---|")
    for p in preflight:
        L.append(f"| {p['case']} | `{p['url']}` | {p['expected']} | {p['status']} | {p['bytes']} | {fmt(p['items'])} | {p['connection']} |")
    L.append("")
    L.append("## Processes")
    L.append("")
    L.append("| group | PIDs | command | idle RSS MiB (before load) |")
    L.append("|---|---|---|---|")
    for g, info in meta.get("processes", {}).items():
        L.append(f"| {g} | {' '.join(map(str, info['pids']))} | `{info['cmd']}` | {fmt(info['idle_rss_kb'] / 1024)} |")
    L.append("")
    L.append("## Versions")
    L.append("")
    for k, v in meta["versions"].items():
        L.append(f"- {k}: {v}")
    for k, v in meta["binaries"].items():
        L.append(f"- {k}: built {v['mtime']}, {v['bytes'] / 2 ** 20:.1f} MiB")
    L.append("")
    L.append("## Rerun")
    L.append("")
    L.append("```bash")
    L.append("cargo build --release -p backend-api -p frontend-gateway")
    L.append("python3 bench/run.py            # or: just bench   (--anchor / just bench-anchor: the Node stack first)")
    L.append("DURATION=3 WARMUP=1 python3 bench/run.py --only backend,nginx   # quick smoke run of a subset")
    L.append("```")
    L.append("")
    L.append(f"Raw wrk output, logs and callgrind dumps of this run: `{meta['run_dir']}/` (not committed).")
    L.append("")
    return "\n".join(L), cases


def parse_only(spec):
    out = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if part in ALIASES:
            out += ALIASES[part]
        elif part in ALL_CASES:
            out.append(part)
        else:
            sys.exit(f"--only: unknown case {part!r} (cases: {', '.join(ALL_CASES)}; aliases: {', '.join(ALIASES)})")
    return [c for c in ALL_CASES if c in out]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="all", help="comma-separated cases: a b c d storm bigbody revoke instr "
                                                  "(aliases backend=a, gateway=b,c, nginx=d)")
    ap.add_argument("--anchor", action="store_true", help="run the anchor's ./run.sh first (needs its setup.sh done)")
    ap.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sink:
        run_sink(args.sink)
        return 0
    cfg = Config()
    cases = parse_only(args.only)
    bench = Bench(cfg, cases, args)

    def on_term(signum, frame):
        raise SystemExit(128 + signum)

    # Ctrl-C must stop the run even when started with SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    rc = 0
    try:
        meta = bench.run()
        md, summary = render(meta, bench.results, bench.extras, bench.notes, bench.preflight, bench.anchor)
        cfg.out_json.parent.mkdir(parents=True, exist_ok=True)
        data = {"meta": meta, "summary": summary, "targets": targets(summary, bench.extras, bench.anchor),
                "extras": bench.extras, "notes": bench.notes, "preflight": bench.preflight,
                "anchor": bench.anchor, "results": bench.results}
        cfg.out_json.write_text(json.dumps(data, indent=2) + "\n")
        cfg.out_md.write_text(md)
        log(f"wrote {cfg.out_md} and {cfg.out_json}")
        for t in data["targets"]:
            log(f"  {t['result']:7} {t['target']}: {t['measured']}")
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    except RuntimeError as e:
        log(f"error: {e}")
        rc = 1
    finally:
        if bench.storm is not None:
            bench.storm.stop_event.set()
        bench.procs.stop_all()
    return rc


if __name__ == "__main__":
    sys.exit(main())
