# syntax=docker/dockerfile:1
# imgforge: multi-stage build for linux/amd64 and linux/arm64 (.github/workflows/release.yml).
# Built with Debian's libvips-dev; runs on slim Debian with the libvips runtime and its HEIF module
# (without it AVIF output silently disappears), as a non-root user, with no capability, on a
# read-only root filesystem: the only writable paths are the two volumes. The container health
# check is the binary itself (`imgforge health`): no curl and no shell needed. See
# docs/deployment.md for how to run it and what it weighs.

FROM rust:1-bookworm AS build
# Build tools from Debian's stable release (its security updates included, so not pinned).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake pkg-config libvips-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY src ./src
COPY benches ./benches
COPY tests ./tests
RUN cargo build --release --locked --bin imgforge \
 && strip target/release/imgforge

FROM debian:bookworm-slim
# The runtime libraries, at the versions of Debian's stable release (security updates included).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvips42 libheif1 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 imgforge \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin imgforge \
 && install -d -o 10001 -g 10001 -m 0750 /var/cache/imgforge /run/imgforge
COPY --from=build /src/target/release/imgforge /usr/local/bin/imgforge
# Numeric, so that a runtime can verify it is not root (Kubernetes runAsNonRoot).
USER 10001:10001
WORKDIR /
# The disk cache, and the process's own files (pid file, sockets, libvips temporaries).
VOLUME ["/var/cache/imgforge", "/run/imgforge"]
# glibc arenas multiply with libvips worker threads; two keep RSS flat.
ENV MALLOC_ARENA_MAX=2 \
    TMPDIR=/run/imgforge \
    IMGFORGE_SERVER_PID_FILE=/run/imgforge/imgforge.pid \
    IMGFORGE_SERVER_UPGRADE_SOCK=/run/imgforge/upgrade.sock
# 3000: the public listener without a config file (imgproxy's environment alone: 8080);
# 9090: the admin listener (/metrics), on loopback unless IMGFORGE_PROMETHEUS_BIND says otherwise.
EXPOSE 3000 8080 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/imgforge", "health"]
STOPSIGNAL SIGTERM
# No arguments: the configuration comes from the environment, or from the file IMGFORGE_CONFIG
# names (which the health check then reads too).
ENTRYPOINT ["/usr/local/bin/imgforge"]
