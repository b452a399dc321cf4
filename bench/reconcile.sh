#!/usr/bin/env bash
# What the rollup reconciler costs (consumer/src/reconcile.rs) on this machine's ClickHouse
# server: a day of RECONCILE_EVENTS (2,000,000) synthetic events written through the views
# into a database of its own, then over RECONCILE_ROUNDS (5) interleaved rounds the median
# time of a plain count() of the day (the baseline), of each rollup's differences query,
# and of a pass over the day in agreement; and once, a pass that repairs a write of 1% more
# events two views missed. Writes the "reconcile" section of BENCHMARKS.md. Release build.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/bench/lib.sh"
bench_isolate reconcile 959
source "$REPO/deploy/lib.sh"
RESULTS="$STATE/results.$RUN_ID"
mkdir -p "$STATE"
cleanup() { bench_cleanup; }
trap cleanup EXIT
start_infrastructure
(cd "$REPO" && cargo build --release -q -p linktrace-bench --bin reconcile-cost)
log "a day of ${RECONCILE_EVENTS:-2000000} events, ${RECONCILE_ROUNDS:-5} rounds"
"$REPO/target/release/reconcile-cost" >"$RESULTS"
bench_report reconcile "$RESULTS" "$REPO/BENCHMARKS.md" "$(git -C "$REPO" rev-parse --short HEAD)"
log "wrote the reconcile section of BENCHMARKS.md"
