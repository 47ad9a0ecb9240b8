# Development tasks. `just --list` shows them.

# Reads `.env` (development settings) when present.
set dotenv-load := true

# Where tests create their throwaway databases: DATABASE_URL when set, else the local server.
test_db := env_var_or_default("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")

default:
    @just --list

# Run every test against a real Postgres (each test makes and drops its own database).
test:
    DATABASE_URL={{test_db}} cargo test --workspace --locked

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
