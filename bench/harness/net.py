"""HTTP from the harness's side: one-shot requests, response headers and cookies, and waiting
for a freshly started server's first 2xx (the cold-start figure)."""

import http.client
import time

from .procs import log_tail


def request(port, method, path, headers=None, body=None, timeout=10.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        data = res.read()
        return res.status, res.getheaders(), data
    finally:
        conn.close()


def header(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def cookie_from(headers, name):
    for k, v in headers:
        if k.lower() == "set-cookie":
            first = v.split(";", 1)[0]
            cname, _, value = first.partition("=")
            if cname.strip() == name and value:
                return value.strip()
    return None


def probe(port, path, timeout=0.5):
    try:
        status, _, _ = request(port, "GET", path, timeout=timeout)
        return status
    except (OSError, http.client.HTTPException):
        return None


def wait_ready(proc, port, paths, timeout):
    """Polls every 5 ms; returns (ms from t0 to the first 2xx, path). paths are tried in order each round."""
    t0 = proc.bench_t0
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.bench_name} exited with {proc.returncode}:\n{log_tail(proc.bench_log)}")
        for path in paths:
            status = probe(port, path)
            if status is not None and 200 <= status < 300:
                return round((time.monotonic() - t0) * 1000.0, 1), path
        time.sleep(0.005)
    raise RuntimeError(f"{proc.bench_name} not ready on :{port} after {timeout} s:\n{log_tail(proc.bench_log)}")
