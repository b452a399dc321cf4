#!/usr/bin/env bash
# Starts the whole LinkTrace stack on this machine with local defaults:
# Postgres, ClickHouse, the tansu broker, ingest, consumer, the webhook worker, api, and
# the gateway on
# 127.0.0.1:8080. Installs what is missing. Idempotent: a second run changes nothing.
#   deploy/up.sh            everything, release build
#   deploy/up.sh --debug    everything, debug build (quicker to build while developing)
#   deploy/up.sh --infra    only Postgres, ClickHouse and the broker (what the tests need)
[[ "${1:-}" == "--debug" ]] && export LINKTRACE_PROFILE=debug
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_infrastructure
if [[ "${1:-}" == "--infra" ]]; then
  log "infrastructure is up (Postgres, ClickHouse, Kafka broker)"
  exit 0
fi

build_services
start_service consumer
start_service webhooks
start_service ingest
start_service api
start_gateway

cat <<MSG

LinkTrace is up at $PUBLIC_BASE_URL   (logs and pids under $STATE)
  health:     curl -s $PUBLIC_BASE_URL/healthz
  an account: curl -s -X POST $PUBLIC_BASE_URL/admin/v1/accounts \\
                -H "Authorization: Bearer $LINKTRACE_ADMIN_TOKEN" \\
                -H 'content-type: application/json' -d '{"name":"Acme","plan":"scale"}'
  stop:       deploy/down.sh
MSG
