#!/usr/bin/env bash
# Where ingest's CPU goes, per request, in instructions (valgrind --tool=callgrind): a count,
# not a time, so it repeats on a noisy machine. Runs the release `linktrace-ingest` and the
# `bare-produce` limit handler (same body parsing, same rdkafka settings, 202 after the ack)
# against an in-memory tansu, sends each PROFILE_REQUESTS (2000) identical plain-path events
# over one keep-alive connection after a warm-up, with collection on only for those, and
# writes bench/profile.txt: instructions per request of each, the difference, and ingest's
# heaviest functions. Knobs: PROFILE_REQUESTS, PROFILE_PATH (events | entity: a fresh
# entityId each, the dedup path), PROFILE_KEY (live: quota counted | test: no quota).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/bench/lib.sh"
bench_isolate profile 938
export KAFKA_BROKERS=127.0.0.1:9396
export INGEST_RATE_LIMIT_PER_SEC=0 INGEST_TEST_RATE_LIMIT_PER_SEC=0
source "$REPO/deploy/lib.sh"
REQUESTS="${PROFILE_REQUESTS:-2000}"
PATH_KIND="${PROFILE_PATH:-events}"
KEY_KIND="${PROFILE_KEY:-live}"
OUT="$REPO/bench/profile.txt"
# Which code is measured, read before this script writes anything of its own.
CODE="$(code_under_test)"

cleanup() { bench_cleanup api ingest bare tansu_profile; }
trap cleanup EXIT

start_postgres
start_clickhouse
(cd "$REPO" && cargo build --release -q -p linktrace-ingest -p linktrace-api -p linktrace-bench --bins)
mkdir -p "$STATE/tansu-memory"
daemonize tansu_profile "$STATE/tansu-memory" "" "$LOGS/tansu-profile.log" "$(command -v tansu)" broker \
  --listener-url "tcp://$KAFKA_BROKERS" --advertised-listener-url "tcp://$KAFKA_BROKERS" --storage-engine memory://
wait_for "in-memory tansu" 30 bash -c "exec 3<>/dev/tcp/${KAFKA_BROKERS/://}"
tansu topic create "$KAFKA_EVENTS_TOPIC" --partitions "$KAFKA_EVENTS_PARTITIONS" --broker "tcp://$KAFKA_BROKERS" >>"$LOGS/topics.log" 2>&1

start_service api
bench_account profile scale profile1
if [[ "$KEY_KIND" == live ]]; then KEY="$LT_KEY"; else KEY="$LT_TEST_KEY"; fi
stop_pid api

# send PORT COUNT FIRST_ENTITY: COUNT events over one keep-alive connection; all must be 202.
send() {
  python3 - "$1" "$2" "$3" "$KEY" "$PATH_KIND" <<'PY'
import http.client, json, sys
port, count, first, key, kind = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for i in range(first, first + count):
    event = {"linkShortCode": "profile1", "eventName": "purchase"}
    if kind == "entity":
        event["entityId"] = f"order-{i}"
    conn.request("POST", "/api/v1/events", json.dumps(event), {"content-type": "application/json", "x-api-key": key})
    response = conn.getresponse(); body = response.read()
    if response.status != 202:
        sys.exit(f"{response.status} {body!r}")
PY
}

# profile NAME PORT PROGRAM...: PROGRAM under callgrind; collection on for REQUESTS requests.
profile() {
  local name="$1" port="$2"; shift 2
  local out="$STATE/callgrind.$name"
  rm -f "$out"*
  daemonize "$name" "$STATE" "" "$LOGS/$name-callgrind.log" "$(command -v valgrind)" --tool=callgrind \
    --instr-atstart=no --callgrind-out-file="$out" "$@"
  wait_for "$name under callgrind" 120 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
  send "$port" 200 0                                     # warm-up: caches, connections, leases
  local pid; pid="$(cat "$RUN/$name.pid")"
  callgrind_control -i on "$pid" >/dev/null
  send "$port" 20 2000000                                # (commands are taken at the next work)
  callgrind_control -z "$pid" >/dev/null
  send "$port" "$REQUESTS" 1000000
  callgrind_control -d "$pid" >/dev/null
  stop_pid "$name"
  local total; total="$(awk '/^summary:|^totals:/ { print $2; exit }' "$out.1")"
  echo "$name $total"
}

log "profiling bare-produce ($REQUESTS requests)"
bare="$(profile bare 9391 "$REPO/target/release/bare-produce" 127.0.0.1:9391)"
log "profiling ingest ($REQUESTS requests, path $PATH_KIND)"
ingest="$(profile ingest 9381 "$REPO/target/release/linktrace-ingest")"

{
  echo "# bench/profile.sh — instructions per request (valgrind callgrind), $REQUESTS sequential requests, path $PATH_KIND, $KEY_KIND key, code $CODE"
  bench_report profile-summary "$bare" "$ingest" "$REQUESTS"
  echo
  echo "## where the difference is: each function's own instructions, grouped (bench/report/callgrind_groups.py)"
  echo
  bench_report callgrind-groups "$STATE/callgrind.ingest.1" "$STATE/callgrind.bare.1" "$REQUESTS"
  echo
  echo "## ingest: heaviest functions (inclusive), per request = Ir / $REQUESTS"
  callgrind_annotate --inclusive=yes --threshold=100 "$STATE/callgrind.ingest.1" 2>/dev/null \
    | grep -v '^--' | sed -n '1,400p' | awk 'NF && $1 ~ /^[0-9,]+$/' | sed -n '1,60p'
} >"$OUT"
head -5 "$OUT"
bench_report profile "$OUT" "$REPO/BENCHMARKS.md"
log "wrote $OUT and the profile section of BENCHMARKS.md"
