"""Metrics and traces on vs off (issue 15). The full-stack case (b) through freshly started services
with the telemetry settings off, as every other case runs them, and on: METRICS_ADDR on each
service with /metrics of both scraped once a second (as a Prometheus would, more often than its
usual 15 s), and spans exported by OTLP/HTTP to the bench's receiver (otlp_sink.py) with the
default sampling. TELEMETRY_PAIRS interleaved pairs (off, on / on, off alternately, so that a drift
of the machine's speed over the case weighs on both sides alike), each run WARMUP + DURATION s;
then once with every request sampled (OTEL_TRACES_SAMPLER=always_on), without a target.
Also the settings themselves and the receiver's start and counts, which the instr case uses."""

import http.client
import json
import os
import sys
import threading
import time

from .cases import case_def
from .config import ROOT, RUN_PY, log
from .net import request, wait_ready
from .procs import Snapshot, postgres_pids
from .telemetry_report import summarize, trace_exports
from .wrk import run_wrk

SCRAPE_INTERVAL_S = 1.0


def telemetry_env(stack, variant, metrics_port):
    """Issue 15's settings for one service: none when `variant` is "off"; for "on" METRICS_ADDR on
    `metrics_port` and OTLP export to the receiver with the default sampling
    (parentbased_traceidratio 0.01); "always_on" also samples every request."""
    if variant == "off":
        return {}
    env = {"METRICS_ADDR": f"127.0.0.1:{metrics_port}",
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{stack.ports['otlp']}"}
    if variant == "always_on":
        env["OTEL_TRACES_SAMPLER"] = "always_on"
    elif variant != "on":
        raise ValueError(variant)
    return env


# -- the OTLP receiver


def start_receiver(stack):
    """Starts the OTLP/HTTP receiver (`bench/run.py --otlp-sink PORT`) when a selected case needs it."""
    if not stack.need_otlp:
        return
    port = stack.ports["otlp"]
    stack.otlp_proc = stack.start("otlp-receiver", [sys.executable, str(RUN_PY), "--otlp-sink", str(port)],
                                  dict(os.environ))
    wait_ready(stack.otlp_proc, port, ["/stats"], 30)
    log(f"OTLP/HTTP receiver on :{port} (POST /v1/traces)")


def receiver_stats(stack, reset=False):
    """The receiver's counts since its last reset (reset=True: and from zero again)."""
    status, _, body = request(stack.ports["otlp"], "POST" if reset else "GET", "/stats/reset" if reset else "/stats")
    if status != 200:
        raise RuntimeError(f"the OTLP receiver answered {status} to its stats")
    return json.loads(body)


# -- the scrapes


class Scraper:
    """GET /metrics of each target every SCRAPE_INTERVAL_S, each over its own keep-alive connection."""

    def __init__(self, targets):
        self.targets = targets  # name -> port
        self.stop_event = threading.Event()
        self.stats = {n: {"ok": 0, "failed": 0, "last_error": None, "bytes": None, "series": None, "ms": []}
                      for n in targets}
        self.last_body = {}
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _scrape(self, conns, name, port):
        st = self.stats[name]
        conn = conns.pop(name, None) or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        t0 = time.monotonic()
        try:
            conn.request("GET", "/metrics", headers={"Accept": "text/plain;version=0.0.4"})
            res = conn.getresponse()
            body = res.read()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            st["failed"] += 1
            st["last_error"] = f"{type(e).__name__}: {e}"
            return
        conns[name] = conn
        if res.status != 200:
            st["failed"] += 1
            st["last_error"] = f"status {res.status}"
            return
        st["ok"] += 1
        st["ms"].append((time.monotonic() - t0) * 1000.0)
        st["bytes"] = len(body)
        st["series"] = sum(1 for line in body.split(b"\n") if line and not line.startswith(b"#"))
        self.last_body[name] = body

    def _loop(self):
        conns, t = {}, time.monotonic()
        while not self.stop_event.is_set():
            for name, port in self.targets.items():
                self._scrape(conns, name, port)
            t += SCRAPE_INTERVAL_S
            self.stop_event.wait(max(0.0, t - time.monotonic()))
        for c in conns.values():
            c.close()

    def start(self):
        self.thread.start()

    def stop(self, keep_as):
        """Ends the scrapes; keeps each target's last answer in the file keep_as(name); returns the counts."""
        self.stop_event.set()
        self.thread.join(10)
        out = {}
        for name, st in self.stats.items():
            ms = sorted(st.pop("ms"))
            out[name] = {**st, "p50_ms": round(ms[len(ms) // 2], 2) if ms else None,
                         "max_ms": round(ms[-1], 2) if ms else None}
            if name in self.last_body:
                keep_as(name).write_bytes(self.last_body[name])
        return out


# -- the case


def order_of(pairs):
    order = []
    for i in range(pairs):
        order += ["off", "on"] if i % 2 == 0 else ["on", "off"]
    return order + ["always_on"]


def run_variant(stack, findings, variant, n):
    cfg, ports = stack.cfg, stack.ports
    stack.stop_services()
    receiver_stats(stack, reset=True)  # from here on the receiver counts this run's exports
    env = {"backend": telemetry_env(stack, variant, ports["backend_metrics"]),
           "gateway": telemetry_env(stack, variant, ports["gateway_metrics"])}
    stack.start_services(env["backend"], env["gateway"])
    url, hdrs, _ = case_def(stack, "b")
    status = request(ports["gateway"], "GET", "/api/workspaces", {"Cookie": f"session={stack.cookie}"})[0]
    if status != 200:
        findings.notes.append(f"telemetry run {n} ({variant}): the proxied pre-flight request answered {status}, expected 200.")
    raw = stack.run_dir / "raw" / f"telemetry-run{n}-{variant}.txt"
    scraper = None
    if variant != "off":
        scraper = Scraper({"gateway": ports["gateway_metrics"], "backend": ports["backend_metrics"]})
        scraper.start()
    try:
        warm = run_wrk(cfg, url, hdrs, cfg.warmup, False, str(raw).replace(".txt", "-warmup.txt"))
        groups = {"gateway": stack.pids["gateway"], "backend": stack.pids["backend"], "receiver": stack.otlp_proc.pid}
        snap = Snapshot(groups, postgres_pids(stack.local_pg))
        log(f"telemetry run {n} ({variant}): wrk -t{cfg.threads} -c{cfg.connections} -d{cfg.duration}s --latency {url}")
        w = run_wrk(cfg, url, hdrs, cfg.duration, True, raw)
        procs, pg_cpu = snap.finish()
    finally:
        scrapes = scraper.stop(lambda name: raw.with_name(f"{raw.stem}-metrics-{name}.txt")) if scraper else None
    stack.stop_services()  # a service that flushes its queued spans at shutdown has exported them now
    otlp = receiver_stats(stack)
    r = {"variant": variant, "run": n, "url": url, "raw": str(raw.relative_to(ROOT)), "env": env,
         "preflight_status": status, "warmup_requests": warm["requests"], "wrk": w, "processes": procs,
         "postgres_cpu_s": pg_cpu, "scrapes": scrapes, "otlp": otlp}
    svc = ", ".join(f"{s} {v['spans']}" for s, v in otlp["services"].items()) or "none"
    log(f"    -> {w['requests_per_s']} req/s, p50 {w['p50_ms']} ms, p99 {w['p99_ms']} ms, non-2xx {w['non_2xx_3xx']}, "
        f"socket errors {sum(w['socket_errors'].values())}; CPU gateway {procs['gateway']['cpu_s']} s, backend "
        f"{procs['backend']['cpu_s']} s, receiver {procs['receiver']['cpu_s']} s; OTLP {trace_exports(otlp)} exports, "
        f"{otlp['bytes']} bytes, spans: {svc}"
        + ("; /metrics scrapes ok/failed: " + ", ".join(f"{k} {v['ok']}/{v['failed']}" for k, v in scrapes.items())
           if scrapes else ""))
    return r


def telemetry(stack, findings):
    order = order_of(stack.cfg.telemetry_pairs)
    log(f"telemetry: full stack with metrics and traces off and on in interleaved pairs, then always_on: "
        f"{', '.join(order)}")
    runs = [run_variant(stack, findings, v, n) for n, v in enumerate(order, 1)]
    stack.start_services()  # off again, for the cases after this one
    out = {"order": order, "pairs": stack.cfg.telemetry_pairs, "scrape_interval_s": SCRAPE_INTERVAL_S,
           "summary": summarize(runs), "runs": runs}
    findings.extras["telemetry"] = out
    s = out["summary"]
    for msg in s.get("problems", []):
        log("WARNING: telemetry: " + msg)
        findings.notes.append("Metrics and traces: " + msg)
    if "ratio" in s:
        log(f"telemetry: on / off req/s = {s['ratio']:.3f} (pairs: {', '.join(f'{x:.3f}' for x in s['pair_ratios'])}); "
            f"always_on / off = {s.get('always_on_ratio', 0):.3f}")
