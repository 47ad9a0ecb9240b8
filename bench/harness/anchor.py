"""The anchor (the article's Node stack, ../shared/anchors/seed-stack): running its ./run.sh
for --anchor, reading its figures from summary.md (or summary.json), and the best and mean of
its runs that the report compares against."""

import json
import os
import re
import statistics
import subprocess
from pathlib import Path

from .config import GROUPS, log


def read_anchor(results_dir):
    """Case -> list of runs from the anchor's summary.md (fallback: summary.json)."""
    md = Path(results_dir) / "summary.md"
    out = {"source": str(md), "date": None, "cases": {}}
    if md.exists():
        text = md.read_text()
        m = re.search(r"date \(UTC\): (\S+)", text)
        out["date"] = m.group(1) if m else None
        lines = [l for l in text.splitlines() if l.startswith("|")]
        hdr = None
        for l in lines:
            cells = [c.strip() for c in l.strip("|").split("|")]
            if cells[:3] == ["case", "run", "req/s"]:
                hdr = cells
                continue
            if hdr is None or set(l) <= set("|-: "):
                continue
            if len(cells) != len(hdr) or not re.match(r"[a-z] ", cells[0]):
                if hdr and not re.match(r"[a-z] ", cells[0]):
                    hdr = None if cells[0] in ("case", "group") else hdr
                continue
            row = dict(zip(hdr, cells))

            def num(k):
                v = row.get(k, "").replace(",", "")
                try:
                    return float(v)
                except ValueError:
                    return None

            out["cases"].setdefault(cells[0][0], []).append({
                "run": int(num("run") or 0), "title": cells[0][2:], "requests_per_s": num("req/s"),
                "p50_ms": num("p50 ms"), "p99_ms": num("p99 ms"), "non_2xx_3xx": num("non-2xx/3xx"),
                "peak_rss_mib": {g: num(f"{g} peak RSS MiB") for g in GROUPS},
            })
        if out["cases"]:
            return out
    js = Path(results_dir) / "summary.json"
    if js.exists():
        d = json.loads(js.read_text())
        out["source"], out["date"] = str(js), d["meta"].get("date")
        for r in d["results"]:
            out["cases"].setdefault(r["case"], []).append({
                "run": r["run"], "title": r["case_title"], "requests_per_s": r["wrk"]["requests_per_s"],
                "p50_ms": r["wrk"]["p50_ms"], "p99_ms": r["wrk"]["p99_ms"], "non_2xx_3xx": r["wrk"]["non_2xx_3xx"],
                "peak_rss_mib": {g: p["peak_rss_kb"] / 1024.0 for g, p in r["processes"].items()},
            })
    return out


def run_anchor(cfg, run_dir):
    d = cfg.anchor_dir
    ready = (d / "run.sh").exists() and (d / "api/dist/main.js").exists() and (d / "web/.next/BUILD_ID").exists()
    if not ready:
        log(f"--anchor: {d} is not set up (run its ./setup.sh once); using its stored results instead")
        return None
    out = run_dir / "anchor"
    env = dict(os.environ, RESULTS_DIR=str(out), KEEP_POSTGRES="1", DURATION=f"{cfg.duration}s",
               WARMUP=f"{cfg.warmup}s", THREADS=str(cfg.threads), CONNECTIONS=str(cfg.connections),
               RUNS=str(cfg.runs))
    env.pop("DATABASE_URL", None)  # the anchor has its own (env.sh)
    log(f"--anchor: running {d}/run.sh (results in {out})")
    r = subprocess.run(["./run.sh"], cwd=d, env=env)
    if r.returncode != 0:
        log(f"--anchor: run.sh failed ({r.returncode}); using its stored results instead")
        return None
    return out


def anchor_best(anchor, key):
    runs = anchor["cases"].get(key) or []
    if not runs:
        return None
    return {"requests_per_s": max(r["requests_per_s"] for r in runs), "p99_ms": min(r["p99_ms"] for r in runs),
            "requests_per_s_runs": [r["requests_per_s"] for r in runs], "p99_ms_runs": [r["p99_ms"] for r in runs],
            "peak_rss_mib": {g: max((r["peak_rss_mib"].get(g) or 0) for r in runs) for g in GROUPS}}


def anchor_mean(anchor, key):
    """The anchor's runs averaged the way ours are (req/s and p99 means over runs): like for like."""
    best = anchor_best(anchor, key)
    if not best:
        return None
    runs = anchor["cases"][key]
    return dict(best, requests_per_s=statistics.fmean(r["requests_per_s"] for r in runs),
                p99_ms=statistics.fmean(r["p99_ms"] for r in runs))
