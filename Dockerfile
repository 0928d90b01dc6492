# The bot as a container image: `docker build -t sme-advisor .` then, for example,
#   docker run -d --name sme-advisor --env-file .env -v sme-data:/data -p 127.0.0.1:9100:9100 sme-advisor
# The database lives on the /data volume; the content is baked in at /app (mount your own over
# /app/dialogs and /app/knowledge to edit it without a rebuild, then /reload in Telegram).

# ---- build: the release binary (SQLite is compiled in by rusqlite's `bundled` feature)
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY examples ./examples
RUN cargo build --release --locked --bin sme-advisor && strip target/release/sme-advisor

# ---- run: a small Debian with CA certificates, a non-root user, nothing else
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin advisor \
 && mkdir -p /data \
 && chown advisor:advisor /data
COPY --from=build /src/target/release/sme-advisor /usr/local/bin/sme-advisor
COPY dialogs /app/dialogs
COPY knowledge /app/knowledge
WORKDIR /app
ENV DATABASE_PATH=/data/sme-advisor.sqlite3 \
    DIALOGS_DIR=/app/dialogs \
    KNOWLEDGE_DIR=/app/knowledge \
    METRICS_LISTEN=0.0.0.0:9100 \
    LOG_FORMAT=json
USER advisor
VOLUME ["/data"]
# 8443: the webhook (when WEBHOOK_URL is set), behind your TLS proxy; 9100: /healthz, /readyz, /metrics
EXPOSE 8443 9100
ENTRYPOINT ["sme-advisor"]
CMD ["serve"]
