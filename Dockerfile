# One image with all three services; docker-compose picks the binary per service.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p linktrace-ingest -p linktrace-consumer -p linktrace-api --bins

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/linktrace-ingest /src/target/release/linktrace-consumer /src/target/release/linktrace-api /src/target/release/linktrace-admin /usr/local/bin/
USER nobody
