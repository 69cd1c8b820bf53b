# syntax=docker/dockerfile:1
# imgforge: multi-stage build. Build with Debian's libvips-dev; run on slim Debian with the libvips
# runtime and its HEIF module (without it AVIF output silently disappears).

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake pkg-config libvips-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY src ./src
COPY benches ./benches
COPY tests ./tests
RUN cargo build --release --locked --bin imgforge

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvips42 libheif1 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /nonexistent --shell /usr/sbin/nologin imgforge \
 && mkdir -p /var/cache/imgforge /etc/imgforge \
 && chown imgforge /var/cache/imgforge
COPY --from=build /src/target/release/imgforge /usr/local/bin/imgforge
COPY conf/imgforge.toml /etc/imgforge/imgforge.toml
USER imgforge
# Writable state lives in the cache volume and /tmp (pid file, upgrade socket), so the root
# filesystem can be read-only: docker run --read-only --tmpfs /tmp -v cache:/var/cache/imgforge
VOLUME ["/var/cache/imgforge"]
# glibc arenas multiply with libvips worker threads; two keep RSS flat.
ENV MALLOC_ARENA_MAX=2 \
    IMGFORGE_SERVER_LISTEN=0.0.0.0:8080 \
    IMGFORGE_SERVER_ADMIN_LISTEN=0.0.0.0:9090
EXPOSE 8080 8443 9090
HEALTHCHECK --interval=10s --timeout=2s --retries=3 CMD curl -fsS http://127.0.0.1:9090/health || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/imgforge"]
CMD ["-c", "/etc/imgforge/imgforge.toml"]
