"""Instructions per request: a second backend-api or frontend-gateway under callgrind (or
`perf stat` when valgrind is missing), counting user-space instructions over INSTR_REQUESTS
sequential keep-alive requests after a warm-up; the gateway both with metrics and traces off (as
everywhere else) and on (METRICS_ADDR set, spans exported to the OTLP receiver, default sampling)."""

import http.client
import os
import shutil
import signal
import subprocess
import time

from .config import ROOT, log
from .telemetry import receiver_stats, telemetry_env, trace_exports

# With traces on, the count goes on after the last request until the batch holding its spans has
# been exported (OTEL_BSP_SCHEDULE_DELAY, 5 s by default, then the export itself, slow under
# callgrind), or for at most this long: the export's cost belongs to the requests.
EXPORT_WAIT_MAX_S = 10.0


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
        if stack.otlp_proc:
            out["gateway_proxied_telemetry"] = count_instructions(
                stack, findings, tool, "gateway", n, "/api/workspaces", {"Cookie": f"session={stack.cookie}"},
                telemetry=True)
    out["backend_direct"] = count_instructions(
        stack, findings, tool, "backend", n, "/workspaces", {"Authorization": f"Bearer {stack.token}"})
    if stack.otlp_proc:
        # As behind the gateway: every request carries a traceparent, sampled 1 in 100 (the
        # gateway's default ratio), which the backend follows.
        out["backend_direct_telemetry"] = count_instructions(
            stack, findings, tool, "backend", n, "/workspaces", {"Authorization": f"Bearer {stack.token}"},
            telemetry=True, traceparent_every=100)
    findings.extras["instructions"] = out


def callgrind_dump(p, run_dir, label):
    """Dumps (and so zeroes) the counts of the callgrind process p; returns (its total, the dump's path)."""
    before = set(run_dir.glob(f"callgrind.{label}.*.out*"))
    subprocess.run(["callgrind_control", "-d", str(p.pid)], capture_output=True, check=True, timeout=120)
    dumps = sorted(set(run_dir.glob(f"callgrind.{label}.*.out*")) - before, key=lambda f: f.stat().st_mtime)
    total = None
    for f in dumps:
        for line in f.read_text(errors="replace").splitlines():
            if line.startswith(("totals:", "summary:")):
                total = int(line.split()[1])
    if total is None:
        raise RuntimeError("no callgrind dump with totals found")
    return total, str(dumps[-1].relative_to(ROOT))


def fmt_count(v):
    return "n/a" if v is None else f"{v:,}"


def wait_for_export(stack, exports_before):
    """Seconds until the receiver has an export newer than `exports_before` (EXPORT_WAIT_MAX_S at most)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < EXPORT_WAIT_MAX_S:
        if trace_exports(receiver_stats(stack)) > exports_before:
            break
        time.sleep(0.1)
    return round(time.monotonic() - t0, 1)


def perf_supported():
    if not shutil.which("perf"):
        return False
    r = subprocess.run(["perf", "stat", "-x,", "-e", "instructions:u", "true"], capture_output=True, text=True)
    return r.returncode == 0 and "<not supported>" not in r.stderr and "<not counted>" not in r.stderr


def count_instructions(stack, findings, tool, which, n, path, headers, telemetry=False, traceparent_every=None):
    """Runs a second instance of `which` under the tool, sends n sequential keep-alive requests
    (telemetry: with METRICS_ADDR and OTLP export on, default sampling; traceparent_every: each
    request carries a `traceparent` of its own trace, sampled on one request in that many)."""
    run_dir = stack.run_dir
    port = stack.ports[f"{which}_instr"]
    # The dumps of both gateway counts share a directory: the one with telemetry is told by its name.
    label = which + ("-telemetry" if telemetry else "")
    cg_out = run_dir / f"callgrind.{label}.%p.out"
    wrapper = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={cg_out}"] if tool == "callgrind" else []
    env = telemetry_env(stack, "on", stack.ports[f"{which}_instr_metrics"]) if telemetry else None
    log(f"instruction count: {which}{' with metrics and traces on' if telemetry else ''} under {tool} on :{port}, "
        f"{n} requests to {path}")
    if which == "gateway":
        p, _, _ = stack.start_gateway(f"{label}-{tool}", port, wrapper, timeout=300, env=env)
    else:
        p, _ = stack.start_backend(f"{label}-{tool}", port, wrapper, timeout=300, env=env)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    sent = [0]

    def send(k):
        bad = 0
        for _ in range(k):
            h = headers
            if traceparent_every:
                sent[0] += 1
                flags = "01" if sent[0] % traceparent_every == 0 else "00"
                h = dict(headers, traceparent=f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-{flags}")
            conn.request("GET", path, headers=h)
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
            perf_out = run_dir / f"perf.{label}.txt"
            perf = subprocess.Popen(["perf", "stat", "-x,", "-e", "instructions:u", "-p", str(p.pid), "-o", str(perf_out)])
            time.sleep(0.3)
        otlp0 = receiver_stats(stack) if telemetry else None
        t0 = time.monotonic()
        bad = send(n)
        secs = time.monotonic() - t0
        tail = waited = None
        if tool == "callgrind":
            total, dump = callgrind_dump(p, run_dir, label)
            if telemetry:
                # The tail apart: the requests' own count above compares with the count without
                # telemetry as it always did; the tail (the export after the last request, and
                # idling until it came) is reported beside it.
                waited = wait_for_export(stack, trace_exports(receiver_stats(stack)))
                tail, _ = callgrind_dump(p, run_dir, label)
            subprocess.run(["callgrind_control", "-i", "off", str(p.pid)], capture_output=True, timeout=60)
        else:
            if telemetry:
                waited = wait_for_export(stack, trace_exports(receiver_stats(stack)))  # counted with the requests
            perf.send_signal(signal.SIGINT)
            perf.wait(10)
            text = perf_out.read_text()
            total = int(next(l.split(",")[0] for l in text.splitlines() if "instructions" in l))
            dump = None
        res = {"tool": tool, "requests": n, "non_200": bad, "total_instructions": total,
               "per_request": round(total / n), "seconds_under_tool": round(secs, 1), "dump": dump,
               "path": path}
        if telemetry:
            otlp1 = receiver_stats(stack)
            res.update(env=env, export_wait_s=waited, export_wait_max_s=EXPORT_WAIT_MAX_S, tail_instructions=tail,
                       per_request_with_tail=round((total + (tail or 0)) / n),
                       otlp_exports=trace_exports(otlp1) - trace_exports(otlp0), otlp_spans=otlp1["spans"] - otlp0["spans"])
        log(f"    -> {res['per_request']:,} instructions per request ({label}, {tool}, {n} requests, {bad} non-200"
            + (f"; after the last request {fmt_count(tail)} more in {waited} s until the batch's export; "
               f"{res['otlp_spans']} spans exported in {res['otlp_exports']} exports)" if telemetry else ")"))
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
