#!/usr/bin/env bash
# Where ingest's CPU goes under load, beside the limit handler's: the release
# `linktrace-ingest` and `bare-produce` (same body parsing, same rdkafka settings, 202 after
# the ack) on one tansu of their own (LOAD_STORAGE: memory, or sqlite for the durable
# broker), each driven by wrk (LOAD_CONNECTIONS, 256) for LOAD_SECONDS (10) a run,
# interleaved over LOAD_ROUNDS (3) rounds. Reports requests/s, each service's own CPU per
# request (utime+stime) and the broker's, medians, and, from `perf record`
# (cpu-clock samples, round 1), that CPU split by what the code is doing
# (bench/report/code_groups.py), in µs per request, with the difference. Writes
# bench/load-profile.txt and the load-profile section of BENCHMARKS.md.
# LOAD_PADDED_LIMIT_BYTES=N adds a third service to every round: the limit handler with
# each produced value padded to N bytes (287: ingest's record for this load in layout 2, 329 in layout 1), so that the
# broker's cost of ingest's larger record is told apart from ingest's own cost.
# `bench/profile.sh` counts instructions (repeatable); this one is time, with the
# kernel, the wake-ups and the cache misses instructions do not show.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/bench/lib.sh"
bench_isolate load-profile 948 load
export KAFKA_BROKERS=127.0.0.1:9496
export INGEST_RATE_LIMIT_PER_SEC=0 INGEST_TEST_RATE_LIMIT_PER_SEC=0
source "$REPO/deploy/lib.sh"
CONNECTIONS="${LOAD_CONNECTIONS:-256}"
SECONDS_EACH="${LOAD_SECONDS:-10}"
ROUNDS="${LOAD_ROUNDS:-3}"
STORAGE="${LOAD_STORAGE:-memory}"
PADDED="${LOAD_PADDED_LIMIT_BYTES:-0}"
OUT="$REPO/bench/load-profile.txt"
[[ "$STORAGE" == memory ]] || OUT="$REPO/bench/load-profile-$STORAGE.txt"
RESULTS="$STATE/results.$RUN_ID"
CODE="$(code_under_test)"

cleanup() { bench_cleanup api ingest bare padded tansu_load; }
trap cleanup EXIT

apt_install wrk
start_postgres
start_clickhouse
(cd "$REPO" && cargo build --release -q -p linktrace-ingest -p linktrace-api -p linktrace-bench --bins)
rm -rf "$STATE/tansu-load"; mkdir -p "$STATE/tansu-load"
: >"$RESULTS"
case "$STORAGE" in
  memory) engine=memory:// ;;
  sqlite) engine=sqlite://tansu.db ;;
  *) echo "LOAD_STORAGE is memory or sqlite" >&2; exit 2 ;;
esac
daemonize tansu_load "$STATE/tansu-load" "" "$LOGS/tansu-load.log" "$(command -v tansu)" broker \
  --listener-url "tcp://$KAFKA_BROKERS" --advertised-listener-url "tcp://$KAFKA_BROKERS" --storage-engine "$engine"
wait_for "tansu ($STORAGE)" 30 bash -c "exec 3<>/dev/tcp/${KAFKA_BROKERS/://}"
for topic in "$KAFKA_EVENTS_TOPIC" "$KAFKA_EVENTS_TOPIC.bare" "$KAFKA_EVENTS_TOPIC.padded"; do
  tansu topic create "$topic" --partitions "$KAFKA_EVENTS_PARTITIONS" --broker "tcp://$KAFKA_BROKERS" >>"$LOGS/topics.log" 2>&1
done

start_service api
bench_account load bench load1234
stop_pid api
export LT_CODE=load1234
(export KAFKA_EVENTS_TOPIC="$KAFKA_EVENTS_TOPIC.bare"
 daemonize bare "$REPO" "" "$LOGS/bare.log" "$REPO/target/release/bare-produce" 127.0.0.1:9491)
wait_for "bare-produce" 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/9491"
if (( PADDED > 0 )); then
  (export KAFKA_EVENTS_TOPIC="$KAFKA_EVENTS_TOPIC.padded" BARE_PAD_BYTES="$PADDED"
   daemonize padded "$REPO" "" "$LOGS/padded.log" "$REPO/target/release/bare-produce" 127.0.0.1:9493)
  wait_for "bare-produce, padded" 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/9493"
fi
start_service ingest

# switches PID: context switches so far, voluntary + involuntary, over all its threads.
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { s += $2 } END { print s }'; }

# run NAME PIDNAME URL ROUND: one wrk run; its figures (and in round 1 a perf profile).
run() {
  local name="$1" pid before after line tmp switched
  pid="$(cat "$RUN/$2.pid")"
  if [[ "$4" == 1 ]]; then
    (sleep 1; perf record -e cpu-clock -F 999 -g -p "$pid" -o "$STATE/perf-$name.data" -- sleep "$((SECONDS_EACH - 2))" >/dev/null 2>&1) &
  fi
  tmp="$(mktemp --suffix=.lua)"
  cat "$REPO/bench/wrk/event.lua" "$REPO/bench/wrk/report.lua" >"$tmp"
  log "measuring $name, round $4 ($CONNECTIONS connections, ${SECONDS_EACH}s)"
  before="$(proc_ticks "$pid")"; switched="$(switches "$pid")"; broker="$(proc_ticks "$(cat "$RUN/tansu_load.pid")")"
  line="$(wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --timeout 10s -s "$tmp" "$3" | grep '^WRK_JSON' | sed 's/^WRK_JSON //')"
  after="$(proc_ticks "$pid")"; switched=$(( $(switches "$pid") - switched ))
  broker=$(( $(proc_ticks "$(cat "$RUN/tansu_load.pid")") - broker ))
  rm -f "$tmp"
  wait
  echo "${name}_r$4 $line" >>"$RESULTS"
  echo "ticks_${name}_r$4 $((after - before))" >>"$RESULTS"
  echo "switches_${name}_r$4 $switched" >>"$RESULTS"
  echo "broker_ticks_${name}_r$4 $broker" >>"$RESULTS"
}
for round in $(seq 1 "$ROUNDS"); do
  run limit bare "http://127.0.0.1:9491/api/v1/events" "$round"
  if (( PADDED > 0 )); then run padded padded "http://127.0.0.1:9493/api/v1/events" "$round"; fi
  run ingest ingest "http://$INGEST_ADDR/api/v1/events" "$round"
done

bench_report load-profile "$RESULTS" "$STATE/perf-limit.data" "$STATE/perf-ingest.data" \
  "$CONNECTIONS" "$SECONDS_EACH" "$ROUNDS" "$CODE" "$OUT" "$REPO/BENCHMARKS.md" "$STORAGE" "$PADDED"
cat "$OUT"
