#!/usr/bin/env bash
# Stops exactly what deploy/up.sh started, by pid.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for name in nginx $(service_pid_names) tansu clickhouse; do
  stop_pid "$name"
done
# The ClickHouse cluster of `deploy/up.sh --cluster`, if it runs.
if compgen -G "$RUN/clickhouse-*.pid" >/dev/null || [[ -f "$RUN/zookeeper.pid" ]]; then
  "$REPO/deploy/clickhouse-cluster.sh" down
fi
if [[ -f "$RUN/postgres.started-by-us" ]]; then
  log "stopping Postgres (up.sh started it)"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main stop || true
  rm -f "$RUN/postgres.started-by-us"
fi
log "stopped"
