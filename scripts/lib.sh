# Shared by the shell scripts (sourced, not run): messages, and throwaway databases.
# Set SCRIPT (the name shown in messages) before sourcing.

say() { printf '\033[1;34m[%s]\033[0m %s\n' "$SCRIPT" "$*"; }
die() { printf '\033[1;31m[%s]\033[0m %s\n' "$SCRIPT" "$*" >&2; exit 1; }

# `throwaway_db PREFIX`: a fresh database name, PREFIX_<12 random hex digits>.
throwaway_db() { echo "$1_$(python3 -c 'import uuid; print(uuid.uuid4().hex[:12])')"; }

# `database_url URL NAME`: URL with its database (the path) replaced by NAME, its query kept.
database_url() {
    python3 - "$1" "$2" <<'PY'
import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
print(u.urlunsplit((p.scheme, p.netloc, "/" + sys.argv[2], p.query, p.fragment)))
PY
}
