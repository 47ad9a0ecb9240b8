#!/usr/bin/env bash
# `just api-fuzz`: schemathesis against backend-api's own /openapi.json, with a valid token.
#
#  1. A fresh database `api_fuzz_<random>` on DATABASE_URL's server (dropped at the end).
#  2. backend-api ($BIN, default $(scripts/target-dir)/debug/backend-api, built with mint-token
#     if BIN is unset) on a free 127.0.0.1 port with a throwaway API_SECRET; it applies the
#     migrations at start-up.
#  3. A user and a workspace they own (with an admin), an invitation of the user to a second
#     workspace, inserted with psql, and a token for that user minted by
#     auth-contract's `mint-token` (the gateway's own signer), living 300 s: the longest lifetime
#     the backend accepts (auth_contract::MAX_LIFETIME_SECS); each pass gets a fresh one.
#  4. schemathesis with every check (no 5xx, status codes and content types documented,
#     response schemas and headers conformant, auth enforced, ...) in all its phases (coverage,
#     fuzzing, stateful), twice: first with the path ids pinned to the real workspace, its
#     owner and the invitation (so the handlers run end to end), then with generated ids
#     (unknown workspaces and invitations: the 404s, and everything the stateful phase creates
#     and deletes).
#  5. The backend is stopped and the database dropped, whatever happened.
#
# Settings (environment): DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres),
# BIN, API_FUZZ_EXAMPLES (examples per operation and pass, default 50), API_FUZZ_SEED,
# API_FUZZ_REPORT_DIR (default target/api-fuzz: JUnit report and the backend's log).
# Exit status: non-zero when schemathesis found a problem or the backend logged a 5xx or a panic.
set -euo pipefail
cd "$(dirname "$0")/.."

SCRIPT=api-fuzz
. scripts/lib.sh

ADMIN_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
EXAMPLES="${API_FUZZ_EXAMPLES:-50}"
REPORT_DIR="${API_FUZZ_REPORT_DIR:-target/api-fuzz}"
mkdir -p "$REPORT_DIR"
REPORT_DIR=$(cd "$REPORT_DIR" && pwd)

command -v psql >/dev/null || die "psql is needed (apt-get install postgresql-client)"
if ! command -v schemathesis >/dev/null 2>&1; then
    say "installing schemathesis from PyPI"
    python3 -m pip install --quiet --disable-pip-version-check schemathesis
fi
ST_VERSION=$(python3 -c 'import schemathesis; print(schemathesis.__version__)' 2>/dev/null ||
    schemathesis --version | grep -oE '[0-9]+\.[0-9.]+' | head -1)
case "$ST_VERSION" in
    4.*) ;;
    *) die "schemathesis $ST_VERSION found; this script speaks the v4 CLI (python3 -m pip install -U 'schemathesis>=4,<5')" ;;
esac

TARGET_DIR=$(scripts/target-dir)
if [ -z "${BIN:-}" ]; then
    say "building backend-api and mint-token"
    cargo build --quiet --locked -p backend-api -p auth-contract --bins
    BIN="$TARGET_DIR/debug/backend-api"
fi
[ -x "$BIN" ] || die "no executable at BIN=$BIN"
# mint-token beside BIN (a build of the same tree), else built here.
MINT_TOKEN="$(dirname "$BIN")/mint-token"
if [ ! -x "$MINT_TOKEN" ]; then
    say "building mint-token"
    cargo build --quiet --locked -p auth-contract --bin mint-token
    MINT_TOKEN="$TARGET_DIR/debug/mint-token"
fi

# --- database ----------------------------------------------------------------------------------
DB_NAME=$(throwaway_db api_fuzz)
DB_URL=$(database_url "$ADMIN_URL" "$DB_NAME")
psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE \"$DB_NAME\"" >/dev/null
say "database $DB_NAME"

