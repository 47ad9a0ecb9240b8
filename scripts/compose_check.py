#!/usr/bin/env python3
"""Checks docker-compose.yml without a Docker engine (`just compose-check`).

1. Validates the file against the Compose Specification JSON schema (path in argv[1]).
2. Checks our own rules: required secrets refused when missing (`${VAR:?...}`), production
   mode, health checks on every service, start order by health, the gateway reaching the
   backend by service name, images pinned to a version tag; and the observability services:
   each service's METRICS_ADDR on all interfaces of its container and never published,
   scraped by Prometheus as a job named after the service, traces sent over OTLP/HTTP to the
   compose file's Jaeger (4318, not published), the pages of Prometheus, Jaeger and Grafana
   published on loopback only, and every file they mount present and mounted read-only.
3. Checks the files the observability services read: `promtool check config` on
   deploy/prometheus/prometheus.yml (promtool is Debian's `prometheus` package; skipped, saying
   so, when it is missing), Grafana's provisioning (its data source is the compose Prometheus,
   its dashboards directory is where the compose file mounts the dashboard), and every `expr` of
   the dashboards in deploy/grafana/ parsing as PromQL (`promtool check rules`, with Grafana's
   variables replaced by values).
4. Runs the two release binaries with exactly the environment the compose file gives them,
   except for network plumbing that only exists inside compose: the service host names
   (`postgres`, `backend-api`, `jaeger`) become 127.0.0.1, the listen ports (the public ones
   and METRICS_ADDR's) become free local ports, the OTLP endpoint is a local receiver, and the
   database is a fresh one on DATABASE_URL's server with the compose credentials.
   SMTP_URL points at a closed local port: the gateway must start (and answer) without
   reaching its SMTP server. The check interpolates OTEL_TRACES_SAMPLER_ARG=1 (every trace
   recorded) the way a user would. It then checks what compose relies on: each binary's
   `healthcheck` subcommand, a registration (202: its user is then marked verified in the
   database, as following the mailed link would), a sign-in through the gateway with a
   production (`__Host-`, Secure) cookie, a proxied API call, each service's /metrics on
   METRICS_ADDR (and not on its public port) counting those requests, spans of both services
   at the OTLP receiver, and that a missing secret (or SMTP_URL) stops a service with a
   message naming it.

`--no-binaries` runs parts 1 to 3 only (no build needed).
"""
import glob
import gzip
import http.client
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import jsonschema
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPS = ("backend-api", "frontend-gateway")
# The observability services and the page each publishes (host side, on loopback only).
PAGES = {"prometheus": "127.0.0.1:9090:9090", "jaeger": "127.0.0.1:16686:16686",
         "grafana": "127.0.0.1:3001:3000"}
OTLP_HTTP_PORT = 4318
PROMETHEUS_CONFIG = "deploy/prometheus/prometheus.yml"
GRAFANA = "deploy/grafana"
# The services read a `.env` in their working directory; a container has none, so neither do we.
WORKDIR = tempfile.mkdtemp(prefix="compose-check-")
ADMIN_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")

TEST_VALUES = {
    "POSTGRES_PASSWORD": "compose-check-password",
    "API_SECRET": "compose-check-api-secret-0123456789-0123456789",
    "SESSION_KEY": "compose-check-session-key-" + "0123456789" * 6,
    # Not a secret: every trace recorded, so that part 4 sees both services' spans.
    "OTEL_TRACES_SAMPLER_ARG": "1",
}


