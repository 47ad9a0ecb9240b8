"""Instructions per request: a second backend-api or frontend-gateway under callgrind (or
`perf stat` when valgrind is missing), counting user-space instructions over INSTR_REQUESTS
sequential keep-alive requests after a warm-up."""

import http.client
import shutil
import signal
import subprocess
import time

from .config import ROOT, log


def instructions(stack, findings):
    out = {}
    if shutil.which("valgrind") and shutil.which("callgrind_control"):
        tool = "callgrind"
    elif perf_supported():
        tool = "perf"
    else:
        findings.notes.append("Instruction counts skipped: valgrind is missing and `perf stat -e instructions` is not supported here.")
        return
    n = stack.cfg.instr_requests
    if "b" in stack.cases or stack.need_gateway:
        out["gateway_proxied"] = count_instructions(
            stack, findings, tool, "gateway", n, "/api/workspaces", {"Cookie": f"session={stack.cookie}"})
    out["backend_direct"] = count_instructions(
        stack, findings, tool, "backend", n, "/workspaces", {"Authorization": f"Bearer {stack.token}"})
    findings.extras["instructions"] = out


def perf_supported():
    if not shutil.which("perf"):
        return False
    r = subprocess.run(["perf", "stat", "-x,", "-e", "instructions:u", "true"], capture_output=True, text=True)
    return r.returncode == 0 and "<not supported>" not in r.stderr and "<not counted>" not in r.stderr


def count_instructions(stack, findings, tool, which, n, path, headers):
    """Runs a second instance of `which` under the tool, sends n sequential keep-alive requests."""
    run_dir = stack.run_dir
    port = stack.ports[f"{which}_instr"]
    cg_out = run_dir / f"callgrind.{which}.%p.out"
    wrapper = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={cg_out}"] if tool == "callgrind" else []
    log(f"instruction count: {which} under {tool} on :{port}, {n} requests to {path}")
    if which == "gateway":
        p, _, _ = stack.start_gateway(f"{which}-{tool}", port, wrapper, timeout=300)
    else:
        p, _ = stack.start_backend(f"{which}-{tool}", port, wrapper, timeout=300)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def send(k):
        bad = 0
        for _ in range(k):
            conn.request("GET", path, headers=headers)
            res = conn.getresponse()
            res.read()
            bad += res.status != 200
        return bad

    try:
        send(min(100, n))  # warm-up: connection pools, lazy statics
        perf = None
        if tool == "callgrind":
            subprocess.run(["callgrind_control", "-i", "on", str(p.pid)], capture_output=True, check=True, timeout=60)
            subprocess.run(["callgrind_control", "-z", str(p.pid)], capture_output=True, check=True, timeout=60)
        else:
            perf_out = run_dir / f"perf.{which}.txt"
            perf = subprocess.Popen(["perf", "stat", "-x,", "-e", "instructions:u", "-p", str(p.pid), "-o", str(perf_out)])
            time.sleep(0.3)
        t0 = time.monotonic()
        bad = send(n)
        secs = time.monotonic() - t0
        if tool == "callgrind":
            before = set(run_dir.glob(f"callgrind.{which}.*.out*"))
            subprocess.run(["callgrind_control", "-d", str(p.pid)], capture_output=True, check=True, timeout=120)
            subprocess.run(["callgrind_control", "-i", "off", str(p.pid)], capture_output=True, timeout=60)
            dumps = sorted(set(run_dir.glob(f"callgrind.{which}.*.out*")) - before, key=lambda f: f.stat().st_mtime)
            total = None
            for f in dumps:
                for line in f.read_text(errors="replace").splitlines():
                    if line.startswith(("totals:", "summary:")):
                        total = int(line.split()[1])
            if total is None:
                raise RuntimeError("no callgrind dump with totals found")
            dump = str(dumps[-1].relative_to(ROOT))
        else:
            perf.send_signal(signal.SIGINT)
            perf.wait(10)
            text = (run_dir / f"perf.{which}.txt").read_text()
            total = int(next(l.split(",")[0] for l in text.splitlines() if "instructions" in l))
            dump = None
        res = {"tool": tool, "requests": n, "non_200": bad, "total_instructions": total,
               "per_request": round(total / n), "seconds_under_tool": round(secs, 1), "dump": dump,
               "path": path}
        log(f"    -> {res['per_request']:,} instructions per request ({which}, {tool}, {n} requests, {bad} non-200)")
        return res
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, RuntimeError, OSError,
            http.client.HTTPException, StopIteration, ValueError) as e:
        msg = f"instruction count for {which} failed: {e}"
        log(msg)
        findings.notes.append(msg)
        return {"tool": tool, "error": str(e)}
    finally:
        conn.close()
        stack.procs.stop(p, timeout=30)
