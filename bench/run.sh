#!/usr/bin/env bash
# Measures LinkTrace on this machine and writes BENCHMARKS.md. Brings up its own stack
# (release build, ports 928x, its own databases and topics) beside any running one, drives
# it with wrk on loopback, and stops what it started. Bounded: about 5 minutes after the
# build. Knobs: BENCH_SECONDS (15), BENCH_CONNECTIONS (32), BENCH_BATCH (100).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_ID="$(date +%s)"
export LINKTRACE_STATE_DIR="$REPO/.linktrace/bench"
export LINKTRACE_PROFILE=release
export INGEST_ADDR=127.0.0.1:9281 API_ADDR=127.0.0.1:9282 CONSUMER_ADDR=127.0.0.1:9283 GATEWAY_ADDR=127.0.0.1:9280
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/linktrace_bench_$RUN_ID"
export CLICKHOUSE_DATABASE="linktrace_bench_$RUN_ID"
export KAFKA_EVENTS_TOPIC="linktrace.bench.$RUN_ID.events" KAFKA_DEAD_LETTER_TOPIC="linktrace.bench.$RUN_ID.dlq"
export KAFKA_CONSUMER_GROUP="linktrace-bench-$RUN_ID" KAFKA_CONSUMER_INSTANCE_ID="bench-$RUN_ID"
export RUST_LOG=warn
source "$REPO/deploy/lib.sh"

SECONDS_EACH="${BENCH_SECONDS:-15}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
BATCH="${BENCH_BATCH:-100}"
OUT="$REPO/BENCHMARKS.md"
RESULTS="$STATE/results.$RUN_ID"
: >"$RESULTS"

cleanup() {
  for name in nginx api ingest consumer bare; do stop_pid "$name"; done
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS linktrace_bench_$RUN_ID" >/dev/null 2>&1 || true
  curl -s "$CLICKHOUSE_URL" --data-binary "DROP DATABASE IF EXISTS linktrace_bench_$RUN_ID" >/dev/null || true
}
trap cleanup EXIT

apt_install wrk
start_infrastructure
(cd "$REPO" && cargo build --release -q -p linktrace-ingest -p linktrace-consumer -p linktrace-api -p linktrace-bench --bins)
start_service consumer
start_service ingest
start_service api
start_gateway

# An account on a plan with room for every event the run sends, and one link.
psql -h 127.0.0.1 -U postgres -d "linktrace_bench_$RUN_ID" -qc \
  "INSERT INTO plans SELECT 'bench', allowed_endpoints, 1000000000000 FROM plans WHERE name = 'scale' ON CONFLICT DO NOTHING" >/dev/null
ACCOUNT="$(curl -sf -X POST "http://$API_ADDR/admin/v1/accounts" -H "Authorization: Bearer $LINKTRACE_ADMIN_TOKEN" \
  -H 'content-type: application/json' -d '{"name":"bench","plan":"bench"}')"
export LT_KEY="$(echo "$ACCOUNT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["apiKey"])')"
export LT_CODE=bench123 LT_RUN="$RUN_ID" LT_BATCH="$BATCH"
curl -sf -X POST "http://$API_ADDR/api/v1/referral-links" -H "x-api-key: $LT_KEY" -H 'content-type: application/json' \
  -d "{\"destinationUrl\":\"https://example.com\",\"shortCode\":\"$LT_CODE\"}" >/dev/null

metric() { # metric URL NAME: the sum of a counter's samples
  curl -s "$1/metrics" | awk -v n="$2" '$1 ~ "^"n"({|$)" { s += $2 } END { printf "%d", s }'
}

