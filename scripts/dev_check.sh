#!/usr/bin/env bash
# `just dev-check`: runs `just dev` (scripts/dev.sh) the way a newcomer does and checks that
# the whole stack comes up: a throwaway database on DATABASE_URL's server, then the gateway's
# /readyz on :3000, the demo user signing in through the gateway, its demo workspace through
# the proxy, the mail catcher answering (when Node.js is there), both services' /metrics at the
# addresses dev.sh prints (counting requests: an `http_requests_total` sample), and Ctrl-C
# (SIGINT) stopping every process dev.sh started. CI runs it with CARGO_TARGET_DIR set, so a
# script that looks for binaries under ./target fails here.
set -euo pipefail
cd "$(dirname "$0")/.."

SCRIPT=dev-check
. scripts/lib.sh

ADMIN_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
DB_NAME=$(throwaway_db dev_check)
DB_URL=$(database_url "$ADMIN_URL" "$DB_NAME")
for port in 3000 8080; do
    if python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $port)) != 0)"; then
        die "port $port is taken; stop what listens there first"
    fi
done

LOG=$(mktemp)
DEV_PID=""
cleanup() {
    status=$?
    if [ -n "$DEV_PID" ] && kill -0 "$DEV_PID" 2>/dev/null; then
        kill -INT -- "-$DEV_PID" 2>/dev/null || true
        sleep 2
        kill -KILL -- "-$DEV_PID" 2>/dev/null || true
    fi
    psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null 2>&1 || true
    [ "$status" -eq 0 ] || { echo "--- just dev output:"; cat "$LOG"; } >&2
    rm -f "$LOG"
    exit "$status"
}
trap cleanup EXIT

say "just dev on database $DB_NAME (CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-unset}, binaries in $(scripts/target-dir)/debug)"
# Its own process group, so Ctrl-C can be sent to it as a terminal would.
DATABASE_URL="$DB_URL" setsid just dev >"$LOG" 2>&1 < /dev/null &
DEV_PID=$!

ready=""
for _ in $(seq 1 600); do
    kill -0 "$DEV_PID" 2>/dev/null || die "just dev exited before the stack was ready"
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/readyz', timeout=1)" 2>/dev/null; then
        ready=yes
        break
    fi
    sleep 1
done
[ -n "$ready" ] || die "the gateway did not become ready within 10 minutes"
say "the gateway is ready; signing in as the demo user"

python3 - <<'PY' || die "the demo user could not sign in and list their workspace through the gateway"
import http.cookiejar, json, urllib.request
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
body = json.dumps({"email": "demo@example.com", "password": "demo-password"}).encode()
req = urllib.request.Request("http://127.0.0.1:3000/api/auth/signin", data=body,
                             headers={"Content-Type": "application/json"})
session = json.load(opener.open(req, timeout=10))
assert session["user"]["email"] == "demo@example.com", session
page = json.load(opener.open("http://127.0.0.1:3000/api/workspaces", timeout=10))
names = [w["name"] for w in page["items"]]
assert "Demo workspace" in names, names
print(f"signed in as {session['user']['email']}; workspaces: {names}")
PY

# The mail catcher (when Node.js is here, as in CI) answers, and must stop with the rest.
MAIL_PORT=$(sed -n 's/.*mail catcher: http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$LOG" | head -n1)
if [ -n "$MAIL_PORT" ]; then
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$MAIL_PORT/email', timeout=5)" ||
        die "the mail catcher does not answer on $MAIL_PORT"
    say "the mail catcher answers on $MAIL_PORT"
fi

# Each service's /metrics, on the address dev.sh printed (its own listener, not the public port).
METRICS_LINE=""
for _ in $(seq 1 50); do
    METRICS_LINE=$(grep -a -m1 '\[dev\].* metrics: http://' "$LOG" || true)
    [ -n "$METRICS_LINE" ] && break
    sleep 0.2
done
METRICS_ADDRS=""
if [ -n "$METRICS_LINE" ]; then
    METRICS_ADDRS=$(printf '%s\n' "$METRICS_LINE" | grep -o 'http://[0-9.]*:[0-9]*/metrics' | sed 's|^http://||; s|/metrics$||')
    [ "$(printf '%s\n' "$METRICS_ADDRS" | wc -l)" -eq 2 ] || die "just dev printed no two metrics addresses: $METRICS_LINE"
    for addr in $METRICS_ADDRS; do
        python3 - "$addr" <<'PY' || die "no http_requests_total sample at http://$addr/metrics"
import sys, urllib.request
text = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=5).read().decode()
assert any(line.startswith("http_requests_total") for line in text.splitlines()), text[:2000]
PY
        say "http://$addr/metrics counts requests"
    done
elif grep -aq '\[dev\].* METRICS_ADDR is set' "$LOG"; then
    say "METRICS_ADDR is set in the environment or .env: just dev chose no metrics addresses, so none is checked"
else
    die "just dev did not print the services' metrics addresses"
fi

say "Ctrl-C"
kill -INT -- "-$DEV_PID"
for _ in $(seq 1 30); do
    kill -0 "$DEV_PID" 2>/dev/null || break
    sleep 0.5
done
if kill -0 "$DEV_PID" 2>/dev/null; then die "just dev did not stop on Ctrl-C"; fi
for port in 3000 8080 $MAIL_PORT $(for addr in $METRICS_ADDRS; do echo "${addr##*:}"; done); do
    if python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $port)) != 0)"; then
        die "something still listens on $port after Ctrl-C"
    fi
done
DEV_PID=""
grep -q "stopped" "$LOG" || die "just dev did not say it stopped"
say "ok: just dev ran the stack and stopped cleanly"
