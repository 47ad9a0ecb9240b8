"""The credentials the load uses: the bearer token (at most 300 s, re-minted as it ages; minted by the project's own
`mint-token` binary, signed exactly as the gateway signs), the helper user whose real argon2id
hash the seeded users share, and session cookies from signing in through the gateway."""

import json
import os
import subprocess

from .config import API_SECRET, HELPER_EMAIL, PASSWORD, TOKEN_LIFETIME_S
from .net import cookie_from, request


def mint_token(mint_bin, user_id, email, lifetime_s=TOKEN_LIFETIME_S):
    """`API_SECRET=... mint-token <user id> <email> <lifetime s>`; the token it prints."""
    try:
        r = subprocess.run([str(mint_bin), user_id, email, str(lifetime_s)], capture_output=True, text=True,
                           env=dict(os.environ, API_SECRET=API_SECRET), stdin=subprocess.DEVNULL, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError(f"{mint_bin} could not run: {e}") from e
    token = r.stdout.strip()
    if r.returncode != 0 or not token:
        raise RuntimeError(f"{mint_bin} exited with {r.returncode}: {r.stderr.strip()}")
    return token


def register_helper(port):
    """Registers the helper user through the gateway, so the database holds a real argon2id hash
    (the account is written just after the 202: `db.share_helper_hash` waits for it)."""
    status, _, body = request(port, "POST", "/api/auth/register",
                              {"Content-Type": "application/json"},
                              json.dumps({"email": HELPER_EMAIL, "password": PASSWORD, "name": "Bench helper"}))
    if status != 202:
        raise RuntimeError(f"POST /api/auth/register answered {status}: {body[:300]!r}")


def sign_in(port, email):
    """Signs `email` in through the gateway on `port`; returns the session cookie's value."""
    status, headers, body = request(port, "POST", "/api/auth/signin",
                                    {"Content-Type": "application/json"},
                                    json.dumps({"email": email, "password": PASSWORD}))
    cookie = cookie_from(headers, "session") or cookie_from(headers, "__Host-session")
    if status != 200 or not cookie:
        raise RuntimeError(f"sign-in as {email} answered {status} (cookie {'set' if cookie else 'missing'}): {body[:300]!r}")
    return cookie
