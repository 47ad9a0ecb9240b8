"""Processes: starting and stopping the ones the harness owns, free ports, and what /proc says
about a process tree (descendants, RSS, CPU ticks, clear_refs, PostgreSQL's processes), with
Snapshot measuring peak RSS and CPU over one measured window."""

import os
import pwd
import signal
import socket
import subprocess
import time
from pathlib import Path

from .config import log


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


def idle_info(pid):
    """A process tree before any load: its PIDs, the root's command line, the summed RSS."""
    pids = descendants(pid)
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    return {"pids": pids, "cmd": cmdline[:120], "idle_rss_kb": sum(status_kb(p, "VmRSS") for p in pids)}


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
