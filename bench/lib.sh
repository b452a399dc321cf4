# What the benchmark scripts share. Sourced first: `bench_isolate` sets the environment that
# deploy/lib.sh then reads; the rest is used after deploy/lib.sh.

# bench_isolate NAME PORTS [DB]: this run's own everything, beside a running stack and other
# benchmarks. State in .linktrace/NAME; release builds; services on 127.0.0.1:PORTS0
# (gateway), 1 (ingest), 2 (api), 3 (consumer), 4 (webhooks); Postgres and ClickHouse
# databases linktrace_DB_<run>; topics linktrace.DB.<run>.events/.dlq; consumer group
# linktrace-DB-<run>, dynamic. RUN_ID is the run (the start's epoch second unless set).
bench_isolate() {
  local name="$1" ports="$2" db="${3:-$1}"
  RUN_ID="${RUN_ID:-$(date +%s)}"
  export LINKTRACE_STATE_DIR="$REPO/.linktrace/$name"
  export LINKTRACE_PROFILE=release
  export GATEWAY_ADDR="127.0.0.1:${ports}0" INGEST_ADDR="127.0.0.1:${ports}1" API_ADDR="127.0.0.1:${ports}2" \
    CONSUMER_ADDR="127.0.0.1:${ports}3" WEBHOOKS_ADDR="127.0.0.1:${ports}4"
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/linktrace_${db}_$RUN_ID"
  export CLICKHOUSE_DATABASE="linktrace_${db}_$RUN_ID"
  export KAFKA_EVENTS_TOPIC="linktrace.$db.$RUN_ID.events" KAFKA_DEAD_LETTER_TOPIC="linktrace.$db.$RUN_ID.dlq"
  export KAFKA_CONSUMER_GROUP="linktrace-$db-$RUN_ID" KAFKA_CONSUMER_INSTANCE_ID=""
  export RUST_LOG="${RUST_LOG:-warn}"
  BENCH_DATABASES=("$CLICKHOUSE_DATABASE")
}

# bench_cleanup SERVICE...: stops the services, then drops the run's Postgres database and
# its ClickHouse databases (BENCH_DATABASES; a script adds the ones it makes). BENCH_KEEP=1
# keeps the databases for a closer look.
bench_cleanup() {
  local name db
  for name in "$@"; do stop_pid "$name"; done
  if [[ "${BENCH_KEEP:-0}" == 1 ]]; then log "kept $DATABASE_URL and ${BENCH_DATABASES[*]}"; return; fi
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"${DATABASE_URL##*/}\"" >/dev/null 2>&1 || true
  for db in "${BENCH_DATABASES[@]}"; do
    curl -s "$CLICKHOUSE_URL" --data-binary "DROP DATABASE IF EXISTS $db" >/dev/null || true
  done
}

# metric URL NAME: the sum of a counter's samples on URL/metrics.
metric() {
  curl -s "$1/metrics" | awk -v n="$2" '$1 ~ "^"n"({|$)" { s += $2 } END { printf "%d", s }'
}

# bench_report NAME ARGS...: the report NAME (bench/report, the one entry point of every
# benchmark's report): reads what the script measured and writes its section of BENCHMARKS.md.
bench_report() { python3 "$REPO/bench/report" "$@"; }

# proc_ticks PID: the process's CPU so far (utime + stime, in clock ticks).
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# bench_account NAME PLAN CODE: an account on PLAN through the api at $API_ADDR, with one
# link CODE; exports LT_KEY (live) and LT_TEST_KEY. PLAN `bench` is created first in
# $DATABASE_URL: the Scale plan's endpoints with room for every event a run sends.
bench_account() {
  local name="$1" plan="$2" code="$3" account
  if [[ "$plan" == bench ]]; then
    psql "$DATABASE_URL" -qc "INSERT INTO plans SELECT 'bench', allowed_endpoints, 1000000000000 \
      FROM plans WHERE name = 'scale' ON CONFLICT DO NOTHING" >/dev/null
  fi
  account="$(curl -sf -X POST "http://$API_ADDR/admin/v1/accounts" -H "Authorization: Bearer $LINKTRACE_ADMIN_TOKEN" \
    -H 'content-type: application/json' -d "{\"name\":\"$name\",\"plan\":\"$plan\"}")"
  LT_KEY="$(echo "$account" | python3 -c 'import json,sys; print(json.load(sys.stdin)["apiKey"])')"
  LT_TEST_KEY="$(echo "$account" | python3 -c 'import json,sys; print(json.load(sys.stdin)["testApiKey"])')"
  export LT_KEY LT_TEST_KEY
  curl -sf -X POST "http://$API_ADDR/api/v1/referral-links" -H "x-api-key: $LT_KEY" -H 'content-type: application/json' \
    -d "{\"destinationUrl\":\"https://example.com\",\"shortCode\":\"$code\"}" >/dev/null
}

# code_under_test: the commit the services are built from, and "+ uncommitted changes" when
# the working tree differs from it in anything but the benchmarks' own outputs (BENCHMARKS.md
# and the reports under bench/, which an earlier benchmark of the same code may have written).
code_under_test() {
  local code; code="$(git -C "$REPO" rev-parse --short HEAD)"
  if [[ -n "$(git -C "$REPO" status --porcelain --untracked-files=no -- . ':!BENCHMARKS.md' ':!bench/*.txt' ':!bench/results.json')" ]]; then
    code+=" + uncommitted changes"
  fi
  echo "$code"
}
