"""One benchmark run, start to end: the anchor, the stack's setup, the selected cases in their
order, and the run's metadata (machine, versions, settings) for the report."""

import datetime
import os
import platform
import subprocess
import time
from pathlib import Path

from . import checks, db, telemetry
from .anchor import read_anchor, run_anchor
from .cases import run_case
from .config import BENCH, PASSTHROUGH, ROOT, SERVICE_DEFAULTS, log
from .instructions import instructions
from .procs import idle_info
from .report import Findings
from .rolling import rolling
from .stack import Stack


class Bench:
    def __init__(self, cfg, cases, anchor):
        self.cfg, self.cases, self.run_anchor = cfg, cases, anchor
        self.run_dir = BENCH / ".run" / time.strftime("%Y%m%d-%H%M%S")
        (self.run_dir / "raw").mkdir(parents=True, exist_ok=True)
        self.findings = Findings()
        self.stack = Stack(cfg, cases, self.run_dir, self.findings)
        self.load_before = None
        self.idle = {}

    def run(self):
        """Runs everything selected; returns the run's metadata."""
        cfg, stack, findings = self.cfg, self.stack, self.findings
        self.load_before = [round(x, 2) for x in os.getloadavg()]
        if self.load_before[0] > 0.8:
            log(f"WARNING: load average {self.load_before} before the run: other work (a compile?) will distort the figures")
        stack.check_tools()
        anchor_dir = run_anchor(cfg, self.run_dir) if self.run_anchor else None
        if self.run_anchor and anchor_dir is None:
            findings.notes.append("`--anchor` was given but the anchor could not run (see the log); its stored results were used.")
        findings.anchor = read_anchor(anchor_dir or (cfg.anchor_dir / "results"))
        findings.anchor["same_run"] = anchor_dir is not None
        stack.pick_ports()
        db.recreate(cfg)
        stack.setup_backend()
        stack.setup_gateway()
        stack.setup_nginx()
        telemetry.start_receiver(stack)
        time.sleep(0.5)
        self.idle = {g: idle_info(pid) for g, pid in stack.pids.items() if pid}
        for key in ("a", "b", "c", "d"):
            if key in self.cases:
                run_case(stack, findings, key)
        # The storm runs last among the gateway cases: argon2's memory stays mapped afterwards and
        # would hide the 100 MiB case's growth.
        if "bigbody" in self.cases:
            checks.big_body(stack, findings)
        if "revoke" in self.cases:
            checks.revoke(stack, findings)
        if "rolling" in self.cases:
            rolling(stack, findings)
        if "storm" in self.cases:
            run_case(stack, findings, "storm")
        # Restarts both services (with the settings of each run), and leaves them running as before.
        if "telemetry" in self.cases:
            telemetry.telemetry(stack, findings)
        if "instr" in self.cases:
            instructions(stack, findings)
        return self.meta()

    def stop(self):
        """Stops every process the run started (also after Ctrl-C or an error)."""
        self.stack.procs.stop_all()

    def meta(self):
        def cmd(argv):
            try:
                r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
                return (r.stdout or r.stderr).strip().splitlines()[0]
            except (OSError, IndexError, subprocess.TimeoutExpired):
                return "n/a"

        cfg, stack = self.cfg, self.stack
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
        for b in (stack.backend_bin, stack.gateway_bin):
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
            "wrk": {"threads": cfg.threads, "connections": cfg.connections, "duration_s": cfg.duration,
                    "warmup_s": cfg.warmup, "runs": cfg.runs, "timeout": cfg.wrk_timeout},
            "smoke": cfg.smoke,
            "service_settings": {**SERVICE_DEFAULTS, **{k: os.environ[k] for k in PASSTHROUGH if k in os.environ}},
            "cases": self.cases,
            "ports": stack.ports,
            "database": f"{cfg.db_host}/{cfg.bench_db}",
            "versions": {
                "rustc": cmd(["rustc", "-V"]),
                "wrk": cmd(["dpkg-query", "-W", "-f=${Version}", "wrk"]),
                "nginx": cmd(["nginx", "-v"]).replace("nginx version: ", ""),
                "postgresql": db.psql(cfg.database_url, sql="SHOW server_version", check=False) or "n/a",
                "valgrind": cmd(["valgrind", "--version"]),
                "python": platform.python_version(),
            },
            "run_dir": str(self.run_dir.relative_to(ROOT)),
            "processes": self.idle,
        }