def closed_port():
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TEST_VALUES["SMTP_URL"] = f"smtp://127.0.0.1:{closed_port()}"

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def interpolate(value, env):
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} forms."""

    def one(m):
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        val = env.get(name, "")
        if op == ":?" and not val:
            raise KeyError(f"{name}: {arg}")
        if op == ":-" and not val:
            return arg
        return val

    return re.sub(r"\$\{([A-Z0-9_]+)(:[-?])?([^}]*)\}", one, str(value))


def service_env(doc, service, env):
    return {k: interpolate(v, env) for k, v in doc["services"][service]["environment"].items()}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(sql, url=ADMIN_URL):
    subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], check=True)


def request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    data = json.dumps(body).encode() if body is not None else None
    hdrs = {"content-type": "application/json"} if data else {}
    hdrs.update(headers or {})
    conn.request(method, path, body=data, headers=hdrs)
    res = conn.getresponse()
    return res.status, res.getheaders(), res.read()


def wait_healthy(binary, env, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if subprocess.run([binary, "healthcheck"], env=env, capture_output=True, cwd=WORKDIR).returncode == 0:
            return True
        time.sleep(0.2)
    return False


def host_port(addr):
    """("0.0.0.0", 9464) of "0.0.0.0:9464"."""
    host, port = addr.rsplit(":", 1)
    return host, int(port)


def published(svc):
    """The container ports a service publishes on the host (short syntax), as ints."""
    out = []
    for p in svc.get("ports", []):
        spec = str(p["target"] if isinstance(p, dict) else p).split("/")[0]
        out.append(int(spec.rsplit(":", 1)[-1]))
    return out


def bind_mounts(svc):
    """(host path relative to the repository, container path, read-only) of each bind mount."""
    out = []
    for v in svc.get("volumes", []):
        if isinstance(v, dict):
            if v.get("type") == "bind":
                out.append((v["source"], v["target"], bool(v.get("read_only"))))
            continue
        parts = v.split(":")
        if parts[0].startswith((".", "/")):
            out.append((parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(",")))
    return out


def check_schema(doc, schema_path):
    schema = json.load(open(schema_path))
    errors = list(jsonschema.Draft201909Validator(schema).iter_errors(doc))
    for e in errors:
        print("     schema:", e.message, "at", list(e.path))
    check(not errors, "docker-compose.yml matches the Compose Specification schema")


def check_rules(doc, text):
    services = doc["services"]
    check(set(services) == {"postgres", *APPS, *PAGES},
          "six services: postgres, backend-api, frontend-gateway, prometheus, jaeger, grafana")
    for name, svc in services.items():
        check("healthcheck" in svc, f"{name} has a health check")
        if "image" in svc:
            tag = svc["image"].rsplit("/", 1)[-1].partition(":")[2]
            check(bool(tag) and tag != "latest" and "$" not in tag,
                  f"{name}'s image {svc['image']} is pinned to a version tag")
        for source, target, read_only in bind_mounts(svc):
            check(os.path.exists(os.path.join(ROOT, source)), f"{name} mounts {source}, which exists")
            check(read_only, f"{name} mounts {source} read-only")
    check(services["backend-api"]["depends_on"]["postgres"]["condition"] == "service_healthy",
          "backend-api starts once postgres is healthy")
    check(services["frontend-gateway"]["depends_on"]["backend-api"]["condition"] == "service_healthy",
          "frontend-gateway starts once backend-api is healthy")
    for secret in ("POSTGRES_PASSWORD", "API_SECRET", "SESSION_KEY", "SMTP_URL"):
        check(f"${{{secret}:?" in text, f"{secret} is required (refused when missing, never defaulted)")
        env = dict(TEST_VALUES)
        del env[secret]
        try:
            for name in services:
                if "environment" in services[name]:
                    service_env(doc, name, env)
            refused = False
        except KeyError:
            refused = True
        check(refused, f"interpolating without {secret} fails")
    for name in APPS:
        check(services[name]["environment"]["APP_ENV"] == "production", f"{name} runs in production mode")
        check(services[name]["healthcheck"]["test"] == ["CMD", f"/usr/local/bin/{name}", "healthcheck"],
              f"{name}'s health check is its own `healthcheck` subcommand")
    check(services["frontend-gateway"]["environment"]["BACKEND_API_URL"] == "http://backend-api:8080",
          "the gateway reaches the backend by service name")
    check(all(p.startswith("127.0.0.1:") for p in services["backend-api"].get("ports", [])),
          "the backend's port is published on loopback only")

    # Metrics: each service's own listener, inside the compose network only, scraped by job name.
    prometheus = yaml.safe_load(open(os.path.join(ROOT, PROMETHEUS_CONFIG)))
    jobs = {j["job_name"]: j for j in prometheus.get("scrape_configs", [])}
    default_interval = prometheus.get("global", {}).get("scrape_interval", "1m")
    for name in APPS:
        env = service_env(doc, name, TEST_VALUES)
        addr = env.get("METRICS_ADDR", "")
        check(bool(addr), f"{name} sets METRICS_ADDR")
        if not addr:
            continue
        host, port = host_port(addr)
        public = host_port(env["BACKEND_API_ADDR" if name == "backend-api" else "GATEWAY_ADDR"])[1]
        check(host == "0.0.0.0", f"{name}'s METRICS_ADDR {addr} listens on its container's every "
                                 "interface (Prometheus is another container)")
        check(port != public, f"{name}'s metrics port {port} is not its public port")
        check(port not in published(services[name]), f"{name}'s metrics port {port} is not published")
        job = jobs.get(name, {})
        targets = [t for sc in job.get("static_configs", []) for t in sc.get("targets", [])]
        check(targets == [f"{name}:{port}"] and job.get("metrics_path", "/metrics") == "/metrics",
              f"Prometheus scrapes {name}:{port}/metrics as job {name} (got {targets})")
        check(job.get("scrape_interval", default_interval) == "15s", f"Prometheus scrapes {name} every 15s")
    prom = services.get("prometheus", {})
    check((f"./{PROMETHEUS_CONFIG}", "/etc/prometheus/prometheus.yml", True) in bind_mounts(prom),
          f"prometheus reads {PROMETHEUS_CONFIG}, mounted read-only")

    # Traces: OTLP/HTTP to the compose file's Jaeger unless the user points them elsewhere.
    for name in APPS:
        endpoint = service_env(doc, name, TEST_VALUES).get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
        u = urllib.parse.urlsplit(endpoint)
        check(u.scheme == "http" and u.hostname == "jaeger" and u.port == OTLP_HTTP_PORT and u.path in ("", "/"),
              f"{name} sends its traces to http://jaeger:{OTLP_HTTP_PORT} by default (got {endpoint!r})")
        check("${OTEL_EXPORTER_OTLP_ENDPOINT:-" in str(services[name]["environment"].get(
            "OTEL_EXPORTER_OTLP_ENDPOINT")), f"{name}'s OTLP endpoint can be set from the environment")
    check(OTLP_HTTP_PORT not in published(services.get("jaeger", {})),
          f"Jaeger's OTLP port {OTLP_HTTP_PORT} is not published")

    # The observability pages: loopback only.
    for name, port in PAGES.items():
        ports = [str(p) for p in services.get(name, {}).get("ports", [])]
        check(ports == [port], f"{name}'s page is published on {port.rsplit(':', 1)[0]} only (got {ports})")


def promtool():
    path = shutil.which("promtool")
    if not path:
        print("skip promtool is missing (Debian: apt-get install prometheus; CI installs it): "
              f"{PROMETHEUS_CONFIG} and the dashboards' PromQL are not checked")
    return path


def dashboard_exprs():
    """(file, panel title, expr) of every query of every dashboard in deploy/grafana/."""
    out = []

    def walk(path, panels):
        for p in panels:
            for t in p.get("targets", []):
                if "expr" in t:
                    out.append((path, p.get("title", ""), t["expr"]))
            walk(path, p.get("panels", []))

    for path in sorted(glob.glob(os.path.join(ROOT, GRAFANA, "**", "*.json"), recursive=True)):
        walk(os.path.relpath(path, ROOT), json.load(open(path)).get("panels", []))
    return out


# Grafana's variables, replaced by values of the same kind before PromQL parses the expression.
GRAFANA_VARIABLES = [(re.compile(r"\$__(rate_)?interval\b|\$\{__(rate_)?interval\}"), "1m"),
                     (re.compile(r"\$__range\b|\$\{__range\}"), "1h"),
                     (re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?"), ".+")]


def check_observability_files(doc):
    services = doc["services"]
    grafana = services.get("grafana", {})
    mounts = {target: source for source, target, _ in bind_mounts(grafana)}

    # Grafana's provisioning: the compose Prometheus, and the directory the dashboard is in.
    datasources = yaml.safe_load(open(os.path.join(ROOT, GRAFANA, "provisioning/datasources/prometheus.yaml")))
    urls = [d.get("url") for d in datasources.get("datasources", []) if d.get("type") == "prometheus"]
    check(urls == ["http://prometheus:9090"], f"Grafana's data source is the compose Prometheus (got {urls})")
    check(mounts.get("/etc/grafana/provisioning/datasources") == f"./{GRAFANA}/provisioning/datasources" and
          mounts.get("/etc/grafana/provisioning/dashboards") == f"./{GRAFANA}/provisioning/dashboards",
          "grafana reads its provisioning from deploy/grafana/provisioning/")
    providers = yaml.safe_load(open(os.path.join(ROOT, GRAFANA, "provisioning/dashboards/gateway-stack.yaml")))
    paths = [p.get("options", {}).get("path") for p in providers.get("providers", [])]
    dashboards = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, GRAFANA, "*.json")))
    check(bool(dashboards) and all(
        mounts.get(f"{paths[0] if paths else '?'}/{os.path.basename(d)}") == f"./{d}" for d in dashboards),
        f"grafana mounts each dashboard ({', '.join(dashboards)}) into its provider's directory {paths}")

    exe = promtool()
    if not exe:
        return
    out = subprocess.run([exe, "check", "config", os.path.join(ROOT, PROMETHEUS_CONFIG)],
                         capture_output=True, text=True)
    if out.returncode:
        print(out.stdout + out.stderr)
    check(out.returncode == 0, f"promtool check config {PROMETHEUS_CONFIG}")

    exprs = dashboard_exprs()
    rules = []
    for i, (path, title, expr) in enumerate(exprs):
        for pattern, value in GRAFANA_VARIABLES:
            expr = pattern.sub(value, expr)
        rules.append({"record": f"dashboard:expr_{i}", "expr": expr})
    with tempfile.NamedTemporaryFile("w", suffix=".yml", dir=WORKDIR, delete=False) as f:
        yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, f)
    out = subprocess.run([exe, "check", "rules", f.name], capture_output=True, text=True)
    if out.returncode:
        print(out.stdout + out.stderr)
        for i, (path, title, expr) in enumerate(exprs):
            if f'"dashboard:expr_{i}"' in out.stdout + out.stderr:
                print(f"     {path}: {title}: {expr}")
    check(bool(exprs) and out.returncode == 0,
          f"the {len(exprs)} expressions of the dashboards in {GRAFANA}/ parse as PromQL (promtool check rules)")


class OtlpReceiver:
    """A local OTLP/HTTP receiver: keeps every POST (path, content type, decoded body)."""

    def __init__(self):
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                received.append((self.path, self.headers.get("content-type", ""), body))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans_from(self, service):
        """Did an OTLP/HTTP protobuf export of `service`'s spans arrive?"""
        return any(path == "/v1/traces" and ctype.startswith("application/x-protobuf")
                   and service.encode() in body for path, ctype, body in self.received)


