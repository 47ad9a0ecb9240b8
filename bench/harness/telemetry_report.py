"""The telemetry case's figures (means over its runs per variant, the on / off ratios, what the
receiver and the scrapes got, and what went wrong) and its section of BENCHMARKS.md, "Metrics and
traces: on vs off" (its target is with the others in summary.py)."""

from .summary import TELEMETRY_TARGET_RATIO, fmt, mean

VARIANTS = ("off", "on", "always_on")
VARIANT_TITLES = {"off": "off", "on": "on, default sampling", "always_on": "on, every request sampled (`always_on`)"}
# The services' service.name (OTEL_SERVICE_NAME's defaults) as the receiver reports them.
SERVICE_NAMES = {"gateway": "frontend-gateway", "backend": "backend-api"}


def trace_exports(stats):
    return stats["exports"].get("/v1/traces", 0)


def summarize(runs):
    out, problems = {}, []
    for v in VARIANTS:
        rs = [r for r in runs if r["variant"] == v]
        if not rs:
            continue
        req = sum(r["wrk"]["requests"] or 0 for r in rs)
        sent = sum((r["wrk"]["requests"] or 0) + (r["warmup_requests"] or 0) for r in rs)
        cpu = {g: sum(r["processes"][g]["cpu_s"] for r in rs) for g in ("gateway", "backend", "receiver")}
        services = {}
        for r in rs:
            for name, sv in r["otlp"]["services"].items():
                acc = services.setdefault(name, {"spans": 0, "roots": 0, "traces": 0, "names": {}})
                for k in ("spans", "roots", "traces"):
                    acc[k] += sv[k]
                for k, c in sv["names"].items():
                    acc["names"][k] = acc["names"].get(k, 0) + c
        gw = services.get(SERVICE_NAMES["gateway"], {})
        agg = {
            "runs": len(rs),
            "requests_per_s": mean([r["wrk"]["requests_per_s"] for r in rs]),
            "requests_per_s_runs": [r["wrk"]["requests_per_s"] for r in rs],
            "p50_ms": mean([r["wrk"]["p50_ms"] for r in rs]),
            "p99_ms": mean([r["wrk"]["p99_ms"] for r in rs]),
            "p99_ms_runs": [r["wrk"]["p99_ms"] for r in rs],
            "requests": req, "requests_sent": sent,
            "non_2xx_3xx": sum(r["wrk"]["non_2xx_3xx"] for r in rs),
            "socket_errors": sum(sum(r["wrk"]["socket_errors"].values()) for r in rs),
            "cpu_us_per_req": {g: round(1e6 * cpu[g] / req, 1) if req else None for g in ("gateway", "backend")},
            "receiver_cpu_s": round(cpu["receiver"], 2),
            "peak_rss_mib": {g: round(max(r["processes"][g]["peak_rss_kb"] for r in rs) / 1024.0, 1)
                             for g in ("gateway", "backend")},
            "otlp": {
                "exports": sum(trace_exports(r["otlp"]) for r in rs),
                "other_exports": sum(sum(r["otlp"]["exports"].values()) - trace_exports(r["otlp"]) for r in rs),
                "bytes": sum(r["otlp"]["bytes"] for r in rs),
                "spans": sum(r["otlp"]["spans"] for r in rs),
                "malformed": sum(r["otlp"]["malformed"] for r in rs),
                "detail_partial": any(r["otlp"]["detail_spans"] < r["otlp"]["spans"] for r in rs),
                "traces_multi_service": sum(r["otlp"]["traces_multi_service"] for r in rs),
                # Trace ids are read from the first DETAIL_SPANS spans of a run only (otlp_sink.py).
                "gateway_traces_per_1000_requests": round(1000.0 * gw["traces"] / sent, 2)
                if gw and sent and not any(r["otlp"]["detail_spans"] < r["otlp"]["spans"] for r in rs) else None,
                "services": services,
            },
        }
        if v != "off":
            agg["scrapes"] = {g: {"ok": sum(r["scrapes"][g]["ok"] for r in rs),
                                  "failed": sum(r["scrapes"][g]["failed"] for r in rs),
                                  "series": rs[-1]["scrapes"][g]["series"], "bytes": rs[-1]["scrapes"][g]["bytes"],
                                  "p50_ms": rs[-1]["scrapes"][g]["p50_ms"],
                                  "last_error": next((r["scrapes"][g]["last_error"] for r in reversed(rs)
                                                      if r["scrapes"][g]["last_error"]), None)}
                              for g in ("gateway", "backend")}
        out[v] = agg
    off, on, always = out.get("off"), out.get("on"), out.get("always_on")
    if off and on and off["requests_per_s"]:
        out["ratio"] = on["requests_per_s"] / off["requests_per_s"]
        pairs = [(runs[i], runs[i + 1]) for i in range(0, len(runs) - 1, 2) if {runs[i]["variant"], runs[i + 1]["variant"]} == {"off", "on"}]
        out["pair_ratios"] = [(a if a["variant"] == "on" else b)["wrk"]["requests_per_s"] /
                              (a if a["variant"] == "off" else b)["wrk"]["requests_per_s"] for a, b in pairs]
        out["p99_ratio"] = on["p99_ms"] / off["p99_ms"] if off["p99_ms"] else None
    if off and always and off["requests_per_s"]:
        out["always_on_ratio"] = always["requests_per_s"] / off["requests_per_s"]
    if off and (off["otlp"]["exports"] or off["otlp"]["other_exports"]):
        problems.append(f"the receiver got {off['otlp']['exports']} exports while telemetry was off.")
    for v in ("on", "always_on"):
        a = out.get(v)
        if not a:
            continue
        if not a["otlp"]["spans"]:
            problems.append(f"{v}: the receiver got no span (binaries built before OTEL_EXPORTER_OTLP_ENDPOINT existed?).")
        for g, sc in a["scrapes"].items():
            if sc["failed"] or not sc["ok"]:
                problems.append(f"{v}: {g} /metrics answered {sc['ok']} of {sc['ok'] + sc['failed']} scrapes "
                                f"(last error: {sc['last_error']}).")
        if a["otlp"]["malformed"]:
            problems.append(f"{v}: {a['otlp']['malformed']} exports did not parse as an ExportTraceServiceRequest.")
        if a["non_2xx_3xx"] or a["socket_errors"]:
            problems.append(f"{v}: {a['non_2xx_3xx']} non-2xx answers, {a['socket_errors']} socket errors.")
    # What the target needs before it means anything: spans received and /metrics answering.
    out["telemetry_was_on"] = bool(on and on["otlp"]["spans"] and all(sc["ok"] for sc in on["scrapes"].values()))
    out["problems"] = problems
    return out


