#!/usr/bin/env bash
# The analytics benchmark (issue 12): a history of ANALYTICS_EVENTS (default 100 M) events
# for one account over 90 days, then every dashboard read and both attribution matches
# through the release api (p50/p99, and each query's peak memory from ClickHouse's
# query_log), the pre-rollup queries (uniqExact over the raw table) in the same run, and
# what `uniques` costs analytics v2: each v2 read's own SQL against the same SQL without
# its sketches, interleaved.
# Writes bench/analytics/results.json and the analytics section of BENCHMARKS.md.
#
# The seeded databases (ClickHouse and Postgres `linktrace_bench_analytics`) are kept and
# reused by later runs with the same size: ANALYTICS_RESEED=1 seeds again.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$REPO/bench/lib.sh"
# A fixed run id: the seeded history (databases linktrace_bench_analytics, topics
# linktrace.bench.analytics.*) outlives the run; the api on 127.0.0.1:9292.
RUN_ID=analytics
bench_isolate bench-analytics 929 bench
source "$REPO/deploy/lib.sh"
TOTAL="${ANALYTICS_EVENTS:-100000000}"
CHUNK="${ANALYTICS_CHUNK:-10000000}"
STATE_FILE="$STATE/account.json"
ch() { curl -sS --fail-with-body "$CLICKHOUSE_URL/?database=$CLICKHOUSE_DATABASE" --data-binary "$1"; }

trap 'stop_pid api' EXIT
start_infrastructure
create_topics
(cd "$REPO" && cargo build --release -q -p linktrace-api --bins)
start_service api   # applies every migration to the benchmark's databases

if [[ "${ANALYTICS_RESEED:-0}" == 1 || ! -f "$STATE_FILE" || "$(ch 'SELECT count() FROM events')" != "$TOTAL" ]]; then
  log "seeding $TOTAL events (chunks of $CHUNK) through events and its materialized views"
  for table in events event_counts_hourly event_counts_daily event_users_daily event_breakdowns_15m clicks_by_id clicks_by_ip events_kafka_offsets; do
    ch "TRUNCATE TABLE $table"
  done
  curl -sf -X POST "http://$API_ADDR/admin/v1/accounts" -H "Authorization: Bearer $LINKTRACE_ADMIN_TOKEN" \
    -H 'content-type: application/json' -d '{"name":"analytics bench","plan":"scale"}' >"$STATE_FILE"
  account="$(python3 -c "import json; print(json.load(open('$STATE_FILE'))['accountId'])")"
  now="$(date +%s)"; span=$((90 * 86400)); start=$((now - span))
  started=$SECONDS
  for ((offset = 0; offset < TOTAL; offset += CHUNK)); do
    chunk=$((TOTAL - offset < CHUNK ? TOTAL - offset : CHUNK))
    sed -e "s/{account}/$account/g" -e "s/{offset}/$offset/g" -e "s/{chunk}/$chunk/g" \
        -e "s/{total}/$TOTAL/g" -e "s/{start}/$start/g" -e "s/{span}/$span/g" \
        "$REPO/bench/analytics/seed.sql" | grep -v '^--' | ch "$(cat)"
    log "  $((offset + chunk)) / $TOTAL"
  done
  echo "$((SECONDS - started))" >"$STATE/seed-seconds"
  # Steady state: the rollups merged, as background merges leave them (the raw table is
  # left as inserted; no read touches it).
  for table in event_counts_hourly event_counts_daily event_users_daily event_breakdowns_15m clicks_by_id clicks_by_ip; do
    ch "OPTIMIZE TABLE $table FINAL"
  done
fi

python3 "$REPO/bench/analytics/measure.py" \
  --api "http://$API_ADDR" --clickhouse "$CLICKHOUSE_URL" --database "$CLICKHOUSE_DATABASE" \
  --account-file "$STATE_FILE" --events "$TOTAL" --seed-seconds "$(cat "$STATE/seed-seconds" 2>/dev/null || echo 0)" \
  --results "$REPO/bench/analytics/results.json"
bench_report analytics "$REPO/bench/analytics/results.json" "$REPO/BENCHMARKS.md"
