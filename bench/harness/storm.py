"""The sign-in storm: threads signing in through the gateway in a loop while wrk measures
case b, and the sign-ins' own rate and latency over the measured window. A sign-in the gateway
turns away because its password hashing queue is full (PASSWORD_HASH_QUEUE) answers 503 at once;
those are counted apart (`unavailable`), and the default queue is meant to hold the storm."""

import http.client
import json
import threading
import time


class Storm:
    """N threads, each signing in over its own keep-alive connection in a loop."""

    def __init__(self, port, credentials, n):
        self.port, self.credentials, self.n = port, credentials, n
        self.stop_event = threading.Event()
        self.samples = []  # (end time, latency ms, status)
        self.lock = threading.Lock()
        self.threads = []

    def _loop(self, i):
        email, password = self.credentials[i % len(self.credentials)]
        body = json.dumps({"email": email, "password": password})
        conn = None
        while not self.stop_event.is_set():
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("POST", "/api/auth/signin", body=body, headers={"Content-Type": "application/json"})
                res = conn.getresponse()
                res.read()
                status = res.status
                if (res.getheader("Connection") or "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                status = 0
                if conn is not None:
                    conn.close()
                conn = None
            t1 = time.monotonic()
            with self.lock:
                self.samples.append((t1, (t1 - t0) * 1000.0, status))
        if conn is not None:
            conn.close()

    def start(self):
        for i in range(self.n):
            t = threading.Thread(target=self._loop, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(35)

    def stats(self, t_from, t_to):
        with self.lock:
            s = [x for x in self.samples if t_from <= x[0] <= t_to]
        lat = sorted(x[1] for x in s)
        ok = sum(1 for x in s if x[2] == 200)
        unavailable = sum(1 for x in s if x[2] == 503)
        span = max(t_to - t_from, 1e-9)

        def pct(q):
            return round(lat[min(len(lat) - 1, int(q * len(lat)))], 1) if lat else None

        return {"concurrency": self.n, "sign_ins": len(s), "ok": ok, "errors": len(s) - ok, "unavailable": unavailable,
                "per_s": round(len(s) / span, 1), "p50_ms": pct(0.50), "p99_ms": pct(0.99)}