def names_line(services):
    parts = []
    for name, sv in services.items():
        top = sorted(sv["names"].items(), key=lambda kv: -kv[1])[:8]
        parts.append(f"{name}: " + ", ".join(f"`{n}` {fmt(c)}" for n, c in top))
    return "; ".join(parts)


def instructions_line(ins):
    off, on = ins.get("gateway_proxied"), ins.get("gateway_proxied_telemetry")
    if not on:
        return None
    if "per_request" not in on or not off or "per_request" not in off:
        return (f"- **Instructions per proxied request** with metrics and traces on: failed "
                f"({on.get('error') or (off or {}).get('error')}).")
    base = off["per_request"]

    def diff(v):
        return f"{v - base:+,}, {100.0 * (v - base) / base:+.1f}%"

    line = (f"- **Instructions per proxied request** (gateway, {on['tool']}, {fmt(on['requests'])} sequential keep-alive "
            f"`GET /api/workspaces` after 100 warm-up ones, user-space instructions of that process; the backend behind it "
            f"runs with telemetry off): off **{base:,}**, on **{on['per_request']:,}** ({diff(on['per_request'])}; "
            "`METRICS_ADDR` set but not scraped, spans exported to the receiver with the default sampling)")
    if on.get("tail_instructions") is not None:
        line += (f"; counting also what followed the last request until the batch holding its spans was exported "
                 f"({fmt(on['export_wait_s'])} s, at most {fmt(on['export_wait_max_s'])}; the export and the idling "
                 f"meanwhile, {on['tail_instructions']:,} instructions): **{on['per_request_with_tail']:,}** "
                 f"({diff(on['per_request_with_tail'])})")
    else:
        line += (f", counted until the batch holding the last request's spans was exported "
                 f"({fmt(on['export_wait_s'])} s after it)")
    line += (f". The receiver got {fmt(on.get('otlp_spans'))} spans in {fmt(on.get('otlp_exports'))} exports "
             "from that instance during the count")
    # At a ratio of 0.01, 2,000 requests and their warm-up leave no trace sampled about once in 10^9 runs.
    line += (": **none, so tracing was not on** (a binary built before OTEL_EXPORTER_OTLP_ENDPOINT?)."
             if not on.get("otlp_spans") else ".")
    b_off, b_on = ins.get("backend_direct"), ins.get("backend_direct_telemetry")
    if b_on and "per_request" in b_on and b_off and "per_request" in b_off:
        b = b_off["per_request"]
        line += (f" The backend, per `GET /workspaces` with a caller's `traceparent` on each request, sampled 1 in "
                 f"100: off **{b:,}**, on **{b_on['per_request']:,}** ({b_on['per_request'] - b:+,}, "
                 f"{100.0 * (b_on['per_request'] - b) / b:+.1f}%; {fmt(b_on.get('otlp_spans'))} spans exported).")
    return line


