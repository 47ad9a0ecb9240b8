"""The rolling-restart case: 2 backend-api and 3 frontend-gateway instances behind nginx (the
cluster's load balancer), wrk on the full stack while every instance is restarted one after the
other (SIGTERM, start again, wait for /readyz), against the same load without restarts. The
services' own drain (SHUTDOWN_DRAIN_SECS: /readyz 503 at once, serving on meanwhile) and the
gateway's retry of an idempotent request on a fresh connection are what keep it at zero errors."""

import os
import subprocess
import threading
import time

from .config import BENCH, log
from .net import probe, wait_ready
from .procs import free_port
from .wrk import run_wrk

# Long enough for nginx to notice (it has no probe: the drain lets in-flight and pooled
# connections finish while new ones still succeed), short enough for a 60 s run.
DRAIN_SECS = "2"
# Between two restarts: the restarted instance takes load again before the next goes.
SETTLE_S = 2.0


def render(prefix, gw_port, gateways, be_port, backends):
    conf = (BENCH / "nginx-rolling.conf.template").read_text()
    for k, v in {"@PREFIX@": str(prefix),
                 "@GATEWAY_LISTEN@": f"127.0.0.1:{gw_port}",
                 "@GATEWAYS@": "\n    ".join(f"server 127.0.0.1:{p} max_fails=0;" for p in gateways),
                 "@BACKEND_LISTEN@": f"127.0.0.1:{be_port}",
                 "@BACKENDS@": "\n    ".join(f"server 127.0.0.1:{p} max_fails=0;" for p in backends)}.items():
        conf = conf.replace(k, v)
    (prefix / "nginx.conf").write_text(conf)


class Cluster:
    def __init__(self, stack):
        self.stack = stack
        base = stack.ports["gateway"] + 10
        self.gw_ports = [free_port(base + i) for i in range(3)]
        self.be_ports = [free_port(stack.ports["backend"] + 10 + i) for i in range(2)]
        self.lb_gw = free_port(stack.ports["nginx"] + 10)
        self.lb_be = free_port(stack.ports["nginx"] + 11)
        self.procs = {}

    def env(self, extra):
        return {"SHUTDOWN_DRAIN_SECS": DRAIN_SECS, **extra}

    def start(self, name):
        st = self.stack
        kind, i = name.split("-")
        if kind == "backend":
            port = self.be_ports[int(i)]
            p = st.start(name, [str(st.backend_bin)],
                         st.service_env(self.env({"BACKEND_API_ADDR": f"127.0.0.1:{port}"})))
        else:
            port = self.gw_ports[int(i)]
            env = st.gateway_env(port)
            env.update(self.env({"BACKEND_API_URL": f"http://127.0.0.1:{self.lb_be}"}))
            p = st.start(name, [str(st.gateway_bin)], env)
        wait_ready(p, port, ["/readyz"], 60)
        self.procs[name] = (p, port)

    def restart(self, name):
        """SIGTERM, wait for the exit, start again, wait for ready; returns (exit code, seconds)."""
        p, port = self.procs[name]
        t0 = time.monotonic()
        p.terminate()
        code = p.wait(60)
        self.stack.procs.items.remove(p)
        self.start(name)
        return code, round(time.monotonic() - t0, 2)

    def up(self, run_dir):
        for name in ("backend-0", "backend-1", "gateway-0", "gateway-1", "gateway-2"):
            self.start(name)
        prefix = run_dir / "nginx-rolling"
        prefix.mkdir(exist_ok=True)
        render(prefix, self.lb_gw, self.gw_ports, self.lb_be, self.be_ports)
        argv = ["nginx", "-e", str(prefix / "error.log"), "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
        r = subprocess.run(argv + ["-t", "-q"], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"nginx -t failed: {r.stderr}")
        p = self.stack.start("nginx-rolling", argv, dict(os.environ))
        for _ in range(200):
            if probe(self.lb_gw, "/readyz") == 200:
                break
            time.sleep(0.05)
        self.procs["nginx"] = (p, self.lb_gw)

    def down(self):
        for p, _ in self.procs.values():
            self.stack.procs.stop(p)


def rolling(stack, findings):
    cfg = stack.cfg
    cluster = Cluster(stack)
    url = f"http://127.0.0.1:{cluster.lb_gw}/api/workspaces"
    hdrs = [f"Cookie: session={stack.cookie}"]
    seconds = max(cfg.duration, 60) if not cfg.smoke else max(cfg.duration, 20)
    out = {"instances": {"backend": 2, "gateway": 3}, "seconds": seconds, "drain_secs": int(DRAIN_SECS)}
    try:
        cluster.up(stack.run_dir)
        log(f"rolling: 2 backends, 3 gateways behind nginx :{cluster.lb_gw}; {seconds} s without restarts")
        raw = stack.run_dir / "raw" / "rolling-steady.txt"
        run_wrk(cfg, url, hdrs, cfg.warmup, False, str(raw).replace(".txt", "-warmup.txt"))
        out["steady"] = run_wrk(cfg, url, hdrs, seconds, True, raw)
        restarts = []

        def restart_all():
            time.sleep(3.0)
            for name in ("backend-0", "backend-1", "gateway-0", "gateway-1", "gateway-2"):
                code, took = cluster.restart(name)
                restarts.append({"instance": name, "exit_code": code, "restart_s": took})
                log(f"rolling: {name} exited {code}, ready again after {took} s")
                time.sleep(SETTLE_S)

        log(f"rolling: {seconds} s while every instance restarts in turn")
        worker = threading.Thread(target=restart_all)
        worker.start()
        raw = stack.run_dir / "raw" / "rolling-restarts.txt"
        out["restarting"] = run_wrk(cfg, url, hdrs, seconds, True, raw)
        worker.join()
        out["restarts"] = restarts
        w = out["restarting"]
        errors = w["non_2xx_3xx"] + sum(w["socket_errors"].values())
        out["ok"] = (errors == 0 and len(restarts) == 5 and all(r["exit_code"] == 0 for r in restarts))
        log(f"rolling: steady {out['steady']['requests_per_s']} req/s p99 {out['steady']['p99_ms']} ms; "
            f"restarting {w['requests_per_s']} req/s p99 {w['p99_ms']} ms, non-2xx {w['non_2xx_3xx']}, "
            f"socket errors {w['socket_errors']}")
    finally:
        cluster.down()
    findings.extras["rolling"] = out
