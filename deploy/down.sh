#!/usr/bin/env bash
# Stops exactly what deploy/up.sh started, by pid.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for name in nginx api ingest webhooks consumer tansu clickhouse; do
  stop_pid "$name"
done
if [[ -f "$RUN/postgres.started-by-us" ]]; then
  log "stopping Postgres (up.sh started it)"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main stop || true
  rm -f "$RUN/postgres.started-by-us"
fi
log "stopped"
