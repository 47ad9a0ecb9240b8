"""The benchmark harness behind `bench/run.py` (`just bench`). Python 3 standard library only.

What a run does (every server bound to 127.0.0.1, every process it starts stopped at the end, also
on Ctrl-C or an error; only the database BENCH_DB (default `bench`) is dropped and re-created):
  1. creates BENCH_DB, starts backend-api once (it applies the migrations), seeds it with
     bench/seed.sql (the anchor's data shape: 1000 users x 10 workspaces), then measures cold
     starts (process start -> first 200 from /readyz, migrations already applied);
  2. starts frontend-gateway (cold starts measured the same way), registers a helper user
     through POST /api/auth/register to get a real argon2id hash, gives every seeded user that
     hash (the password is known), signs user1 in for the session cookie, has the project's
     `mint-token` binary mint a bearer token for user1 (300 s, the most the backend accepts; re-minted
     before a case run once it is 200 s old, nginx reloaded with it), and starts nginx (case d);
  3. runs wrk (THREADS threads, CONNECTIONS connections, WARMUP s warm-up, then DURATION s
     measured with --latency) for the cases
        a  backend direct, bearer token                 -> 200
        b  full stack through the gateway, session cookie -> 200
        c  full stack, no cookie                        -> 401
        d  nginx -> backend, nginx adds a fixed bearer   -> 200
        storm  case b while STORM_CONCURRENCY (default: what the default hashing queue holds, 5 x ceil(cores / 2)) loops sign in continuously
     recording req/s, p50/p99, non-2xx, socket errors, per-process peak RSS (VmHWM after
     `echo 5 > /proc/PID/clear_refs`) and CPU seconds (utime+stime deltas);
  4. extra checks: 100 MiB up and down through the gateway to a small upstream (an extra
     GATEWAY_REWRITES rule) with the gateway's peak-RSS growth; session revocation seen by a
     second gateway instance; metrics and traces on vs off (case `telemetry`: case b on services
     restarted for each run, TELEMETRY_PAIRS interleaved off/on pairs, then once with every
     request sampled; /metrics scraped every second, spans exported to a local OTLP/HTTP receiver);
     instructions per proxied request (callgrind), the gateway's both with telemetry off and on;
  5. writes BENCHMARKS.md (repository root) and bench/results/latest.json, comparing with the
     anchor's figures from ../shared/anchors/seed-stack/results/summary.md (an earlier run on a
     machine like this one) or, with --anchor, with the anchor run just before ours.

Modules: config (settings, knobs, constants), procs (processes, ports, /proc), net (HTTP), db
(psql, seed), auth (token, helper user, sign-in), stack (starting and setting up the services),
wrk, cases (a b c d storm), storm, sink (the 100 MiB upstream), checks (bigbody, revoke),
telemetry (metrics and traces on vs off), otlp_sink (its OTLP/HTTP receiver), telemetry_report
(its figures and section), instructions (callgrind/perf), anchor, summary (aggregates, targets),
report (BENCHMARKS.md, latest.json), bench (one run, start to end).
"""
