# syntax=docker/dockerfile:1
# Multi-stage build: cargo-chef caches the dependencies; the runtime is distroless
# `base-nossl` — glibc, CA certificates and tzdata, and no OpenSSL, shell or package manager
# (the binary speaks TLS with rustls and reads the OS trust store,
# /etc/ssl/certs/ca-certificates.crt) — plus libgcc_s, the one library a Rust binary needs
# beyond glibc. Debian's own ca-certificates package would pull in openssl, and distroless
# `cc` is built on `base`, which carries libssl3.
#
# Bases are pinned by the digest of their multi-arch index. Where each digest came from:
# - rust:1.95-slim-bookworm: the digest that public Dockerfiles pinning this tag (also as
#   rust:1.95.0-slim-bookworm) agree on, one recording its toolchain as rustc 1.95.0
#   (59807616e 2026-04-14) on glibc 2.36-9+deb12u14 (code search of public GitHub repositories;
#   docker-library/repo-info keeps the current tags only and no longer lists 1.95).
# - gcr.io/distroless/base-nossl-debian12: as pinned by a public Dockerfile that made the same
#   move from distroless cc to base-nossl plus libgcc_s (code search; distroless publishes
#   digests only in its registry).
# Neither could be pulled here to confirm. To move a base, resolve the tag again
# (`docker buildx imagetools inspect <image>:<tag>` or `crane digest <image>:<tag>`) and change
# tag and digest together.
ARG RUST_IMAGE=rust:1.95-slim-bookworm@sha256:d7482085ff5b415f84dba5647ae71606650bdef00db7aeb69f4b3d170c3e4082
ARG RUNTIME_IMAGE=gcr.io/distroless/base-nossl-debian12@sha256:afec526a569d6adbe4980b15b9b7582c128f386a868db57f06f1fa2f5e3e48a4

FROM ${RUST_IMAGE} AS chef
# `make` builds jemalloc, the binary's allocator (tikv-jemalloc-sys); the slim image has the C
# compiler but not make.
RUN apt-get update \
    && apt-get install -y --no-install-recommends make=4.3-4.1 \
    && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version 0.1.73
WORKDIR /app

FROM chef AS planner
# The whole workspace: the product at the top and the simulator under crates/ (it ships in the
# binary as `demo` and `simulate`).
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
# The allocator's compiled-in settings, read when the dependencies are built, and the
# profile-guided-optimization wrapper and profile every optimized compilation goes through
# (.cargo/pgo-rustc is a bash script; the rust image has bash).
COPY .cargo .cargo
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin openai-audit-ingest
# Stage what the runtime gets: the binary, libgcc_s at its real multiarch path under /usr/lib
# (searched by the loader; one COPY serves every architecture), and the state directory. The
# build fails if the binary links anything beyond glibc and libgcc_s — OpenSSL above all.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN set -eux; \
    bin=target/release/openai-audit-ingest; \
    if ldd "$bin" | grep -vE 'linux-vdso|ld-linux|/lib.*/(libc|libm|libdl|librt|libpthread|libgcc_s)\.so'; then \
        echo "unexpected shared library above" >&2; exit 1; \
    fi; \
    lib="$(readlink -f "$(ldd "$bin" | awk '/libgcc_s/ {print $3}')")"; \
    install -D -m 0644 "$lib" "/out/rootfs$lib"; \
    install -D -m 0755 "$bin" /out/rootfs/usr/local/bin/openai-audit-ingest; \
    install -d /out/state

FROM ${RUNTIME_IMAGE} AS runtime
LABEL org.opencontainers.image.title="openai-audit-ingest" \
      org.opencontainers.image.description="Ships OpenAI audit logs, organization inventory and ChatGPT Compliance Logs to an ingestion service" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/rootfs/ /
# The state directory belongs to the daemon's user; the files it writes there are 0600. (COPY
# cannot portably give the directory itself 0700, and there is no shell to chmod it.)
COPY --from=builder --chown=10001:10001 /out/state /var/lib/openai-audit-ingest
ENV OAI_INGEST__STATE__DIR=/var/lib/openai-audit-ingest \
    OAI_INGEST__SERVER__LISTEN=0.0.0.0:9464
VOLUME ["/var/lib/openai-audit-ingest"]
# The one place the user may write: `demo` puts its demo-output/ in the working directory.
WORKDIR /var/lib/openai-audit-ingest
EXPOSE 9464
# Numeric: the image has no passwd entry for it, and Kubernetes' runAsNonRoot needs a number.
USER 10001:10001
# `health` asks the local /readyz (server.listen) and exits 0 or 1; there is no shell or curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/openai-audit-ingest", "health"]
ENTRYPOINT ["/usr/local/bin/openai-audit-ingest"]
CMD ["run"]
