#!/usr/bin/env bash
# Starts the whole LinkTrace stack on this machine with local defaults:
# Postgres, ClickHouse, the tansu broker, ingest, consumer, the webhook worker, api, and
# the gateway on
# 127.0.0.1:8080. Installs what is missing. Idempotent: a second run changes nothing.
#   deploy/up.sh            everything, release build
#   deploy/up.sh --debug    everything, debug build (quicker to build while developing)
#   deploy/up.sh --infra    only Postgres, ClickHouse and the broker (what the tests need)
#   deploy/up.sh --cluster  (with any of the above) ClickHouse as a cluster: ZooKeeper and
#                           2 shards x 2 replicas (deploy/clickhouse-cluster.sh), node 1 on
#                           CLICKHOUSE_URL; two of each service, in cluster mode, behind the
#                           gateway (ingest-1 on 8081, ingest-2 on 8091, ...)
mode=""
for arg in "$@"; do
  case "$arg" in
    --debug) export LINKTRACE_PROFILE=debug ;;
    --infra) mode=infra ;;
    --cluster) export CLICKHOUSE_CLUSTER=linktrace SERVICE_INSTANCES=2 ;;
    *) echo "usage: $0 [--debug] [--infra] [--cluster]" >&2; exit 2 ;;
  esac
done
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ -n "${CLICKHOUSE_CLUSTER:-}" ]]; then
  if pid_alive clickhouse; then
    log "the single-node ClickHouse is running; stop the stack first (deploy/down.sh)"
    exit 1
  fi
  CLICKHOUSE_SKIP_SINGLE=1
  "$REPO/deploy/clickhouse-cluster.sh" up
  # The consumers write each run straight to its shard's replicas (ClickHouseConfig::shards).
  base="${CLICKHOUSE_CLUSTER_HTTP_BASE:-8123}"
  export CLICKHOUSE_SHARDS="${CLICKHOUSE_SHARDS:-http://127.0.0.1:$base,http://127.0.0.1:$((base + 1));http://127.0.0.1:$((base + 2)),http://127.0.0.1:$((base + 3))}"
fi
start_databases
# On a first run the broker is still being built: the services build beside it.
[[ "$mode" == infra ]] || build_services
start_broker_and_topics
if [[ "$mode" == infra ]]; then
  log "infrastructure is up (Postgres, ClickHouse, Kafka broker)"
  exit 0
fi

start_services
start_gateway

cat <<MSG

LinkTrace is up at $PUBLIC_BASE_URL   (logs and pids under $STATE)
  health:     curl -s $PUBLIC_BASE_URL/healthz
  an account: curl -s -X POST $PUBLIC_BASE_URL/admin/v1/accounts \\
                -H "Authorization: Bearer $LINKTRACE_ADMIN_TOKEN" \\
                -H 'content-type: application/json' -d '{"name":"Acme","plan":"scale"}'
  stop:       deploy/down.sh
MSG
