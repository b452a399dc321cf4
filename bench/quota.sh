#!/usr/bin/env bash
# The quota lease on a hot account, taken apart: a live key (quota counted) against a test key
# (no quota) of one account, 256 connections, on an in-memory tansu (so that ingest, not the
# broker's fsync, is the bound), for two ingest instances that differ only in
# QUOTA_LEASE_BLOCK (the most leased at once): BENCH_QUOTA_BLOCKS ("1000 10000"). Rounds
# interleave every (block, key) pair; medians of BENCH_ROUNDS (4) × BENCH_SECONDS (10). Also
# records, per run, the leases taken, the requests that waited for Postgres, and Postgres's
# own CPU per request. Writes the "quota" section of BENCHMARKS.md. Ports 926x.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/bench/lib.sh"
bench_isolate quota 926
export INGEST_RATE_LIMIT_PER_SEC=0 INGEST_TEST_RATE_LIMIT_PER_SEC=0
source "$REPO/deploy/lib.sh"
SECONDS_EACH="${BENCH_SECONDS:-10}"
ROUNDS="${BENCH_ROUNDS:-4}"
BLOCKS="${BENCH_QUOTA_BLOCKS:-1000 10000}"
RESULTS="$STATE/results.$RUN_ID"
mkdir -p "$STATE"; : >"$RESULTS"

instances=()
cleanup() { bench_cleanup "${instances[@]}" api consumer tansu_memory; }
trap cleanup EXIT

apt_install wrk
start_infrastructure
(cd "$REPO" && cargo build --release -q -p linktrace-ingest -p linktrace-consumer -p linktrace-api --bins)
start_service consumer   # applies the schema; not needed for the load
stop_pid consumer
start_service api
export LT_CODE=quota123
bench_account quota bench "$LT_CODE"

mkdir -p "$STATE/tansu-memory"
daemonize tansu_memory "$STATE/tansu-memory" "" "$LOGS/tansu-memory.log" "$(command -v tansu)" broker \
  --listener-url tcp://127.0.0.1:9269 --advertised-listener-url tcp://127.0.0.1:9269 --storage-engine memory://
wait_for "in-memory tansu" 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/9269"
tansu topic create "$KAFKA_EVENTS_TOPIC" --partitions "$KAFKA_EVENTS_PARTITIONS" --broker tcp://127.0.0.1:9269 >>"$LOGS/topics.log" 2>&1 || true
port=9264
for block in $BLOCKS; do
  (export KAFKA_BROKERS=127.0.0.1:9269 QUOTA_LEASE_BLOCK="$block"
   start_service_as "ingest_$block" ingest "127.0.0.1:$port")
  instances+=("ingest_$block")
  echo "$block" >"$STATE/port-$port"
  eval "PORT_$block=$port"
  port=$((port + 1))
done

postgres_ticks() {
  local total=0 pid
  for pid in $(pgrep -f '^postgres' || true); do total=$((total + $(proc_ticks "$pid" 2>/dev/null || echo 0))); done
  echo "$total"
}
# one NAME BLOCK KEY: 256 connections for SECONDS_EACH on the instance with BLOCK.
one() {
  local name="$1" block="$2" key="$3" port_var="PORT_$2" tmp line pid before after pg_before pg_after metrics_before metrics_after
  pid="$(cat "$RUN/ingest_$block.pid")"
  tmp="$(mktemp --suffix=.lua)"
  cat "$REPO/bench/wrk/event.lua" "$REPO/bench/wrk/report.lua" >"$tmp"
  metrics_before="$(metric "http://127.0.0.1:${!port_var}" ingest_quota_leases_total) $(metric "http://127.0.0.1:${!port_var}" ingest_quota_waits_total)"
  before="$(proc_ticks "$pid")"; pg_before="$(postgres_ticks)"
  log "measuring $name"
  line="$(LT_KEY="$key" wrk -t2 -c256 -d"${SECONDS_EACH}s" --timeout 10s -s "$tmp" "http://127.0.0.1:${!port_var}/api/v1/events" | grep '^WRK_JSON' | sed 's/^WRK_JSON //')"
  after="$(proc_ticks "$pid")"; pg_after="$(postgres_ticks)"
  metrics_after="$(metric "http://127.0.0.1:${!port_var}" ingest_quota_leases_total) $(metric "http://127.0.0.1:${!port_var}" ingest_quota_waits_total)"
  rm -f "$tmp"
  python3 - "$name" "$line" "$before" "$after" "$pg_before" "$pg_after" "$metrics_before" "$metrics_after" >>"$RESULTS" <<'PY'
import json, os, sys
name, line, before, after, pg_before, pg_after, m_before, m_after = sys.argv[1:9]
r = json.loads(line); hz = os.sysconf("SC_CLK_TCK"); n = max(r["requests"], 1)
lb, wb = map(int, m_before.split()); la, wa = map(int, m_after.split())
r.update(cpu_us=round((int(after) - int(before)) / hz * 1e6 / n, 1),
         postgres_cpu_us=round((int(pg_after) - int(pg_before)) / hz * 1e6 / n, 1),
         leases=la - lb, waits=wa - wb)
print(name, json.dumps(r))
PY
}
for round in $(seq 1 "$ROUNDS"); do
  for block in $BLOCKS; do
    one "live_${block}_r$round" "$block" "$LT_KEY"
    one "test_${block}_r$round" "$block" "$LT_TEST_KEY"
  done
done
echo "settings {\"blocks\":\"$BLOCKS\",\"rounds\":$ROUNDS,\"seconds\":$SECONDS_EACH}" >>"$RESULTS"
bench_report quota "$RESULTS" "$REPO/BENCHMARKS.md" "$(git -C "$REPO" rev-parse --short HEAD)"
log "wrote the quota section of BENCHMARKS.md"
