#!/usr/bin/env python3
"""Checks docker-compose.yml without a Docker engine (`just compose-check`).

1. Validates the file against the Compose Specification JSON schema (path in argv[1]).
2. Checks our own rules: required secrets refused when missing (`${VAR:?...}`), production
   mode, health checks on every service, start order by health, the gateway reaching the
   backend by service name.
3. Runs the two release binaries with exactly the environment the compose file gives them,
   except for network plumbing that only exists inside compose: the service host names
   (`postgres`, `backend-api`) become 127.0.0.1, the listen ports become free local ports,
   and the database is a fresh one on DATABASE_URL's server with the compose credentials.
   SMTP_URL points at a closed local port: the gateway must start (and answer) without
   reaching its SMTP server. It then checks what compose relies on: each binary's
   `healthcheck` subcommand, a registration (202: its user is then marked verified in the
   database, as following the mailed link would), a sign-in through the gateway with a
   production (`__Host-`, Secure) cookie, a proxied API call, and that a missing secret (or
   SMTP_URL) stops a service with a message naming it.
"""

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

import jsonschema
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Cargo's own target directory (CARGO_TARGET_DIR, a cargo config, or ./target).
TARGET = subprocess.run([os.path.join(ROOT, "scripts", "target-dir")], check=True,
                        capture_output=True, text=True).stdout.strip()
BIN = os.environ.get("BIN_DIR") or os.path.join(TARGET, "release")
# The services read a `.env` in their working directory; a container has none, so neither do we.
WORKDIR = tempfile.mkdtemp(prefix="compose-check-")
ADMIN_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")

TEST_VALUES = {
    "POSTGRES_PASSWORD": "compose-check-password",
    "API_SECRET": "compose-check-api-secret-0123456789-0123456789",
    "SESSION_KEY": "compose-check-session-key-" + "0123456789" * 6,
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


def main():
    schema_path = sys.argv[1]
    doc = yaml.safe_load(open(os.path.join(ROOT, "docker-compose.yml")))
    text = open(os.path.join(ROOT, "docker-compose.yml")).read()

    # 1. The schema.
    schema = json.load(open(schema_path))
    errors = list(jsonschema.Draft201909Validator(schema).iter_errors(doc))
    for e in errors:
        print("     schema:", e.message, "at", list(e.path))
    check(not errors, "docker-compose.yml matches the Compose Specification schema")

    # 2. Our rules.
    services = doc["services"]
    check(set(services) == {"postgres", "backend-api", "frontend-gateway"}, "three services")
    for name, svc in services.items():
        check("healthcheck" in svc, f"{name} has a health check")
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
                service_env(doc, name, env)
            refused = False
        except KeyError:
            refused = True
        check(refused, f"interpolating without {secret} fails")
    for name in ("backend-api", "frontend-gateway"):
        check(services[name]["environment"]["APP_ENV"] == "production", f"{name} runs in production mode")
        check(services[name]["healthcheck"]["test"] == ["CMD", f"/usr/local/bin/{name}", "healthcheck"],
              f"{name}'s health check is its own `healthcheck` subcommand")
    check(services["frontend-gateway"]["environment"]["BACKEND_API_URL"] == "http://backend-api:8080",
          "the gateway reaches the backend by service name")
    check(all(p.startswith("127.0.0.1:") for p in services["backend-api"].get("ports", [])),
          "the backend's port is published on loopback only")

    # 3. The release binaries with the compose environment.
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

    def plumb(env, addr_var, port):
        env = dict(env)
        url = urllib.parse.urlsplit(env["DATABASE_URL"])
        assert url.hostname == "postgres" and url.path == "/app", env["DATABASE_URL"]
        netloc = url.netloc.replace("@postgres:5432", f"@{admin.hostname or '127.0.0.1'}:{admin.port or 5432}")
        env["DATABASE_URL"] = urllib.parse.urlunsplit(url._replace(netloc=netloc, path=f"/{db}"))
        env[addr_var] = env[addr_var].replace(env[addr_var].rsplit(":", 1)[1], str(port))
        if "BACKEND_API_URL" in env:
            env["BACKEND_API_URL"] = env["BACKEND_API_URL"].replace("backend-api:8080", f"127.0.0.1:{backend_port}")
        env["PATH"] = os.environ.get("PATH", "")
        return env

    benv = plumb(backend_env, "BACKEND_API_ADDR", backend_port)
    genv = plumb(gateway_env, "GATEWAY_ADDR", gateway_port)
    procs = []
    try:
        backend = os.path.join(BIN, "backend-api")
        gateway = os.path.join(BIN, "frontend-gateway")
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
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")

    # A missing secret stops each service with a message naming it.
    for binary, env, secret in ((backend, benv, "API_SECRET"), (gateway, genv, "SESSION_KEY"),
                                (gateway, genv, "API_SECRET"), (gateway, genv, "SMTP_URL")):
        env = {k: v for k, v in env.items() if k != secret}
        out = subprocess.run([binary], env=env, capture_output=True, text=True, timeout=20, cwd=WORKDIR)
        check(out.returncode != 0 and secret in out.stderr,
              f"{os.path.basename(binary)} without {secret} refuses to start and names it")

    print(f"{len(failures)} failed" if failures else "compose check passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
