# Development tasks. `just --list` shows them.

# Reads `.env` (development settings) when present.
set dotenv-load := true

# Where tests create their throwaway databases: DATABASE_URL when set, else the local server.
test_db := env_var_or_default("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")

default:
    @just --list

# Run every test against a real Postgres (each test makes and drops its own database).
# The browser test is `just e2e` (it needs Chromium).
test:
    DATABASE_URL={{test_db}} cargo test --workspace --exclude e2e --locked

# The real-browser test: headless Chromium through chromedriver (apt-get install chromium chromium-driver).
# Screenshots of failures land in target/e2e-screenshots/ (E2E_SCREENSHOTS=1 keeps step screenshots too).
e2e:
    DATABASE_URL={{test_db}} cargo test -p e2e --locked

# The whole stack on this machine: Postgres, migrations, demo user, backend :8080, gateway :3000.
dev:
    scripts/dev.sh

# Formatting check and clippy with warnings as errors.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings

# Create DATABASE_URL's database if needed and apply the migrations (the services also do this at start-up).
migrate:
    cargo run --quiet --locked -p backend-api --bin migrate

# Run frontend-gateway alone (reads .env).
gateway:
    cargo run --locked -p frontend-gateway --bin frontend-gateway

# Run backend-api alone (reads .env).
backend:
    cargo run --locked -p backend-api --bin backend-api
