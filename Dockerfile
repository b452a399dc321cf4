# One image with all three services; docker-compose picks the binary per service.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p linktrace-ingest -p linktrace-consumer -p linktrace-api -p linktrace-webhooks --bins

# The IP -> country database (ip-location-db, CC0), pinned, from the npm registry.
FROM node:20-bookworm-slim AS geoip
RUN npm install --no-audit --no-fund --prefix /geoip @ip-location-db/geo-whois-asn-country-mmdb@2.3.2026061719
# The dashboard's charting library (uPlot, MIT), pinned, from the npm registry.
RUN npm install --no-audit --no-fund --prefix /dashboard uplot@1.6.32

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/linktrace-ingest /src/target/release/linktrace-consumer /src/target/release/linktrace-api /src/target/release/linktrace-webhooks /src/target/release/linktrace-admin /usr/local/bin/
COPY --from=geoip /geoip/node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb /usr/share/linktrace/geoip.mmdb
COPY --from=geoip /dashboard/node_modules/uplot/dist/uPlot.iife.min.js /dashboard/node_modules/uplot/dist/uPlot.min.css /usr/share/linktrace/dashboard/
USER nobody
