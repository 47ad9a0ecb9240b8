"""The wrk cases a, b, c, d and storm: what each one requests, its pre-flight request, and the
measured runs (warm-up, then wrk with --latency while Snapshot records RSS and CPU)."""

import json
import time
import urllib.parse

from .config import CASE_GROUPS, CASE_TITLES, PASSWORD, ROOT, log
from .net import header, request
from .procs import Snapshot, postgres_pids
from .storm import Storm
from .wrk import run_wrk


def case_def(stack, key):
    """(URL, wrk -H headers, expected status) of case `key`."""
    bp, gp, np_ = stack.ports.get("backend"), stack.ports.get("gateway"), stack.ports.get("nginx")
    if key == "a":
        return f"http://127.0.0.1:{bp}/workspaces", [f"Authorization: Bearer {stack.token}"], 200
    if key in ("b", "storm"):
        return f"http://127.0.0.1:{gp}/api/workspaces", [f"Cookie: session={stack.cookie}"], 200
    if key == "c":
        return f"http://127.0.0.1:{gp}/api/workspaces", [], 401
    if key == "d":
        return f"http://127.0.0.1:{np_}/workspaces", [], 200
    raise KeyError(key)


def preflight(findings, key, url, hdrs, expect):
    """One request as wrk will send it; a status other than `expect` becomes a note."""
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
    findings.preflight.append(pf)
    log(f"case {key} ({CASE_TITLES[key]}): preflight {status} ({len(body)} bytes, {items} items), expected {expect}")
    if status != expect:
        findings.notes.append(f"case {key}: the pre-flight request answered {status}, expected {expect}.")
    return pf


def storm_users(cfg):
    """The storm's credentials: users 2 .. 1 + STORM_CONCURRENCY, one per loop."""
    return [(f"user{i}@example.com", PASSWORD) for i in range(2, 2 + cfg.storm)]


def run_case(stack, findings, key):
    """Every run of case `key` (the storm case with fresh sign-in loops for each run)."""
    cfg = stack.cfg
    url, hdrs, expect = case_def(stack, key)
    preflight(findings, key, url, hdrs, expect)
    for run in range(1, cfg.runs + 1):
        raw = stack.run_dir / "raw" / f"case-{key}-run{run}.txt"
        url, hdrs, expect = case_def(stack, key)  # a fresh bearer token when the last one aged
        if key == "d":
            stack.refresh_nginx()
        storm = Storm(stack.ports["gateway"], storm_users(cfg), cfg.storm) if key == "storm" else None
        try:
            if storm:
                storm.start()
            run_wrk(cfg, url, hdrs, cfg.warmup, False, str(raw).replace(".txt", "-warmup.txt"))
            snap = Snapshot(stack.pids, postgres_pids(stack.local_pg))
            log(f"case {key} run {run}: wrk -t{cfg.threads} -c{cfg.connections} -d{cfg.duration}s --latency {url}")
            t0 = time.monotonic()
            w = run_wrk(cfg, url, hdrs, cfg.duration, True, raw)
            t1 = time.monotonic()
            procs, pg_cpu = snap.finish()
            if storm:
                storm.stop()
        finally:
            if storm:
                storm.stop_event.set()  # also on Ctrl-C or an error: the loops end with the run
        r = {"case": key, "case_title": CASE_TITLES[key], "run": run, "url": url, "expected_status": expect,
             "raw": str(raw.relative_to(ROOT)), "wrk": w, "processes": procs, "postgres_cpu_s": pg_cpu}
        if storm:
            r["storm"] = st = storm.stats(t0, t1)
            if st["sign_ins"] and st["errors"] > 0.1 * st["sign_ins"]:
                msg = (f"storm run {run}: {st['errors']} of {st['sign_ins']} sign-ins were not 200 (throttled?), "
                       "so the storm did little argon2 work and its p99 figure means little.")
                log("WARNING: " + msg)
                findings.notes.append(msg)
        findings.results.append(r)
        mem = ", ".join(f"{g} {p['peak_rss_kb'] / 1024:.1f} MiB" for g, p in procs.items() if g in CASE_GROUPS[key])
        cpu = ", ".join(f"{g} {p['cpu_s']} s" for g, p in procs.items() if g in CASE_GROUPS[key])
        log(f"    -> {w['requests_per_s']} req/s, p50 {w['p50_ms']} ms, p99 {w['p99_ms']} ms, non-2xx {w['non_2xx_3xx']}, "
            f"socket errors {sum(w['socket_errors'].values())}; peak RSS {mem}; CPU {cpu}"
            + (f"; storm {r['storm']}" if storm else ""))