BACKEND_PID=""
cleanup() {
    status=$?
    if [ -n "$BACKEND_PID" ] && kill -0 "$BACKEND_PID" 2>/dev/null; then
        kill -TERM "$BACKEND_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$BACKEND_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$BACKEND_PID" 2>/dev/null || true
        wait "$BACKEND_PID" 2>/dev/null || true
    fi
    psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null 2>&1 ||
        echo "[api-fuzz] could not drop database $DB_NAME" >&2
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- backend -----------------------------------------------------------------------------------
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
API_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')
BASE="http://127.0.0.1:$PORT"
LOG="$REPORT_DIR/backend.log"
env -u API_SECRET_PREVIOUS DATABASE_URL="$DB_URL" API_SECRET="$API_SECRET" \
    BACKEND_API_ADDR="127.0.0.1:$PORT" APP_ENV=development RUST_LOG="${RUST_LOG:-warn}" \
    "$BIN" >"$LOG" 2>&1 &
BACKEND_PID=$!
for _ in $(seq 150); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen('$BASE/readyz', timeout=1)" 2>/dev/null; then
        break
    fi
    kill -0 "$BACKEND_PID" 2>/dev/null || { cat "$LOG" >&2; die "backend-api exited during start-up"; }
    sleep 0.2
done
python3 -c "import urllib.request; urllib.request.urlopen('$BASE/readyz', timeout=1)" 2>/dev/null ||
    die "backend-api did not become ready on $BASE (log: $LOG)"
say "backend-api on $BASE (pid $BACKEND_PID, log $LOG)"

# --- a user, a workspace they own, a member, an invitation, and a token ----------------------
read -r USER_ID WORKSPACE_ID MEMBER_ID OTHER_ID INVITATION_ID < <(python3 -c 'import uuid; print(*(uuid.uuid4() for _ in range(5)))')
EMAIL="fuzzer@example.com"
psql "$DB_URL" -v ON_ERROR_STOP=1 -q >/dev/null <<SQL
-- ASCII lower-case addresses are their own key (web-common's email::key). Verified emails:
-- only a verified address sees and accepts its invitations.
INSERT INTO users (id, email, email_key, name, password_hash, email_verified_at) VALUES
    ('$USER_ID', '$EMAIL', '$EMAIL', 'Fuzzer', '\$argon2id\$v=19\$m=19456,t=2,p=1\$c2FsdHNhbHRzYWx0\$aGFzaA', now()),
    ('$MEMBER_ID', 'member@example.com', 'member@example.com', 'Member', '\$argon2id\$v=19\$m=19456,t=2,p=1\$c2FsdHNhbHRzYWx0\$aGFzaA', now());
INSERT INTO workspaces (id, name, created_by) VALUES
    ('$WORKSPACE_ID', 'Fuzzed', '$USER_ID'), ('$OTHER_ID', 'Inviting', '$MEMBER_ID');
INSERT INTO workspace_members (workspace_id, user_id, role) VALUES
    ('$WORKSPACE_ID', '$USER_ID', 'owner'), ('$WORKSPACE_ID', '$MEMBER_ID', 'admin'),
    ('$OTHER_ID', '$MEMBER_ID', 'owner');
-- The member invites the fuzzer to their workspace: accepting it (once) runs to the end.
INSERT INTO workspace_invitations (id, workspace_id, email, email_key, role, invited_by, expires_at)
    VALUES ('$INVITATION_ID', '$OTHER_ID', '$EMAIL', '$EMAIL', 'member', '$MEMBER_ID', now() + interval '1 day');
SQL

# The gateway's tokens live 60 s; the backend accepts at most 300 s, so each pass gets a new one.
mint() {
    API_SECRET="$API_SECRET" "$MINT_TOKEN" "$USER_ID" "$EMAIL" 300 ||
        die "mint-token could not mint a token"
}
TOKEN=$(mint)
python3 - "$BASE" "$TOKEN" <<'PY' || die "the minted token was refused by GET /me"
import sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/me", headers={"Authorization": "Bearer " + sys.argv[2]})
urllib.request.urlopen(req, timeout=5)
PY
say "user $USER_ID owns workspace $WORKSPACE_ID; token minted and accepted"

# --- schemathesis ------------------------------------------------------------------------------
SEED_ARGS=()
[ -n "${API_FUZZ_SEED:-}" ] && SEED_ARGS=(--seed "$API_FUZZ_SEED")
COMMON=(
    "$BASE/openapi.json"
    --checks all
    --max-examples "$EXAMPLES"
    --workers 1
    --generation-database none
    --suppress-health-check all
    --request-timeout 10
    --no-color
    "${SEED_ARGS[@]}"
)

# Semantic checks the schema cannot express, each documented on its operation: a cursor of the
# right alphabet that this API did not return is 400, an email that is not an address is 422, an
# invitation may be someone else's (404), answered (409 to revoke) or closed (410), its address
# a member's (409). Only those operations accept those statuses for "schema-valid" data.
CONFIG="$REPORT_DIR/schemathesis.toml"
write_config() {
    cat >"$CONFIG" <<TOML
# Written by scripts/api_fuzz.sh for one run.
[cache]
directory = "$REPORT_DIR/cache"

[[operations]]
include-operation-id = "list_workspaces"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409"]

[[operations]]
include-operation-id = "list_invitations"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404"]

[[operations]]
include-operation-id = "create_invitation"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

[[operations]]
include-operation-id = "revoke_invitation"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409"]

[[operations]]
include-operation-id = "accept_invitation"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "404", "409", "410"]

[[operations]]
include-operation-id = "decline_invitation"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "404", "410"]
TOML
    [ $# -eq 0 ] || printf '%s\n' "$@" >>"$CONFIG"
}

status=0
# Pass 1: every {id} is the real workspace, every {user_id} its owner (the caller) and every
# {invitation_id} the caller's invitation to the other workspace, so the handlers run to the end
# (renames, role changes, invitations, removals refused for the last owner, the invitation
# accepted or declined once and 410 after) while the workspace stays usable. Deleting the
# workspace is left out here (pass 2 covers it), or the rest of the pass would only see 404s.
say "pass 1/2: ids pinned to workspace $WORKSPACE_ID, its owner $USER_ID and invitation $INVITATION_ID"
write_config "" "[parameters]" "\"path.id\" = \"$WORKSPACE_ID\"" "\"path.user_id\" = \"$USER_ID\"" \
    "\"path.invitation_id\" = \"$INVITATION_ID\""
# With the ids pinned, a resource the stateful phase creates is never the one the next call
# names (a new workspace, then the pinned invitation of another one: its 404 is right), so the
# check that a created resource is found (ensure_resource_availability) has nothing to check
# here; pass 2, with generated ids, keeps it.
schemathesis --config-file "$CONFIG" run "${COMMON[@]}" \
    --header "Authorization: Bearer $TOKEN" \
    --exclude-operation-id delete_workspace \
    --exclude-checks ensure_resource_availability \
    --report junit --report-junit-path "$REPORT_DIR/pinned-ids.xml" || status=$?

# Pass 2 deletes workspaces it finds (through the stateful phase's links), so it runs last.
say "pass 2/2: generated ids ($EXAMPLES examples per operation)"
write_config
TOKEN=$(mint)
schemathesis --config-file "$CONFIG" run "${COMMON[@]}" \
    --header "Authorization: Bearer $TOKEN" \
    --report junit --report-junit-path "$REPORT_DIR/generated-ids.xml" || status=$?

# A 5xx or a panic is also in the backend's log (actix's own "request parse error" lines are
# schemathesis's malformed headers being refused, not failures).
server_errors() { sed 's/\x1b\[[0-9;]*m//g' "$LOG" | grep -E 'status=5[0-9]{2}|database error|panicked'; }
if server_errors >/dev/null; then
    say "server errors logged by backend-api ($LOG):"
    server_errors | tail -20 >&2
    [ "$status" -ne 0 ] || status=1
fi
if [ "$status" -eq 0 ]; then
    say "no failures"
else
    say "schemathesis reported failures (exit $status); reports in $REPORT_DIR"
fi
exit "$status"
