# syntax=docker/dockerfile:1

# ---- build ----
FROM rust:1-bookworm AS builder
WORKDIR /src
# sqlx's query macros (if any) must not need a live database at build time.
ENV SQLX_OFFLINE=true
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -m 0755 target/release/datasync-gateway /usr/local/bin/datasync-gateway

# ---- runtime ----
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin gateway \
    && install -d -o gateway -g gateway /var/lib/datasync-gateway/spool
# Snapshots not written to PostgreSQL by shutdown wait here for the next start (mount a volume).
ENV SPOOL_DIR=/var/lib/datasync-gateway/spool
COPY --from=builder /usr/local/bin/datasync-gateway /usr/local/bin/datasync-gateway
USER gateway
EXPOSE 8080
ENTRYPOINT ["datasync-gateway"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
