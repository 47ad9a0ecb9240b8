"""The figures the report is made of: per-case aggregates over runs, number formatting, and
the targets, each PASS, FAIL or not run."""

import statistics

from .anchor import anchor_best, anchor_mean
from .config import CASE_GROUPS, GROUPS

# Issue 15: full-stack req/s with metrics and traces on (default sampling) / off.
TELEMETRY_TARGET_RATIO = 0.97


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def fmt(v, nd=1):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def summarize_cases(results):
    """Case -> aggregate over runs (mean req/s, mean p50/p99, max peak RSS, sums)."""
    out = {}
    for key in dict.fromkeys(r["case"] for r in results):
        rs = [r for r in results if r["case"] == key]
        agg = {
            "runs": len(rs),
            "requests_per_s": mean([r["wrk"]["requests_per_s"] for r in rs]),
            "p50_ms": mean([r["wrk"]["p50_ms"] for r in rs]),
            "p99_ms": mean([r["wrk"]["p99_ms"] for r in rs]),
            "requests": sum(r["wrk"]["requests"] or 0 for r in rs),
            "non_2xx_3xx": sum(r["wrk"]["non_2xx_3xx"] for r in rs),
            "socket_errors": sum(sum(r["wrk"]["socket_errors"].values()) for r in rs),
            "peak_rss_mib": {}, "cpu_s": {},
            "postgres_cpu_s": round(sum(r["postgres_cpu_s"] for r in rs), 2),
        }
        for g in GROUPS:
            vals = [r["processes"][g] for r in rs if g in r["processes"]]
            if vals and g in CASE_GROUPS[key]:
                agg["peak_rss_mib"][g] = round(max(v["peak_rss_kb"] for v in vals) / 1024.0, 1)
                agg["cpu_s"][g] = round(sum(v["cpu_s"] for v in vals), 2)
        cpu = sum(agg["cpu_s"].values())
        agg["server_cpu_ms_per_req"] = round(1000.0 * cpu / agg["requests"], 3) if agg["requests"] else None
        if key == "storm":
            agg["storm"] = [r["storm"] for r in rs]
        out[key] = agg
    return out


