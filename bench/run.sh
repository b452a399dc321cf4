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
# Capacity, not the per-key limiter, is what is measured (one key sends everything).
export INGEST_RATE_LIMIT_PER_SEC=0
source "$REPO/deploy/lib.sh"

SECONDS_EACH="${BENCH_SECONDS:-15}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
BATCH="${BENCH_BATCH:-100}"
OUT="$REPO/BENCHMARKS.md"
RESULTS="$STATE/results.$RUN_ID"
: >"$RESULTS"

cleanup() {
  for name in nginx api ingest ingest2 ingest_memory tansu_memory consumer consumer9283 consumer9286 consumer9287 bare; do stop_pid "$name"; done
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS linktrace_bench_$RUN_ID" >/dev/null 2>&1 || true
  for db in "linktrace_bench_$RUN_ID" "linktrace_bench_${RUN_ID}_x2"; do
    curl -s "$CLICKHOUSE_URL" --data-binary "DROP DATABASE IF EXISTS $db" >/dev/null || true
  done
}
trap cleanup EXIT

apt_install wrk
start_infrastructure
(cd "$REPO" && cargo build --release -q -p linktrace-ingest -p linktrace-consumer -p linktrace-api -p linktrace-bench --bins)
start_service consumer   # applies the ClickHouse schema; stopped again before the load
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

metric() { # metric URL NAME: the sum of a counter's samples
  curl -s "$1/metrics" | awk -v n="$2" '$1 ~ "^"n"({|$)" { s += $2 } END { printf "%d", s }'
}

# cpu_during NAME SECONDS: per-program CPU use (% of one core) over the window, as JSON.
cpu_during() {
  top -b -d "$2" -n 2 -w 512 | awk -v name="$1" '
    /^top -/ { frame++ } frame == 2 && $1 ~ /^[0-9]+$/ { cpu[$12] += $9 }
    END { printf "cpu_%s {", name; sep = ""; for (c in cpu) if (cpu[c] >= 1) { printf "%s\"%s\":%.0f", sep, c, cpu[c]; sep = "," } print "}" }' >>"$RESULTS"
}

# The backlog for the consumer measurement builds up while it is stopped.
stop_pid consumer

# 1. The bare axum baseline, with the same load generator and settings.
daemonize bare "$REPO" "" "$LOGS/bare.log" "$REPO/target/release/bare-ingest" 127.0.0.1:9190
wait_for "bare baseline" 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/9190"
wrk_json bare event.lua "http://127.0.0.1:9190/api/v1/events" >/dev/null
stop_pid bare

# 2. Ingest, plain path (with where the CPU goes) and dedup path (a fresh entityId each).
cpu_during ingest "$((SECONDS_EACH - 3))" &
wrk_json ingest event.lua "http://$INGEST_ADDR/api/v1/events" >/dev/null
wait
wrk_json ingest_dedup event_entity.lua "http://$INGEST_ADDR/api/v1/events" >/dev/null

# 2a. Is ingest bound by CPU or by waiting for the broker's acknowledgement? The same load
#     at 8x the concurrency, and the producer's linger at 0 and 5 ms (default 2).
wrk_json ingest_c256 event.lua "http://$INGEST_ADDR/api/v1/events" 256 >/dev/null
# Counters restart with the process: keep what each ingest process accepted.
accepted_by_stopped=0
stop_ingest() {
  accepted_by_stopped=$((accepted_by_stopped + $(metric "http://$INGEST_ADDR" ingest_events_accepted_total)))
  stop_pid ingest
}
for linger in 0 5; do
  stop_ingest
  (export KAFKA_PRODUCER_LINGER_MS="$linger"; start_service ingest)
  wrk_json "ingest_linger$linger" event.lua "http://$INGEST_ADDR/api/v1/events" >/dev/null
done
stop_ingest
start_service ingest

# 2c. What the broker's durable acknowledgement costs: the same load on an ingest instance
#     that produces to a second tansu with in-memory storage (not durable: a measurement,
#     never a deployment setting), with where the CPU goes.
mkdir -p "$STATE/tansu-memory"
daemonize tansu_memory "$STATE/tansu-memory" "" "$LOGS/tansu-memory.log" "$(command -v tansu)" broker \
  --listener-url tcp://127.0.0.1:9295 --advertised-listener-url tcp://127.0.0.1:9295 --storage-engine memory://
wait_for "in-memory tansu" 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/9295"
tansu topic create "$KAFKA_EVENTS_TOPIC" --partitions "$KAFKA_EVENTS_PARTITIONS" \
  --broker tcp://127.0.0.1:9295 >>"$LOGS/topics.log" 2>&1
(export KAFKA_BROKERS=127.0.0.1:9295; start_service_as ingest_memory ingest 127.0.0.1:9285)
cpu_during ingest_memory "$((SECONDS_EACH - 3))" &
wrk_json ingest_memory event.lua "http://127.0.0.1:9285/api/v1/events" >/dev/null
wait
wrk_json ingest_memory_c256 event.lua "http://127.0.0.1:9285/api/v1/events" 256 >/dev/null
stop_pid ingest_memory
(export KAFKA_BROKERS=127.0.0.1:9295 KAFKA_PRODUCER_LINGER_MS=0; start_service_as ingest_memory ingest 127.0.0.1:9285)
wrk_json ingest_memory_linger0 event.lua "http://127.0.0.1:9285/api/v1/events" >/dev/null
stop_pid ingest_memory
stop_pid tansu_memory

