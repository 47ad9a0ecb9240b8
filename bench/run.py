#!/usr/bin/env python3
"""Benchmark harness for backend-api and frontend-gateway. Python 3 standard library only.

Builds and installs nothing. Expects:
  * release binaries backend-api, frontend-gateway and mint-token (`cargo build --release
    -p backend-api -p frontend-gateway -p auth-contract --bins`) in BIN_DIR, by default cargo's
    target directory (as scripts/target-dir prints it, CARGO_TARGET_DIR honoured) + /release;
  * wrk, nginx (case d), psql, a PostgreSQL server at DATABASE_URL (default
    postgres://postgres@127.0.0.1:5432/postgres) on which it may create a database;
  * valgrind (callgrind) for the instruction counts (skipped with a note otherwise; `perf stat`
    is used instead when valgrind is missing and the CPU exposes an instruction counter).
What a run does, step by step, is in bench/harness/__init__.py (the package holding the code).

Usage:
  python3 bench/run.py                      # everything (about 10 minutes, 3 of them the telemetry case)
  DURATION=3 WARMUP=1 python3 bench/run.py  # smoke run (figures are not measurements)
  python3 bench/run.py --only backend,nginx # a subset: a b c d storm bigbody revoke rolling telemetry instr
                                            # (aliases: backend=a, gateway=b,c, nginx=d)
  python3 bench/run.py --anchor             # run the anchor's ./run.sh first (needs its setup.sh)

Knobs (environment): DURATION (20), WARMUP (5), RUNS (1), THREADS (2), CONNECTIONS (64),
WRK_TIMEOUT (10s), DATABASE_URL, BENCH_DB (bench), BIN_DIR (<cargo target dir>/release),
BACKEND_PORT (18080), GATEWAY_PORT (13000), NGINX_PORT (18090), SINK_PORT (18099), OTLP_PORT (18097),
NGINX_UPSTREAM_KEEPALIVE (64), STORM_CONCURRENCY (5 x ceil(cores / 2): the default hashing queue), BIG_BODY_MIB (100), INSTR_REQUESTS (2000),
TELEMETRY_PAIRS (3: interleaved off/on pairs of the telemetry case, each WARMUP + DURATION s),
COLD_STARTS (3), ANCHOR_DIR (../shared/anchors/seed-stack), BENCH_OUT (BENCHMARKS.md), BENCH_JSON
(bench/results/latest.json). HTTP_WORKERS (1), DATABASE_MAX_CONNECTIONS, SESSION_CACHE_MS and
PASSWORD_HASH_CONCURRENCY are passed through to the services when set.
"""

import argparse
import signal
import sys

from harness import report
from harness.bench import Bench
from harness.config import Config, log, parse_only
from harness.otlp_sink import run_otlp_sink
from harness.sink import run_sink


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="all", help="comma-separated cases: a b c d storm bigbody revoke rolling telemetry instr "
                                                  "(aliases backend=a, gateway=b,c, nginx=d)")
    ap.add_argument("--anchor", action="store_true", help="run the anchor's ./run.sh first (needs its setup.sh done)")
    ap.add_argument("--sink", type=int, help=argparse.SUPPRESS)  # the upstream of the 100 MiB case
    ap.add_argument("--otlp-sink", type=int, help=argparse.SUPPRESS)  # the OTLP/HTTP receiver (telemetry, instr)
    args = ap.parse_args()
    if args.sink:
        run_sink(args.sink)
        return 0
    if args.otlp_sink:
        run_otlp_sink(args.otlp_sink)
        return 0
    cfg = Config()
    bench = Bench(cfg, parse_only(args.only), anchor=args.anchor)

    def on_term(signum, frame):
        raise SystemExit(128 + signum)

    # Ctrl-C must stop the run even when started with SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    rc = 0
    try:
        report.write(cfg, bench.run(), bench.findings)
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    except RuntimeError as e:
        log(f"error: {e}")
        rc = 1
    finally:
        bench.stop()
    return rc


if __name__ == "__main__":
    sys.exit(main())