def metrics(port):
    """(status, text) of GET /metrics on a local port."""
    try:
        status, _, body = request(port, "GET", "/metrics")
        return status, body.decode(errors="replace")
    except OSError as e:
        return None, str(e)


def samples(text, name):
    """The sample lines of metric `name` (not its # HELP / # TYPE lines)."""
    return [line for line in text.splitlines() if re.match(rf"{re.escape(name)}[{{ ]", line)]


def check_binaries(doc):
    # Cargo's own target directory (CARGO_TARGET_DIR, a cargo config, or ./target).
    if os.environ.get("BIN_DIR"):
        bin_dir = os.environ["BIN_DIR"]
    else:
        target = subprocess.run([os.path.join(ROOT, "scripts", "target-dir")], check=True,
                                capture_output=True, text=True).stdout.strip()
        bin_dir = os.path.join(target, "release")
    backend_env = service_env(doc, "backend-api", TEST_VALUES)
    gateway_env = service_env(doc, "frontend-gateway", TEST_VALUES)
    admin = urllib.parse.urlsplit(ADMIN_URL)
    db = f"compose_check_{os.getpid()}"
    psql(f"DROP DATABASE IF EXISTS {db}")
    psql("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') "
         "THEN CREATE ROLE app LOGIN; END IF; END$$")
    psql(f"ALTER ROLE app PASSWORD '{TEST_VALUES['POSTGRES_PASSWORD']}'")
    psql(f"CREATE DATABASE {db} OWNER app")
    backend_port, gateway_port = free_port(), free_port()
    metrics_ports = {"backend-api": free_port(), "frontend-gateway": free_port()}
    otlp = OtlpReceiver()

    def plumb(env, addr_var, port, metrics_port):
        env = dict(env)
        url = urllib.parse.urlsplit(env["DATABASE_URL"])
        assert url.hostname == "postgres" and url.path == "/app", env["DATABASE_URL"]
        netloc = url.netloc.replace("@postgres:5432", f"@{admin.hostname or '127.0.0.1'}:{admin.port or 5432}")
        env["DATABASE_URL"] = urllib.parse.urlunsplit(url._replace(netloc=netloc, path=f"/{db}"))
        env[addr_var] = env[addr_var].replace(env[addr_var].rsplit(":", 1)[1], str(port))
        env["METRICS_ADDR"] = f"{host_port(env['METRICS_ADDR'])[0]}:{metrics_port}"
        otel = urllib.parse.urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
        assert otel.netloc == f"jaeger:{OTLP_HTTP_PORT}", env["OTEL_EXPORTER_OTLP_ENDPOINT"]
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = urllib.parse.urlunsplit(otel._replace(netloc=f"127.0.0.1:{otlp.port}"))
        if "BACKEND_API_URL" in env:
            env["BACKEND_API_URL"] = env["BACKEND_API_URL"].replace("backend-api:8080", f"127.0.0.1:{backend_port}")
        env["PATH"] = os.environ.get("PATH", "")
        return env

    benv = plumb(backend_env, "BACKEND_API_ADDR", backend_port, metrics_ports["backend-api"])
    genv = plumb(gateway_env, "GATEWAY_ADDR", gateway_port, metrics_ports["frontend-gateway"])
    backend = os.path.join(bin_dir, "backend-api")
    gateway = os.path.join(bin_dir, "frontend-gateway")
    procs = []
    try:
        procs.append(subprocess.Popen([backend], env=benv, cwd=WORKDIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        check(wait_healthy(backend, benv), "backend-api becomes healthy (its `healthcheck` exits 0)")
        procs.append(subprocess.Popen([gateway], env=genv, cwd=WORKDIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        check(wait_healthy(gateway, genv), "frontend-gateway becomes healthy")

        origin = genv["PUBLIC_ORIGIN"]
        status, headers, body = request(gateway_port, "POST", "/api/auth/register",
                                        {"email": "compose@example.com", "password": "compose-password",
                                         "name": "Compose"}, {"origin": origin})
        check(status == 202, f"register through the gateway answers 202 (got {status}: {body[:200]!r})")
        # The verification mail cannot go anywhere here; mark the address verified as its link would.
        db_url = urllib.parse.urlunsplit(admin._replace(path=f"/{db}"))
        verified = False
        for _ in range(50):
            out = subprocess.run(["psql", db_url, "-v", "ON_ERROR_STOP=1", "-qAtc",
                                  "UPDATE users SET email_verified_at = now() "
                                  "WHERE email_key = lower('compose@example.com') RETURNING id"],
                                 check=True, capture_output=True, text=True)
            if out.stdout.strip():
                verified = True
                break
            time.sleep(0.1)
        check(verified, "the registered user is in the database")
        status, headers, body = request(gateway_port, "POST", "/api/auth/signin",
                                        {"email": "compose@example.com", "password": "compose-password"},
                                        {"origin": origin})
        check(status == 200, f"sign-in through the gateway answers 200 (got {status}: {body[:200]!r})")
        cookies = [v for k, v in headers if k.lower() == "set-cookie" and v.startswith("__Host-session=")]
        check(bool(cookies) and "Secure" in cookies[0] and "HttpOnly" in cookies[0],
              "production session cookie is __Host-session; Secure; HttpOnly")
        cookie = cookies[0].split(";", 1)[0] if cookies else ""
        status, _, body = request(gateway_port, "POST", "/api/workspaces", {"name": "From compose"},
                                  {"cookie": cookie, "origin": origin})
        check(status == 201, f"a proxied POST /api/workspaces answers 201 (got {status}: {body[:200]!r})")
        status, _, body = request(gateway_port, "GET", "/api/workspaces", None, {"cookie": cookie})
        names = [w["name"] for w in json.loads(body).get("items", [])] if status == 200 else []
        check(names == ["From compose"], f"the proxied list shows it (got {status}, {names})")
        status, headers, _ = request(backend_port, "GET", "/me")
        check(status == 401, "the backend refuses a request without a token")

        # Metrics: on METRICS_ADDR, counting what was just served; never on the public port.
        for name, public in (("backend-api", backend_port), ("frontend-gateway", gateway_port)):
            status, text = metrics(metrics_ports[name])
            check(status == 200, f"{name} serves GET /metrics on METRICS_ADDR (got {status})")
            check(bool(samples(text, "http_requests_total")), f"{name}'s /metrics counts http_requests_total")
            check(any(f'service="{name}"' in line for line in samples(text, "build_info")),
                  f"{name}'s /metrics has build_info{{service=\"{name}\"}}")
            status, text = metrics(public)
            check(status != 200 and not samples(text, "http_requests_total"),
                  f"{name}'s public port does not serve /metrics (got {status})")
        status, text = metrics(metrics_ports["frontend-gateway"])
        check(any('outcome="ok"' in line for line in samples(text, "gateway_proxy_requests_total")),
              "the gateway's /metrics counts the proxied requests (gateway_proxy_requests_total, outcome ok)")
        status, text = metrics(metrics_ports["backend-api"])
        check(any('reason="missing"' in line for line in samples(text, "backend_token_verification_failures_total")),
              "the backend's /metrics counts the request without a token "
              "(backend_token_verification_failures_total, reason missing)")

        # Traces: exported in batches; both services' spans reach the OTLP endpoint.
        deadline = time.time() + 15
        while time.time() < deadline and not all(otlp.spans_from(n) for n in APPS):
            time.sleep(0.5)
        for name in APPS:
            check(otlp.spans_from(name), f"{name}'s spans reach OTEL_EXPORTER_OTLP_ENDPOINT "
                                         "(OTLP/HTTP protobuf on /v1/traces)")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        otlp.server.shutdown()
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")

    # A missing secret stops each service with a message naming it.
    for binary, env, secret in ((backend, benv, "API_SECRET"), (gateway, genv, "SESSION_KEY"),
                                (gateway, genv, "API_SECRET"), (gateway, genv, "SMTP_URL")):
        env = {k: v for k, v in env.items() if k != secret}
        out = subprocess.run([binary], env=env, capture_output=True, text=True, timeout=20, cwd=WORKDIR)
        check(out.returncode != 0 and secret in out.stderr,
              f"{os.path.basename(binary)} without {secret} refuses to start and names it")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1 or set(sys.argv[1:]) - set(args) - {"--no-binaries"}:
        sys.exit("usage: compose_check.py [--no-binaries] path/to/compose-spec.json")
    doc = yaml.safe_load(open(os.path.join(ROOT, "docker-compose.yml")))
    text = open(os.path.join(ROOT, "docker-compose.yml")).read()

    check_schema(doc, args[0])
    check_rules(doc, text)
    check_observability_files(doc)
    if "--no-binaries" in sys.argv:
        print("skip the release binaries (--no-binaries)")
    else:
        check_binaries(doc)

    print(f"{len(failures)} failed" if failures else "compose check passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
