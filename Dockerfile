# syntax=docker/dockerfile:1
# Multi-stage build: cargo-chef caches dependencies, the runtime image is Debian slim with
# CA certificates (rustls uses the OS trust store), a non-root user and a volume for state.

FROM rust:1.95-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.73
WORKDIR /app

FROM chef AS planner
# The whole workspace: the product at the top and the simulator under crates/ (it ships in the
# binary as `demo` and `simulate`).
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin openai-audit-ingest

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 ingest \
    && useradd --system --uid 10001 --gid ingest --home-dir /var/lib/openai-audit-ingest --shell /usr/sbin/nologin ingest \
    && install -d -o ingest -g ingest -m 0700 /var/lib/openai-audit-ingest
COPY --from=builder /app/target/release/openai-audit-ingest /usr/local/bin/openai-audit-ingest
ENV OAI_INGEST__STATE__DIR=/var/lib/openai-audit-ingest \
    OAI_INGEST__SERVER__LISTEN=0.0.0.0:9464
VOLUME ["/var/lib/openai-audit-ingest"]
EXPOSE 9464
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/openai-audit-ingest"]
CMD ["run"]
