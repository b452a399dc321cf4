#!/usr/bin/env bash
# The consumer's fetch settings, measured. Seeds one backlog through the batch endpoint
# (FETCH_SEED_SECONDS, 20), then drains it once per setting below with a fresh consumer
# group writing to a ClickHouse database of its own: events/s, the consumer's CPU per
# event and the broker's CPU share. Then, with the best setting, the batch endpoint at its
# peak for FETCH_LOAD_SECONDS (30) with the consumer running: lag sampled every second and
# the 202 → visible delay of a 200 events/s probe. Writes the "consumer fetch" section of
# BENCHMARKS.md. Release build; ports 948x; its own databases and topics.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/bench/lib.sh"
bench_isolate consumer-fetch 948 fetch
export INGEST_RATE_LIMIT_PER_SEC=0 INGEST_TEST_RATE_LIMIT_PER_SEC=0
source "$REPO/deploy/lib.sh"
SEED="${FETCH_SEED_SECONDS:-20}"
LOAD="${FETCH_LOAD_SECONDS:-30}"
RESULTS="$STATE/results.$RUN_ID"
: >"$RESULTS"
DATABASES=()

cleanup() {
  BENCH_DATABASES+=("${DATABASES[@]}")
  bench_cleanup api ingest consumer consumer_drain
}
trap cleanup EXIT

apt_install wrk
start_infrastructure
(cd "$REPO" && cargo build --release -q -p linktrace-ingest -p linktrace-consumer -p linktrace-api -p linktrace-bench --bins)
start_service ingest
start_service api
export LT_CODE=fetch123 LT_BATCH=100
bench_account fetch bench "$LT_CODE"
KEY="$LT_KEY"
tansu_pid() { cat "$RUN/tansu.pid" 2>/dev/null || pgrep -f "tansu broker" | head -1; }

log "seeding the backlog: the batch endpoint for ${SEED}s"
wrk -t2 -c8 -d"${SEED}s" -s "$REPO/bench/wrk/batch.lua" "http://$INGEST_ADDR/api/v1/events/batch" >/dev/null
BACKLOG="$(metric "http://$INGEST_ADDR" ingest_events_accepted_total)"
log "backlog: $BACKLOG events"

# drain NAME ENV...: a fresh group drains the backlog with ENV set; one result line.
drain() {
  local name="$1"; shift
  local db="linktrace_fetch_${RUN_ID}_$name"; DATABASES+=("$db")
  (export "$@" KAFKA_CONSUMER_GROUP="fetch-$RUN_ID-$name" KAFKA_CONSUMER_INSTANCE_ID="" CLICKHOUSE_DATABASE="$db"
   start_service_as consumer_drain consumer 127.0.0.1:9483)
  local pid broker start end c0 c1 b0 b1 consumed=0
  pid="$(cat "$RUN/consumer_drain.pid")"; broker="$(tansu_pid)"
  start="$(date +%s.%N)"; c0="$(proc_ticks "$pid")"; b0="$(proc_ticks "$broker")"
  local deadline=$((SECONDS + 300))
  while ((SECONDS < deadline)); do
    consumed="$(metric http://127.0.0.1:9483 consumer_events_consumed_total)"
    ((consumed >= BACKLOG)) && break
    sleep 0.2
  done
  end="$(date +%s.%N)"; c1="$(proc_ticks "$pid")"; b1="$(proc_ticks "$broker")"
  stop_pid consumer_drain
  echo "drain $name $consumed $start $end $((c1 - c0)) $((b1 - b0)) $*" >>"$RESULTS"
  log "$name: $consumed events"
}
drain default CONSUMER_BATCH_MAX_EVENTS=5000
drain partition_8mib CONSUMER_BATCH_MAX_EVENTS=5000 CONSUMER_MAX_PARTITION_FETCH_BYTES=8388608
drain min_64kib CONSUMER_BATCH_MAX_EVENTS=5000 CONSUMER_FETCH_MIN_BYTES=65536 CONSUMER_FETCH_WAIT_MAX_MS=100
drain queued_500k CONSUMER_BATCH_MAX_EVENTS=5000 CONSUMER_QUEUED_MIN_MESSAGES=500000
drain batch_20k CONSUMER_BATCH_MAX_EVENTS=20000

# The best drain's settings under the batch endpoint's peak, consumer running throughout.
best="$(python3 - "$RESULTS" <<'PY'
import sys
best = max((l.split() for l in open(sys.argv[1]) if l.startswith("drain ")),
           key=lambda f: int(f[2]) / (float(f[4]) - float(f[3])))
print(best[1], " ".join(best[7:]))
PY
)"
best_name="${best%% *}"
best_env="${best#"$best_name"}"
log "under load with $best"
(export $best_env KAFKA_CONSUMER_GROUP="fetch-$RUN_ID-load" KAFKA_CONSUMER_INSTANCE_ID=""
 start_service_as consumer consumer 127.0.0.1:9484)
# Catch up with the backlog first (it is the same topic), then measure.
wait_for "the load consumer to catch up" 300 bash -c \
  "(( \$(curl -s http://127.0.0.1:9484/metrics | awk '\$1 ~ /^consumer_events_consumed_total/ { s += \$2 } END { printf \"%d\", s }') >= $BACKLOG ))"
start_gateway
wrk -t1 -c8 -d"${LOAD}s" -s "$REPO/bench/wrk/batch.lua" "http://$INGEST_ADDR/api/v1/events/batch" >"$STATE/load-wrk.txt" &
WRK=$!
( for _ in $(seq 1 "$LOAD"); do
    echo "lag $(date +%s) $(curl -s http://127.0.0.1:9484/metrics | awk '$1 ~ /^consumer_lag/ { s += $2 } END { printf "%d", s }')"
    sleep 1
  done >>"$RESULTS" ) &
LAGS=$!
before="$(metric "http://$INGEST_ADDR" ingest_events_accepted_total)"
echo "e2e $("$REPO/target/release/e2e-probe" "http://$GATEWAY_ADDR" "$KEY" "$CLICKHOUSE_URL" "$CLICKHOUSE_DATABASE" 200 "$((LOAD - 5))")" >>"$RESULTS"
wait "$WRK" "$LAGS" || true
after="$(metric "http://$INGEST_ADDR" ingest_events_accepted_total)"
echo "load $best_name $((after - before)) $LOAD" >>"$RESULTS"
stop_pid nginx
bench_report consumer-fetch "$RESULTS" "$REPO/BENCHMARKS.md"