# 3. The batch endpoint: events/s counted by ingest's own accepted counter.
before="$(metric "http://$INGEST_ADDR" ingest_events_accepted_total)"
wrk_json batch batch.lua "http://$INGEST_ADDR/api/v1/events/batch" 8 >/dev/null
after="$(metric "http://$INGEST_ADDR" ingest_events_accepted_total)"
echo "batch_events $((after - before))" >>"$RESULTS"

# 4. Redirect clicks (each one produced to Kafka and acknowledged before the 302).
wrk_json redirect get.lua "http://$API_ADDR/l/$LT_CODE" >/dev/null

# 2b. Two ingest instances (one wrk each, half the connections each), sharing the cores.
start_service_as ingest2 ingest 127.0.0.1:9284
wrk_pair() {
  local tmp; tmp="$(mktemp --suffix=.lua)"
  cat "$REPO/bench/wrk/event.lua" "$REPO/bench/wrk/report.lua" >"$tmp"
  log "measuring two ingest instances ($CONNECTIONS connections in all)"
  wrk -t1 -c"$((CONNECTIONS / 2))" -d"${SECONDS_EACH}s" -s "$tmp" "http://$INGEST_ADDR/api/v1/events" | grep '^WRK_JSON' | sed 's/^WRK_JSON /ingest_x2_a /' >>"$RESULTS" &
  wrk -t1 -c"$((CONNECTIONS / 2))" -d"${SECONDS_EACH}s" -s "$tmp" "http://127.0.0.1:9284/api/v1/events" | grep '^WRK_JSON' | sed 's/^WRK_JSON /ingest_x2_b /' >>"$RESULTS"
  wait; rm -f "$tmp"
}
wrk_pair
ingest2_accepted="$(metric "http://127.0.0.1:9284" ingest_events_accepted_total)"
stop_pid ingest2

# 5. Consumer throughput: the backlog everything above left in the topic, drained by one
#    consumer, then again (a fresh group from the start of the topic) by two.
backlog="$(( $(metric "http://$INGEST_ADDR" ingest_events_accepted_total) + accepted_by_stopped + ingest2_accepted + $(metric "http://$API_ADDR" redirect_clicks_total) ))"
drain() { # drain NAME GROUP TARGET INSTANCES...: until TARGET events are consumed
  local name="$1" group="$2" target="$3"; shift 3
  local start end consumed
  start="$(date +%s.%N)"
  for port in "$@"; do
    (export KAFKA_CONSUMER_GROUP="$group" KAFKA_CONSUMER_INSTANCE_ID="$group-$port"
     export CLICKHOUSE_DATABASE="${DRAIN_DATABASE:-$CLICKHOUSE_DATABASE}"
     start_service_as "consumer$port" consumer "127.0.0.1:$port")
  done
  log "timing $name: $target events"
  # Where the CPU goes while one consumer drains (a window well inside the drain).
  [[ "$name" == drain_x1 ]] && { sleep 5; cpu_during drain 10; } &
  local deadline=$((SECONDS + 300))
  while ((SECONDS < deadline)); do
    local consumed=0
    for port in "$@"; do consumed=$((consumed + $(metric "http://127.0.0.1:$port" consumer_events_consumed_total))); done
    ((consumed >= target)) && break
    sleep 0.2
  done
  end="$(date +%s.%N)"
  echo "$name $target $consumed $start $end" >>"$RESULTS"
  for port in "$@"; do [[ "$port" == "${KEEP_RUNNING:-}" ]] || stop_pid "consumer$port"; done
}
# (The one-consumer group stays up for the end-to-end probe: restarting a static member
#  under another instance id would leave tansu assigning the partitions to the old one.)
KEEP_RUNNING=9283 drain drain_x1 "linktrace-bench-$RUN_ID-a" "$backlog" 9283
# (The whole backlog once proves exactness below; a rate needs less: 400k events.)
# The second group writes to a database of its own: in the first one every row is already
# stored, and it would write nothing (rows at or below the high-water mark are skipped).
DRAIN_DATABASE="linktrace_bench_${RUN_ID}_x2" \
  drain drain_x2 "linktrace-bench-$RUN_ID-b" "$(( backlog < 400000 ? backlog : 400000 ))" 9286 9287
stored() { curl -s "$CLICKHOUSE_URL/?database=$CLICKHOUSE_DATABASE" --data-binary "SELECT count() FROM events"; }
echo "stored_after_drain $(stored) $backlog" >>"$RESULTS"

# 6. End-to-end delay under a steady load: 200 events/s probed while wrk keeps 4
#    connections busy on the plain path.
wrk -t1 -c4 -d"$((SECONDS_EACH + 5))s" -s "$REPO/bench/wrk/event.lua" "http://$INGEST_ADDR/api/v1/events" >/dev/null &
WRK_PID=$!
log "probing end-to-end delay"
echo "e2e $("$REPO/target/release/e2e-probe" "http://$GATEWAY_ADDR" "$LT_KEY" "$CLICKHOUSE_URL" "$CLICKHOUSE_DATABASE" 200 "$SECONDS_EACH")" >>"$RESULTS"
wait "$WRK_PID" || true

# 7. Peak memory of each service.
for name in ingest consumer9283 api; do
  echo "memory_${name%9283} $(awk '/VmHWM/ { print $2 }' "/proc/$(cat "$RUN/$name.pid")/status")" >>"$RESULTS"
done

python3 "$REPO/bench/report.py" "$RESULTS" "$OUT" "$SECONDS_EACH" "$CONNECTIONS" "$BATCH"
log "wrote $OUT"
