"""The run's settings: paths, the cases and their titles, the benchmark-only secrets, the
environment knobs (Config), the --only case selection, and the harness's log line."""

import os
import re
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
ROOT = BENCH.parent
# The entry point; the upstream sink runs as `python3 bench/run.py --sink PORT`.
RUN_PY = BENCH / "run.py"
ALL_CASES = ["a", "b", "c", "d", "storm", "bigbody", "revoke", "rolling", "telemetry", "instr"]
ALIASES = {"backend": ["a"], "gateway": ["b", "c"], "nginx": ["d"], "all": ALL_CASES}
GATEWAY_CASES = {"b", "c", "storm", "bigbody", "revoke", "rolling", "telemetry"}
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
# The bearer token's lifetime (mint-token's third argument): the longest the backend accepts
# (auth_contract::MAX_LIFETIME_SECS). The harness mints a new one once its token is older than
# TOKEN_REFRESH_S, before each case run (a run is WARMUP + DURATION seconds).
TOKEN_LIFETIME_S = 300
TOKEN_REFRESH_S = 200
# Service settings passed through from the harness's environment when set (A/B runs).
PASSTHROUGH = ["HTTP_WORKERS", "DATABASE_MAX_CONNECTIONS", "SESSION_CACHE_MS", "PASSWORD_HASH_CONCURRENCY"]
# No drain when the harness stops a process between cases (the rolling-restart case sets its
# own). Every process of a case shares the same 2 cores with wrk and PostgreSQL: one actix worker per
# service (like the anchor's one event loop per Node process) keeps the runnable threads below
# the core count's multiple that makes tails long. Overridable (HTTP_WORKERS=2 ...) for A/B runs.
SERVICE_DEFAULTS = {"HTTP_WORKERS": "1", "SHUTDOWN_DRAIN_SECS": "0"}
# The one cargo command that builds every binary the harness runs (named in error messages).
BUILD_HINT = "cargo build --release -p backend-api -p frontend-gateway -p auth-contract --bins"


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


def default_bin_dir():
    """cargo's target directory + /release, as scripts/target-dir prints it (CARGO_TARGET_DIR,
    a cargo config's build.target-dir, or the workspace's target/)."""
    script = ROOT / "scripts" / "target-dir"
    try:
        r = subprocess.run([str(script)], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        sys.exit(f"{script} could not run ({e}); set BIN_DIR to the directory of the release binaries")
    target = r.stdout.strip()
    if r.returncode != 0 or not target:
        sys.exit(f"{script} failed ({r.returncode}): {r.stderr.strip()}\n"
                 "(set BIN_DIR to the directory of the release binaries)")
    return Path(target) / "release"


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
        self.ports = {
            "backend": env_int("BACKEND_PORT", 18080),
            "gateway": env_int("GATEWAY_PORT", 13000),
            "nginx": env_int("NGINX_PORT", 18090),
            "sink": env_int("SINK_PORT", 18099),
            "otlp": env_int("OTLP_PORT", 18097),
        }
        self.nginx_keepalive = env_int("NGINX_UPSTREAM_KEEPALIVE", 64)
        # The sign-in storm's loops: by default what the gateway's default hashing queue holds
        # (PASSWORD_HASH_CONCURRENCY, default ceil(cores / 2), hashing, and PASSWORD_HASH_QUEUE,
        # default 4x that, waiting), so the storm runs within the default; more loops measure
        # the 503 answers of a full queue (the storm counts them).
        hashing = env_int("PASSWORD_HASH_CONCURRENCY", -(-(os.cpu_count() or 1) // 2))
        self.storm = env_int("STORM_CONCURRENCY", 5 * hashing)
        self.big_mib = env_int("BIG_BODY_MIB", 100)
        self.instr_requests = env_int("INSTR_REQUESTS", 2000)
        # The telemetry case: interleaved (off, on) pairs of full-stack runs, then one always_on run.
        self.telemetry_pairs = max(1, env_int("TELEMETRY_PAIRS", 3))
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
        # Last: the only knob whose default costs a subprocess (cargo metadata).
        self.bin_dir = Path(os.environ["BIN_DIR"]) if os.environ.get("BIN_DIR") else default_bin_dir()

    @property
    def smoke(self):
        return self.duration < 20 or self.warmup < 5


def parse_only(spec):
    """--only's comma-separated cases and aliases -> the cases, in ALL_CASES order."""
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