def section(extras):
    """The lines of "## Metrics and traces: on vs off" (none when neither the telemetry case nor
    the instruction counts ran)."""
    tl, ins = extras.get("telemetry"), extras.get("instructions") or {}
    il = instructions_line(ins)
    if not tl and not il:
        return []
    L = ["## Metrics and traces: on vs off", ""]
    if tl:
        s = tl["summary"]
        L.append("The full-stack case (b: `GET /api/workspaces` with a session cookie through the gateway, wrk as above) "
                 "on a backend-api and a frontend-gateway started afresh for each run, with issue 15's settings **off** "
                 "(no `METRICS_ADDR`, no `OTEL_EXPORTER_OTLP_ENDPOINT`, as in every other case) and **on**: `METRICS_ADDR` "
                 f"on each service with `/metrics` of both fetched every {tl['scrape_interval_s']:g} s by the harness "
                 "during the whole run (a Prometheus scrapes every 15 s by default), and `OTEL_EXPORTER_OTLP_ENDPOINT` at a "
                 "local OTLP/HTTP receiver (`bench/harness/otlp_sink.py`, a Python process on the same cores: it answers "
                 "each export 200 and counts what it holds) with the default sampling (`parentbased_traceidratio`, 0.01). "
                 f"{tl['pairs']} pair{'s' if tl['pairs'] > 1 else ''} of runs, interleaved and alternated "
                 f"({', '.join(tl['order'][:-1])}) so that a drift "
                 "of this machine's speed weighs on both sides alike; then one run with `OTEL_TRACES_SAMPLER=always_on` "
                 "(every request traced and exported), reported without a target.")
        L.append("")
        L.append("| variant | runs | req/s (each run) | req/s vs off | p50 ms | p99 ms | non-2xx/3xx | socket errors | "
                 "gateway CPU µs/req | backend CPU µs/req | gateway peak RSS MiB | backend peak RSS MiB |")
        L.append("|" + "|".join(["---"] * 12) + "|")
        off = s.get("off")
        for v in VARIANTS:
            a = s.get(v)
            if not a:
                continue
            vs = f"{a['requests_per_s'] / off['requests_per_s']:.3f}" if off and off["requests_per_s"] else "n/a"
            L.append(f"| {VARIANT_TITLES[v]} | {a['runs']} | {fmt(a['requests_per_s'])} "
                     f"({', '.join(fmt(x) for x in a['requests_per_s_runs'])}) | {vs} | {fmt(a['p50_ms'], 2)} | "
                     f"{fmt(a['p99_ms'], 2)} | {fmt(a['non_2xx_3xx'])} | {fmt(a['socket_errors'])} | "
                     f"{fmt(a['cpu_us_per_req']['gateway'])} | {fmt(a['cpu_us_per_req']['backend'])} | "
                     f"{fmt(a['peak_rss_mib']['gateway'])} | {fmt(a['peak_rss_mib']['backend'])} |")
        L.append("")
        if "ratio" in s:
            L.append(f"req/s on / off: **{s['ratio']:.3f}** of the means (target >= {TELEMETRY_TARGET_RATIO}), "
                     f"{', '.join(f'{x:.3f}' for x in s['pair_ratios'])} pair by pair; p99 on / off "
                     f"{fmt(s.get('p99_ratio'), 2)}" + (f"; always_on / off {s['always_on_ratio']:.3f}" if "always_on_ratio" in s else "")
                     + ". CPU µs/req: the process's utime+stime over the measured window / its requests.")
            L.append("")
        if not s["telemetry_was_on"]:
            L.append("**Telemetry was not on in the runs meant to have it** (no span received or no `/metrics` "
                     "answer; see Notes): these figures compare nothing.")
            L.append("")
        L.append("What the telemetry produced, over each run's whole life (warm-up, measured window and the services' "
                 "shutdown), summed over a variant's runs:")
        L.append("")
        L.append("| variant | exports to /v1/traces | bytes | spans (frontend-gateway / backend-api) | sampled traces per "
                 "1,000 requests | traces with spans of both services | /metrics scrapes ok / failed (gateway; backend) | "
                 "series per scrape (gateway; backend) | scrape p50 ms (gateway; backend) | receiver CPU s (measured window) |")
        L.append("|" + "|".join(["---"] * 10) + "|")
        for v in VARIANTS:
            a = s.get(v)
            if not a:
                continue
            o, sv, sc = a["otlp"], a["otlp"]["services"], a.get("scrapes")
            spans = " / ".join(fmt(sv.get(SERVICE_NAMES[g], {}).get("spans", 0)) for g in ("gateway", "backend"))
            L.append(f"| {VARIANT_TITLES[v]} | {fmt(o['exports'])} | {fmt(o['bytes'])} | {spans} | "
                     f"{fmt(o['gateway_traces_per_1000_requests'], 2)} | {fmt(o['traces_multi_service'])}"
                     f"{' (in the spans read)' if o['detail_partial'] else ''} | "
                     + (f"{sc['gateway']['ok']} / {sc['gateway']['failed']}; {sc['backend']['ok']} / {sc['backend']['failed']} | "
                        f"{fmt(sc['gateway']['series'])}; {fmt(sc['backend']['series'])} | "
                        f"{fmt(sc['gateway']['p50_ms'], 2)}; {fmt(sc['backend']['p50_ms'], 2)} | " if sc else "- | - | - | ")
                     + f"{fmt(a['receiver_cpu_s'], 2)} |")
        L.append("")
        L.append("Sampled traces per 1,000 requests: the frontend-gateway's distinct trace ids / the requests wrk counted "
                 "(warm-up included; wrk leaves out those still in flight when it stops, and the harness sent one more "
                 "per run), so about 10 with the default ratio 0.01 and a little over 1,000 with `always_on`. Traces "
                 "with spans of both services: the backend continued the gateway's trace.")
        shown = s.get("always_on") or s.get("on")
        if shown and shown["otlp"]["services"]:
            L.append("")
            L.append(f"Span names received ({'always_on' if s.get('always_on') else 'on'} run, most frequent first): "
                     + names_line(shown["otlp"]["services"]) + "."
                     + (" Trace ids and names were read from the first 50,000 spans of a run; later ones only counted."
                        if shown["otlp"]["detail_partial"] else ""))
        L.append("")
    if il:
        L.append(il)
        L.append("")
    return L