# wrk_json NAME SCRIPT URL [CONNECTIONS]: runs wrk and records its one-line JSON summary.
wrk_json() {
  local name="$1" script="$2" url="$3" conns="${4:-$CONNECTIONS}" tmp
  tmp="$(mktemp --suffix=.lua)"
  cat "$REPO/bench/wrk/$script" "$REPO/bench/wrk/report.lua" >"$tmp"
  log "measuring $name ($conns connections, ${SECONDS_EACH}s)"
  local line
  line="$(wrk -t2 -c"$conns" -d"${SECONDS_EACH}s" --timeout 10s -s "$tmp" "$url" | grep '^WRK_JSON' | sed 's/^WRK_JSON //')"
  rm -f "$tmp"
  echo "$name $line" >>"$RESULTS"
  echo "$line"
}

# 1. The bare axum baseline, with the same load generator and settings.
daemonize bare "$REPO" "" "$LOGS/bare.log" "$REPO/target/release/bare-ingest" 127.0.0.1:9190
wait_for "bare baseline" 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/9190"
wrk_json bare event.lua "http://127.0.0.1:9190/api/v1/events" >/dev/null
stop_pid bare

# 2. Ingest, plain path and dedup path (a fresh entityId per request).
wrk_json ingest event.lua "http://$INGEST_ADDR/api/v1/events" >/dev/null
wrk_json ingest_dedup event_entity.lua "http://$INGEST_ADDR/api/v1/events" >/dev/null

# 3. The batch endpoint: events/s counted by ingest's own accepted counter.
before="$(metric "http://$INGEST_ADDR" ingest_events_accepted_total)"
wrk_json batch batch.lua "http://$INGEST_ADDR/api/v1/events/batch" 8 >/dev/null
after="$(metric "http://$INGEST_ADDR" ingest_events_accepted_total)"
echo "batch_events $((after - before))" >>"$RESULTS"

# 4. Redirect clicks (each one produced to Kafka and acknowledged before the 302).
wrk_json redirect get.lua "http://$API_ADDR/l/$LT_CODE" >/dev/null

# 5. Consumer throughput: let it drain what the load left behind, timing the drain.
accepted="$(( $(metric "http://$INGEST_ADDR" ingest_events_accepted_total) + $(metric "http://$API_ADDR" redirect_clicks_total) ))"
stored() { curl -s "$CLICKHOUSE_URL/?database=$CLICKHOUSE_DATABASE" --data-binary "SELECT count() FROM events"; }
log "timing the consumer's drain to $accepted stored events"
start_count="$(stored)"; start_time="$(date +%s.%N)"
deadline=$((SECONDS + 240))
while (( $(stored) < accepted )) && ((SECONDS < deadline)); do sleep 0.5; done
end_count="$(stored)"; end_time="$(date +%s.%N)"
echo "drain $start_count $end_count $start_time $end_time $accepted" >>"$RESULTS"
# Peak of the consumer's observed throughput: events written per wall-clock second overall.
written_total="$(metric "http://$CONSUMER_ADDR" consumer_events_written_total)"
echo "consumer_written_total $written_total" >>"$RESULTS"

# 6. End-to-end delay under a steady load: 200 events/s probed while wrk keeps 4
#    connections busy on the plain path.
wrk -t1 -c4 -d"$((SECONDS_EACH + 5))s" -s "$REPO/bench/wrk/event.lua" "http://$INGEST_ADDR/api/v1/events" >/dev/null &
WRK_PID=$!
log "probing end-to-end delay"
echo "e2e $("$REPO/target/release/e2e-probe" "http://$GATEWAY_ADDR" "$LT_KEY" "$CLICKHOUSE_URL" "$CLICKHOUSE_DATABASE" 200 "$SECONDS_EACH")" >>"$RESULTS"
wait "$WRK_PID" || true

# 7. Peak memory of each service.
for name in ingest consumer api; do
  echo "memory_$name $(awk '/VmHWM/ { print $2 }' "/proc/$(cat "$RUN/$name.pid")/status")" >>"$RESULTS"
done

python3 "$REPO/bench/report.py" "$RESULTS" "$OUT" "$SECONDS_EACH" "$CONNECTIONS" "$BATCH"
log "wrote $OUT"
