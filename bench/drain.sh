#!/usr/bin/env bash
# The consumer's drain against its physical limit, on one ClickHouse server and on a
# cluster (ZooKeeper and four 18.16 servers, 2 shards x 2 replicas, on this machine): one
# backlog is seeded through the batch endpoint (DRAIN_SEED_SECONDS, 8), then, in
# DRAIN_ROUNDS (3) interleaved rounds, a bare consumer (bench/src/bin/bare-consumer.rs: the
# consumer's client settings, every message discarded) and the consumer drain it, each in a
# fresh group; the consumer each time into fresh ClickHouse and Postgres databases (its
# stream ledger starts empty), single node and cluster. A drain is timed from its first
# message to the last one read (bare) or written to ClickHouse (consumer). Writes the
# "drain" section of BENCHMARKS.md. Release build; ports 968x and 2612x; its own databases.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/bench/lib.sh"
bench_isolate drain 968
export INGEST_RATE_LIMIT_PER_SEC=0 INGEST_TEST_RATE_LIMIT_PER_SEC=0
source "$REPO/deploy/lib.sh"
SEED="${DRAIN_SEED_SECONDS:-8}"
ROUNDS="${DRAIN_ROUNDS:-3}"
RESULTS="$STATE/results.$RUN_ID"
mkdir -p "$STATE"; : >"$RESULTS"
PG_DATABASES=()
export CLICKHOUSE_CLUSTER_HTTP_BASE=26123 CLICKHOUSE_CLUSTER_TCP_BASE=27000 \
  CLICKHOUSE_CLUSTER_INTERSERVER_BASE=27009 ZOOKEEPER_PORT=26181 \
  CLICKHOUSE_CLUSTER_STATE="$REPO/.linktrace/drain-cluster"
cleanup() {
  bench_cleanup api ingest consumer_drain
  for db in "${PG_DATABASES[@]}"; do psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true; done
  "$REPO/deploy/clickhouse-cluster.sh" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

apt_install wrk
start_infrastructure
(cd "$REPO" && cargo build --release -q -p linktrace-ingest -p linktrace-consumer -p linktrace-api -p linktrace-bench --bins)
"$REPO/deploy/clickhouse-cluster.sh" reset
"$REPO/deploy/clickhouse-cluster.sh" up
start_service ingest
start_service api
export LT_CODE=drain123 LT_BATCH=100
bench_account drain bench "$LT_CODE"
log "seeding the backlog: the batch endpoint for ${SEED}s"
wrk -t2 -c8 -d"${SEED}s" -s "$REPO/bench/wrk/batch.lua" "http://$INGEST_ADDR/api/v1/events/batch" >/dev/null
BACKLOG="$(metric "http://$INGEST_ADDR" ingest_events_accepted_total)"
stop_pid ingest; stop_pid api
log "backlog: $BACKLOG events"
echo "settings {\"backlog\":$BACKLOG,\"rounds\":$ROUNDS,\"seed_seconds\":$SEED}" >>"$RESULTS"

# bare ROUND: a fresh group reads the backlog and discards it.
bare() {
  echo "bare_$1 $("$REPO/target/release/bare-consumer" "drain-$RUN_ID-bare-$1" "$BACKLOG")" >>"$RESULTS"
}

# consumer SETTING ROUND ENV...: the consumer drains the backlog into fresh databases.
consumer() {
  local setting="$1" round="$2"; shift 2
  local name="${setting}_$round" pg="linktrace_drain_${RUN_ID}_${setting}_$round"
  local ch="linktrace_drain_${RUN_ID}_${setting}_$round"
  PG_DATABASES+=("$pg"); BENCH_DATABASES+=("$ch")
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE \"$pg\"" >/dev/null
  log "consumer drain: $name"
  (export "$@" KAFKA_CONSUMER_GROUP="drain-$RUN_ID-$name" KAFKA_CONSUMER_INSTANCE_ID="" \
     CLICKHOUSE_DATABASE="$ch" DATABASE_URL="postgres://postgres@127.0.0.1:5432/$pg" CONSUMER_ADDR=127.0.0.1:9683
   daemonize consumer_drain "$REPO" "" "$LOGS/consumer_drain.log" "$REPO/target/release/linktrace-consumer")
  # Up once its schema is applied (ON CLUSTER on the cluster: slower than one server).
  wait_for consumer_drain 300 curl -sf http://127.0.0.1:9683/healthz
  local start="" written=0 deadline=$((SECONDS + 600))
  while ((SECONDS < deadline)); do
    if [[ -z "$start" ]] && (( $(metric http://127.0.0.1:9683 consumer_events_consumed_total) > 0 )); then
      start="$(date +%s.%N)"
    fi
    written="$(metric http://127.0.0.1:9683 consumer_events_written_total)"
    ((written >= BACKLOG)) && break
    sleep 0.1
  done
  local end; end="$(date +%s.%N)"
  stop_pid consumer_drain
  echo "consumer_$name {\"messages\": $written, \"seconds\": $(python3 -c "print(round($end - ${start:-$end}, 3))")}" >>"$RESULTS"
}

CLUSTER_ENV=(CLICKHOUSE_URL=http://127.0.0.1:26123 CLICKHOUSE_CLUSTER=linktrace
  "CLICKHOUSE_SHARDS=http://127.0.0.1:26123,http://127.0.0.1:26124;http://127.0.0.1:26125,http://127.0.0.1:26126")
for round in $(seq 1 "$ROUNDS"); do
  bare "$round"
  consumer single "$round" CLICKHOUSE_CLUSTER=
  consumer cluster "$round" "${CLUSTER_ENV[@]}"
done
bench_report drain "$RESULTS" "$REPO/BENCHMARKS.md" "$(git -C "$REPO" rev-parse --short HEAD)"
log "wrote the drain section of BENCHMARKS.md"
