#!/usr/bin/env bash
# Webhook delivery into a local receiver: the delay from the event's 202 to its delivery
# (p50/p99, events at a steady BENCH_WEBHOOK_RATE (200)/s for BENCH_SECONDS (20)), and the
# delivery throughput while a burst of BENCH_WEBHOOK_BURST (20,000) events sent through the
# batch endpoint drains; the worker's CPU per delivery and the outbox's work. The whole
# stack runs here (ingest, consumer, webhook worker, api, Postgres, ClickHouse, broker) on
# these two cores, as on one machine. Writes the "webhooks" section of BENCHMARKS.md.
# Release build; ports 957x; its own databases, topics and groups.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/bench/lib.sh"
bench_isolate webhooks 957
export KAFKA_CONSUMER_GROUP="linktrace-webhooks-bench-storage-$RUN_ID"
export WEBHOOKS_CONSUMER_GROUP="linktrace-webhooks-bench-$RUN_ID" WEBHOOKS_CONSUMER_INSTANCE_ID=""
export WEBHOOKS_ALLOW_PRIVATE_URLS=true
source "$REPO/deploy/lib.sh"
RATE="${BENCH_WEBHOOK_RATE:-200}"
SECONDS_EACH="${BENCH_SECONDS:-20}"
BURST="${BENCH_WEBHOOK_BURST:-20000}"
RESULTS="$STATE/results.$RUN_ID"
mkdir -p "$STATE"; : >"$RESULTS"

cleanup() { bench_cleanup webhooks api ingest consumer; }
trap cleanup EXIT

start_infrastructure
(cd "$REPO" && cargo build --release -q -p linktrace-ingest -p linktrace-consumer -p linktrace-api \
  -p linktrace-webhooks -p linktrace-bench --bins)
start_service consumer
start_service api
start_service ingest
start_service webhooks
export LT_CODE=hook1234
bench_account webhooks bench "$LT_CODE"

ticks() { for name in webhooks consumer ingest api; do printf '%s=%s ' "$name" "$(proc_ticks "$(cat "$RUN/$name.pid")")"; done; }
before="$(ticks)"
log "webhook delivery: $RATE/s for ${SECONDS_EACH}s, then a burst of $BURST"
probe="$("$REPO/target/release/webhook-probe" "http://$INGEST_ADDR" "http://$API_ADDR" "$LT_KEY" "$LT_CODE" \
  "$RATE" "$SECONDS_EACH" "$BURST")"
after="$(ticks)"
echo "probe $probe" >>"$RESULTS"
echo "cpu_before $before" >>"$RESULTS"
echo "cpu_after $after" >>"$RESULTS"
echo "attempts {\"delivered\":$(curl -s "http://$WEBHOOKS_ADDR/metrics" | awk '/^webhook_attempts_total\{/ && /outcome="delivered"/ { s += $2 } END { printf "%d", s }'),\"retried\":$(curl -s "http://$WEBHOOKS_ADDR/metrics" | awk '/^webhook_attempts_total\{/ && /outcome="retried"/ { s += $2 } END { printf "%d", s }')}" >>"$RESULTS"
curl -s "http://$WEBHOOKS_ADDR/metrics" >"$STATE/webhooks-metrics.$RUN_ID"   # for a closer look
echo "settings {\"rate\":$RATE,\"seconds\":$SECONDS_EACH,\"burst\":$BURST,\"concurrency_per_endpoint\":${WEBHOOK_CONCURRENCY_PER_ENDPOINT:-16},\"partitions\":$KAFKA_EVENTS_PARTITIONS}" >>"$RESULTS"
bench_report webhooks "$RESULTS" "$REPO/BENCHMARKS.md" "$(git -C "$REPO" rev-parse --short HEAD)"
log "wrote the webhooks section of BENCHMARKS.md"
