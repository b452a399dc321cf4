#!/usr/bin/env bash
# The 202 → visible delay while the batch endpoint runs at its peak, for consumer settings
# side by side: each run is a fresh stack of its own (topic, databases, consumer group),
# warmed up (a 3 s batch load, then 5 s for the consumer to catch up), then the batch load
# (8 connections, 100 events a request) for LATENCY_LOAD_SECONDS (20) with a 200 events/s
# probe through the gateway, and the consumer's own timings from its /metrics (batches,
# events per batch, write, commit and whole-batch seconds). Settings are interleaved over
# LATENCY_ROUNDS (2) rounds. Writes the consumer-latency section of BENCHMARKS.md.
# Settings: LATENCY_SETTINGS, lines of `name ENV=value ...` (default below). A setting's
# CLICKHOUSE_SERVERS (URLs separated by %20; default its CLICKHOUSE_URL) are the servers whose
# system.events are read before and after the load: INSERTs, inserted rows and ZooKeeper
# transactions, summed. LATENCY_SECTION names the section written (bench/cluster.sh's own).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/deploy/lib.sh"
source "$REPO/bench/lib.sh"
export LINKTRACE_STATE_DIR="$REPO/.linktrace/consumer-latency" RUST_LOG=warn INGEST_RATE_LIMIT_PER_SEC=0 INGEST_TEST_RATE_LIMIT_PER_SEC=0
export INGEST_ADDR=127.0.0.1:9681 API_ADDR=127.0.0.1:9682 CONSUMER_ADDR=127.0.0.1:9683 GATEWAY_ADDR=127.0.0.1:9680
LOAD="${LATENCY_LOAD_SECONDS:-20}"
ROUNDS="${LATENCY_ROUNDS:-2}"
SETTINGS="${LATENCY_SETTINGS:-fetch_wait_500 CONSUMER_FETCH_WAIT_MAX_MS=500
fetch_wait_100 CONSUMER_FETCH_WAIT_MAX_MS=100}"
STATE_DIR="$LINKTRACE_STATE_DIR"; mkdir -p "$STATE_DIR"
RESULTS="$STATE_DIR/results.$(date +%s)"
CODE="$(code_under_test)"
cleanup() { for name in nginx api ingest consumer; do stop_pid "$name"; done; }
trap cleanup EXIT

apt_install wrk
start_infrastructure
(cd "$REPO" && cargo build --release -q -p linktrace-ingest -p linktrace-consumer -p linktrace-api -p linktrace-bench --bins)

# server_events: INSERT queries, inserted rows and ZooKeeper transactions so far, summed over
# CLICKHOUSE_SERVERS (each server counts its own: through a Distributed table an INSERT is
# one on the node asked and one on each shard's replica written).
server_events() {
  local inserts=0 rows=0 zookeeper=0 url line servers="${CLICKHOUSE_SERVERS:-$CLICKHOUSE_URL}"
  for url in ${servers//%20/ }; do
    line="$(curl -s "$url" --data-binary "SELECT sumIf(value, event = 'InsertQuery'), sumIf(value, event = 'InsertedRows'), sumIf(value, event = 'ZooKeeperTransactions') FROM system.events FORMAT TSV")"
    read -r a b c <<<"$line"
    inserts=$((inserts + a)) rows=$((rows + b)) zookeeper=$((zookeeper + c))
  done
  echo "$inserts $rows $zookeeper"
}

# measure NAME ENV...: one run of one setting on a stack of its own.
measure() {
  local name="$1"; shift
  local run_id; run_id="$(date +%s%N)"
  (
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/linktrace_latency_$run_id"
    export CLICKHOUSE_DATABASE="linktrace_latency_$run_id"
    export KAFKA_EVENTS_TOPIC="linktrace.latency.$run_id.events" KAFKA_DEAD_LETTER_TOPIC="linktrace.latency.$run_id.dlq"
    export KAFKA_CONSUMER_GROUP="linktrace-latency-$run_id" KAFKA_CONSUMER_INSTANCE_ID="latency-$run_id"
    export "$@"
    for topic in "$KAFKA_EVENTS_TOPIC" "$KAFKA_DEAD_LETTER_TOPIC"; do
      tansu topic create "$topic" --partitions "$KAFKA_EVENTS_PARTITIONS" --broker "tcp://$KAFKA_BROKERS" >>"$LOGS/topics.log" 2>&1 || true
    done
    start_service consumer; start_service ingest; start_service api
    bench_account latency bench lat12345
    export LT_CODE=lat12345 LT_RUN="$run_id" LT_BATCH=100
    start_gateway
    wrk -t1 -c2 -d3s -s "$REPO/bench/wrk/batch.lua" "http://$INGEST_ADDR/api/v1/events/batch" >/dev/null
    sleep 5
    log "measuring $name under the batch endpoint's peak (${LOAD}s)"
    before="$(metric "http://$INGEST_ADDR" ingest_events_accepted_total)"
    servers_before="$(server_events)"
    wrk -t1 -c8 -d"${LOAD}s" -s "$REPO/bench/wrk/batch.lua" "http://$INGEST_ADDR/api/v1/events/batch" >/dev/null &
    sleep 3
    e2e="$("$REPO/target/release/e2e-probe" "http://$GATEWAY_ADDR" "$LT_KEY" "$CLICKHOUSE_URL" "$CLICKHOUSE_DATABASE" 200 "$((LOAD - 5))")"
    wait
    accepted=$(( $(metric "http://$INGEST_ADDR" ingest_events_accepted_total) - before ))
    read -r inserts rows zookeeper <<<"$(paste <(echo "$servers_before" | tr ' ' '\n') <(server_events | tr ' ' '\n') | awk '{ printf "%d ", $2 - $1 }')"
    consumer="$(curl -s "http://$CONSUMER_ADDR/metrics" | awk '$1 ~ /^consumer_(batch_size|write_duration_seconds|commit_duration_seconds|batch_duration_seconds)_(sum|count)$/ { printf "\"%s\":%s,", $1, $2 }')"
    echo "$name {\"e2e\":$e2e,${consumer}\"accepted\":$accepted,\"seconds\":$LOAD,\"server_inserts\":$inserts,\"server_rows\":$rows,\"zookeeper_transactions\":$zookeeper}" >>"$RESULTS"
    for name in nginx api ingest consumer; do stop_pid "$name"; done
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS linktrace_latency_$run_id" >/dev/null 2>&1 || true
    curl -s "$CLICKHOUSE_URL" --data-binary "DROP DATABASE IF EXISTS linktrace_latency_$run_id" >/dev/null || true
    for topic in "$KAFKA_EVENTS_TOPIC" "$KAFKA_DEAD_LETTER_TOPIC"; do
      tansu topic delete "$topic" --broker "tcp://$KAFKA_BROKERS" >/dev/null 2>&1 || true
    done
  )
}
for round in $(seq 1 "$ROUNDS"); do
  while read -r name env; do
    [[ -n "$name" ]] || continue
    # shellcheck disable=SC2086
    measure "${name}_r$round" $env
  done <<<"$SETTINGS"
done
bench_report consumer-latency "$RESULTS" "$REPO/BENCHMARKS.md" "$CODE" "$LOAD" "$ROUNDS" "$SETTINGS" "${LATENCY_SECTION:-consumer-latency}"
