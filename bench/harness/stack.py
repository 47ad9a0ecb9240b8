"""The system under test and how it is brought up: the tools and binaries a run needs, the
ports, the services' environments, starting backend-api, frontend-gateway, the upstream sink
and nginx, restarting the two services with another environment, and the setup steps (database,
seed, cold starts, credentials)."""

import json
import os
import shutil
import subprocess
import sys
import time

from . import auth, db
from .config import (API_SECRET, BENCH, BUILD_HINT, GATEWAY_CASES, PASSTHROUGH, RUN_PY, SERVICE_DEFAULTS,
                     SINK_RULE_PREFIX, TOKEN_LIFETIME_S, TOKEN_REFRESH_S, log)
from .net import wait_ready
from .procs import Processes, free_port


class Stack:
    """The processes of one run (stopped by PID at the end), their ports and PIDs, and the
    credentials the load uses (`token` for user1, `cookie` for user1's session)."""

    GATEWAY_READY = ["/readyz", "/healthz", "/api/auth/providers"]

    def __init__(self, cfg, cases, run_dir, findings):
        self.cfg, self.cases, self.run_dir, self.findings = cfg, cases, run_dir, findings
        self.procs = Processes()
        self.pids = {"gateway": None, "backend": None, "proxy": None}
        self.ports = {}
        self.local_pg = cfg.db_host in ("127.0.0.1", "localhost", "::1")
        self.session_key = os.urandom(48).hex()  # 96 bytes
        self.backend_bin = cfg.bin_dir / "backend-api"
        self.gateway_bin = cfg.bin_dir / "frontend-gateway"
        self.mint_bin = cfg.bin_dir / "mint-token"
        self.need_gateway = bool(GATEWAY_CASES & set(cases)) or ("instr" in cases)
        self.need_otlp = bool({"telemetry", "instr"} & set(cases))  # the OTLP receiver (telemetry.py)
        self.backend_proc = self.gateway_proc = self.otlp_proc = None
        self._token, self._token_minted, self._token_user = None, 0.0, None
        self.nginx_token = None  # the token in nginx.conf (case d)
        self.cookie = None

    # -- before anything starts

    def check_tools(self):
        missing = []
        need = ["psql"]
        if set(self.cases) & {"a", "b", "c", "d", "storm", "telemetry"}:
            need.append("wrk")
        if "d" in self.cases:
            need.append("nginx")
        for tool in need:
            if shutil.which(tool) is None:
                missing.append(tool)
        for b in (self.backend_bin, self.mint_bin):
            if not b.exists():
                missing.append(str(b))
        if self.need_gateway and not self.gateway_bin.exists():
            missing.append(str(self.gateway_bin))
        if missing:
            sys.exit("missing: " + ", ".join(missing) +
                     f"\n(build: {BUILD_HINT}; "
                     "tools: apt-get install -y wrk nginx postgresql-client; or use --only)")

    def pick_ports(self):
        for k, v in self.cfg.ports.items():
            self.ports[k] = free_port(v)
        self.ports["gateway2"] = free_port(self.ports["gateway"] + 1)
        self.ports["gateway_instr"] = free_port(self.ports["gateway"] + 2)
        self.ports["backend_instr"] = free_port(self.ports["backend"] + 2)
        # METRICS_ADDR of the services when metrics are on (the telemetry and instr cases)
        self.ports["backend_metrics"] = free_port(self.ports["backend"] + 3)
        self.ports["gateway_metrics"] = free_port(self.ports["gateway"] + 3)
        self.ports["gateway_instr_metrics"] = free_port(self.ports["gateway"] + 4)
        self.ports["backend_instr_metrics"] = free_port(self.ports["backend"] + 4)

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

    def start_backend(self, name="backend-api", port=None, wrapper=(), timeout=60, env=None):
        """Starts a backend-api (under `wrapper`, e.g. valgrind; `env` added to its environment);
        returns (process, ms to a 2xx /readyz)."""
        port = port or self.ports["backend"]
        p = self.start(name, [*wrapper, str(self.backend_bin)],
                       self.service_env({"BACKEND_API_ADDR": f"127.0.0.1:{port}", **(env or {})}))
        ms, _ = wait_ready(p, port, ["/readyz"], timeout)
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

    def start_gateway(self, name="frontend-gateway", port=None, wrapper=(), timeout=60, env=None):
        """Starts a frontend-gateway (`env` added to its environment); returns (process, ms to the
        first 2xx, the path that answered)."""
        port = port or self.ports["gateway"]
        p = self.start(name, [*wrapper, str(self.gateway_bin)], {**self.gateway_env(port), **(env or {})})
        ms, path = wait_ready(p, port, self.GATEWAY_READY, timeout)
        return p, ms, path

    # -- setup steps

    def setup_backend(self):
        extras = self.findings.extras
        log("starting backend-api on an empty database (applies the migrations)")
        p, ms = self.start_backend()
        extras["backend_first_start_with_migrations_ms"] = ms
        log(f"  ready after {ms} ms (including migrations); seeding")
        t0 = time.monotonic()
        counts = db.seed(self.cfg.bench_url)
        log(f"  seeded in {time.monotonic() - t0:.1f} s: users|workspaces|members = {counts}")
        extras["seed"] = counts
        self.procs.stop(p)
        starts = []
        for i in range(self.cfg.cold_starts):
            p, ms = self.start_backend()
            starts.append(ms)
            if i + 1 < self.cfg.cold_starts:
                self.procs.stop(p)
        log(f"backend-api cold starts to 200 /readyz (migrations applied): {starts} ms")
        extras["cold_start_backend_ms"] = starts
        self.backend_proc, self.pids["backend"] = p, p.pid
        user_id, email = db.user_id_and_email(self.cfg.bench_url, "user1@example.com")
        self._token_user = (user_id, email)

    @property
    def token(self):
        """A bearer token for user1, re-minted once older than TOKEN_REFRESH_S (the backend refuses
        tokens living longer than TOKEN_LIFETIME_S)."""
        if self._token is None or time.monotonic() - self._token_minted > TOKEN_REFRESH_S:
            self._token = auth.mint_token(self.mint_bin, *self._token_user, TOKEN_LIFETIME_S)
            self._token_minted = time.monotonic()
        return self._token

    def setup_gateway(self):
        if not self.need_gateway:
            return
        extras = self.findings.extras
        self.start("sink", [sys.executable, str(RUN_PY), "--sink", str(self.ports["sink"])], dict(os.environ))
        starts, path = [], None
        for i in range(self.cfg.cold_starts):
            p, ms, path = self.start_gateway()
            starts.append(ms)
            if i + 1 < self.cfg.cold_starts:
                self.procs.stop(p)
        self.gateway_proc, self.pids["gateway"] = p, p.pid
        extras["cold_start_gateway_ms"] = starts
        extras["gateway_ready_path"] = path
        log(f"frontend-gateway cold starts to 2xx {path}: {starts} ms")
        if path != "/readyz":
            self.findings.notes.append(f"frontend-gateway has no /readyz answering 200; its cold start was timed to the "
                                       f"first 2xx from `{path}` instead.")
        gp = self.ports["gateway"]
        # A real argon2id hash: register a helper user, copy its hash to every seeded user.
        auth.register_helper(gp)
        db.share_helper_hash(self.cfg.bench_url)
        self.cookie = auth.sign_in(gp, "user1@example.com")
        log("signed in as user1@example.com (session cookie obtained)")

    # -- restarts with another environment (the telemetry case)

    def stop_services(self):
        """Stops the run's frontend-gateway, then its backend-api (each flushes its spans on the way out)."""
        for attr, group in (("gateway_proc", "gateway"), ("backend_proc", "backend")):
            p = getattr(self, attr)
            if p is not None:
                self.procs.stop(p, timeout=30)
                setattr(self, attr, None)
                self.pids[group] = None

    def start_services(self, backend_env=None, gateway_env=None):
        """Starts the run's backend-api and frontend-gateway again on their usual ports, each with
        its `*_env` added to its environment; the session cookie stays valid (same database and
        SESSION_KEY)."""
        p, _ = self.start_backend(env=backend_env)
        self.backend_proc, self.pids["backend"] = p, p.pid
        if self.need_gateway:
            p, _, _ = self.start_gateway(env=gateway_env)
            self.gateway_proc, self.pids["gateway"] = p, p.pid

    def write_nginx_conf(self, prefix):
        ka = f"keepalive {self.cfg.nginx_keepalive};" if self.cfg.nginx_keepalive > 0 else ""
        self.nginx_token = self.token
        conf = (BENCH / "nginx.conf.template").read_text()
        for k, v in {"@PREFIX@": str(prefix), "@LISTEN@": f"127.0.0.1:{self.ports['nginx']}",
                     "@UPSTREAM@": f"127.0.0.1:{self.ports['backend']}", "@TOKEN@": self.nginx_token,
                     "@KEEPALIVE@": ka}.items():
            conf = conf.replace(k, v)
        (prefix / "nginx.conf").write_text(conf)

    def refresh_nginx(self):
        """Before a case d run: when the token was re-minted, rewrites nginx.conf and reloads nginx."""
        if self.nginx_token == self.token:
            return
        prefix = self.run_dir / "nginx"
        self.write_nginx_conf(prefix)
        subprocess.run(["nginx", "-e", str(prefix / "error.log"), "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                        "-s", "reload"], check=True, capture_output=True)
        time.sleep(0.5)  # the new workers take over

    def setup_nginx(self):
        if "d" not in self.cases:
            return
        prefix = self.run_dir / "nginx"
        prefix.mkdir(exist_ok=True)
        self.write_nginx_conf(prefix)
        argv = ["nginx", "-e", str(prefix / "error.log"), "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
        r = subprocess.run(argv + ["-t", "-q"], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"nginx -t failed: {r.stderr}")
        p = self.start("nginx", argv, dict(os.environ))
        wait_ready(p, self.ports["nginx"], ["/readyz"], 30)
        time.sleep(0.3)  # let the workers come up
        self.pids["proxy"] = p.pid
