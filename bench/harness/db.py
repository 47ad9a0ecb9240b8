"""The benchmark database through psql: (re)creating BENCH_DB, seeding it with bench/seed.sql,
and the password hashes of the seeded users."""

import base64
import hashlib
import subprocess
import time

from .config import BENCH, HELPER_EMAIL, log


def psql(url, *, sql=None, file=None, variables=None, check=True):
    argv = ["psql", url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]
    for k, v in (variables or {}).items():
        argv += ["-v", f"{k}={v}"]
    argv += ["-c", sql] if sql is not None else ["-f", str(file)]
    r = subprocess.run(argv, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"psql failed: {r.stderr.strip()}")
    return r.stdout.strip()


def dummy_argon2id():
    """A well-formed argon2id PHC string that matches no password."""
    def b64(data):  # PHC: standard alphabet, no padding
        return base64.b64encode(data).rstrip(b"=").decode()

    salt = b64(hashlib.sha256(b"bench-salt").digest()[:16])
    digest = b64(hashlib.sha256(b"bench-dummy").digest())
    return f"$argon2id$v=19$m=19456,t=2,p=1${salt}${digest}"


def recreate(cfg):
    log(f"(re)creating database {cfg.bench_db} on {cfg.db_host}")
    psql(cfg.database_url, sql=f"DROP DATABASE IF EXISTS {cfg.bench_db} WITH (FORCE)")
    psql(cfg.database_url, sql=f"CREATE DATABASE {cfg.bench_db}")


def seed(url):
    """Runs bench/seed.sql; returns the row counts `users|workspaces|members`."""
    psql(url, file=BENCH / "seed.sql", variables={"dummy_hash": dummy_argon2id()})
    return psql(url, sql="SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM workspaces), "
                         "(SELECT count(*) FROM workspace_members)")


def user_id_and_email(url, email):
    row = psql(url, sql=f"SELECT id || '|' || email FROM users WHERE email = '{email}'")
    if "|" not in row:
        raise RuntimeError(f"the seeded database has no user {email}")
    return row.split("|", 1)


def share_helper_hash(url):
    """Gives every seeded user the helper user's real argon2id hash, then deletes the helper
    (once the registration, answered before it writes the account, has written it)."""
    for _ in range(100):
        if psql(url, sql=f"SELECT count(*) FROM users WHERE email = '{HELPER_EMAIL}'") == "1":
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"the helper user {HELPER_EMAIL} was not created within 10 s of its registration")
    psql(url, sql=(
        f"UPDATE users SET password_hash = (SELECT password_hash FROM users WHERE email = '{HELPER_EMAIL}') "
        f"WHERE email <> '{HELPER_EMAIL}'; DELETE FROM users WHERE email = '{HELPER_EMAIL}'"))
