# syntax=docker/dockerfile:1
# Builds both services. Targets: `backend-api` and `frontend-gateway` (small, non-root images).
#   docker build --target backend-api -t gateway-stack/backend-api .
# Dependencies are compiled in their own layer (cargo-chef), so a source change rebuilds only
# our crates. No database is needed at build time: queries are checked at run time and the
# migrations are embedded from migrations/.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.71
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json -p backend-api -p frontend-gateway
COPY . .
# The commit `build_info` reports (`.git` is not in the build context):
#   docker build --build-arg GIT_COMMIT=$(git rev-parse --short=12 HEAD) ...
ARG GIT_COMMIT=unknown
ENV GIT_COMMIT=${GIT_COMMIT}
RUN cargo build --release --locked -p backend-api -p frontend-gateway --bins \
 && install -D -m 0755 target/release/backend-api /out/backend-api \
 && install -D -m 0755 target/release/migrate /out/migrate \
 && install -D -m 0755 target/release/frontend-gateway /out/frontend-gateway

# glibc + libgcc only, no shell, runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
WORKDIR /
USER nonroot:nonroot

FROM runtime AS backend-api
COPY --from=builder /out/backend-api /usr/local/bin/backend-api
# `migrate` applies the migrations ahead of a rollout (the Kubernetes migration Job runs it).
COPY --from=builder /out/migrate /usr/local/bin/migrate
ENV BACKEND_API_ADDR=0.0.0.0:8080 APP_ENV=production
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/backend-api", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/backend-api"]

FROM runtime AS frontend-gateway
COPY --from=builder /out/frontend-gateway /usr/local/bin/frontend-gateway
ENV GATEWAY_ADDR=0.0.0.0:3000 APP_ENV=production
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/frontend-gateway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/frontend-gateway"]
