# Build: docker build -t tessera .
# The binary embeds config/default.toml and the SQL migrations at build time,
# so the runtime image needs only the binary (and CA certificates).

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --home-dir /var/lib/tessera --create-home --shell /usr/sbin/nologin tessera
COPY --from=builder /src/target/release/tessera /usr/local/bin/tessera
# Relative paths in the defaults (data/tessera.db, keys/) resolve here.
WORKDIR /var/lib/tessera
USER tessera
ENV TESSERA_BIND=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["tessera"]
CMD ["serve"]
