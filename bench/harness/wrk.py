"""Running wrk and parsing its report (the same fields as the anchor's bench/report.py)."""

import re
import subprocess
from pathlib import Path

from .config import log

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


def run_wrk(cfg, url, hdrs, seconds, latency, raw):
    """wrk with the run's threads, connections and timeout; its output is kept in `raw`."""
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