def targets(cases, extras, anchor):
    """The targets, each {target, measured, result}."""
    T = []

    def add(name, measured, ok):
        T.append({"target": name, "measured": measured, "result": "not run" if ok is None else ("PASS" if ok else "FAIL")})

    b, d = cases.get("b"), cases.get("d")
    am, ab = anchor_mean(anchor, "b"), anchor_best(anchor, "b")
    if b and am:
        # Means over runs on both sides (like for like); the ratio to the anchor's single best
        # run, a stricter figure, is shown beside it.
        ratio = b["requests_per_s"] / am["requests_per_s"]
        best = b["requests_per_s"] / ab["requests_per_s"]
        add("full stack req/s >= 10x the anchor's", f"{fmt(b['requests_per_s'])} req/s = {ratio:.1f}x the anchor's "
            f"{fmt(am['requests_per_s'])} (mean of {len(ab['requests_per_s_runs'])} runs; {best:.1f}x its best run)",
            ratio >= 10)
        pr = am["p99_ms"] / b["p99_ms"] if b["p99_ms"] else None
        pb = ab["p99_ms"] / b["p99_ms"] if b["p99_ms"] else None
        add("full stack p99 <= 1/10 of the anchor's", f"{fmt(b['p99_ms'], 2)} ms = 1/{pr:.1f} of the anchor's "
            f"{fmt(am['p99_ms'], 2)} ms (mean of {len(ab['p99_ms_runs'])} runs; 1/{pb:.1f} of its best run)"
            if pr else "n/a", pr is not None and pr >= 10)
    else:
        add("full stack req/s >= 10x the anchor's", "n/a", None)
        add("full stack p99 <= 1/10 of the anchor's", "n/a", None)
    if b and d:
        ratio = b["requests_per_s"] / d["requests_per_s"]
        add("gateway hop <= 1.5x a bare nginx hop (full-stack req/s >= 0.67x nginx-hop req/s)",
            f"{fmt(b['requests_per_s'])} / {fmt(d['requests_per_s'])} = {ratio:.2f}", ratio >= 0.67)
    else:
        add("gateway hop <= 1.5x a bare nginx hop (full-stack req/s >= 0.67x nginx-hop req/s)", "n/a", None)
    rv = extras.get("revoke")
    add("a signed-out session stops working within 50 ms on every gateway instance (2 instances)",
        ", ".join(f"{k}: {fmt(v)} ms" for k, v in rv["stopped_after_ms"].items()) if rv else "n/a",
        rv["ok"] if rv else None)
    ro = extras.get("rolling")
    add("a rolling restart of 2 backend and 3 gateway instances: zero non-2xx answers and zero socket errors",
        (f"{ro['restarting']['non_2xx_3xx']} non-2xx, {sum(ro['restarting']['socket_errors'].values())} socket errors; "
         f"p99 {fmt(ro['restarting']['p99_ms'])} ms (steady {fmt(ro['steady']['p99_ms'])} ms)") if ro and "restarting" in ro else "n/a",
        ro["ok"] if ro and "restarting" in ro else None)
    tl = (extras.get("telemetry") or {}).get("summary", {})
    name = (f"metrics and traces on (default sampling, /metrics scraped every second): full-stack req/s >= "
            f"{TELEMETRY_TARGET_RATIO}x off (interleaved runs)")
    if "ratio" in tl:
        measured = (f"{fmt(tl['on']['requests_per_s'])} / {fmt(tl['off']['requests_per_s'])} = {tl['ratio']:.3f} "
                    f"(means of {tl['on']['runs']} pair{'s' if tl['on']['runs'] > 1 else ''}; pair by pair "
                    f"{', '.join(f'{x:.3f}' for x in tl['pair_ratios'])})")
        # Without spans received and /metrics answering, "on" was not on: no PASS for that.
        add(name, measured + ("" if tl["telemetry_was_on"] else "; telemetry was not on (see Notes)"),
            tl["telemetry_was_on"] and tl["ratio"] >= TELEMETRY_TARGET_RATIO)
    else:
        add(name, "n/a", None)
    for g, label in (("gateway", "gateway"), ("backend", "backend")):
        peaks = [(k, c["peak_rss_mib"][g]) for k, c in cases.items() if g in c["peak_rss_mib"] and k in ("a", "b", "c", "d")]
        if peaks:
            k, v = max(peaks, key=lambda x: x[1])
            add(f"{label} peak RSS under the 64-connection load <= 30 MiB", f"{fmt(v)} MiB (case {k})", v <= 30)
        else:
            add(f"{label} peak RSS under the 64-connection load <= 30 MiB", "n/a", None)
    bb = extras.get("big_body")
    if bb and "rss_growth_kb" in bb:
        g = bb["rss_growth_kb"] / 1024.0
        add("100 MiB through the proxy raises the gateway's RSS by < 16 MiB",
            f"+{fmt(g)} MiB (up {bb['up']['status']}, down {bb['down']['status']})", bb["ok"] and g < 16)
    else:
        add("100 MiB through the proxy raises the gateway's RSS by < 16 MiB", bb.get("error", "n/a") if bb else "n/a", None if not bb else False)
    s = cases.get("storm")
    if s and b:
        ratio = s["p99_ms"] / b["p99_ms"] if b["p99_ms"] else None
        add("sign-in storm at most doubles the proxied p99", f"{fmt(b['p99_ms'], 2)} -> {fmt(s['p99_ms'], 2)} ms "
            f"(x{ratio:.2f})" if ratio else "n/a", ratio is not None and ratio <= 2)
    else:
        add("sign-in storm at most doubles the proxied p99", "n/a", None)
    for svc in ("backend", "gateway"):
        cs = extras.get(f"cold_start_{svc}_ms")
        if cs:
            med = statistics.median(cs)
            add(f"{svc} cold start to a ready /readyz < 1 s (median of {len(cs)})",
                f"{fmt(med)} ms (all: {', '.join(fmt(x) for x in cs)})" +
                ("" if svc == "backend" or extras.get("gateway_ready_path") == "/readyz" else f"; timed to {extras.get('gateway_ready_path')}"),
                med < 1000)
        else:
            add(f"{svc} cold start to a ready /readyz < 1 s", "n/a", None)
    return T
