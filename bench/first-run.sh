#!/usr/bin/env bash
# What bounds a first deploy/up.sh on a clean machine: its two builds, run at once as up.sh
# runs them (the tansu broker with `cargo install` in the background, the services' release
# build beside it), from nothing: an empty cargo home (every crate downloaded from crates.io
# again) and empty target folders. Two ways to build the broker, interleaved round by round:
#   before  as up.sh built until this script's commit: tansu with all its release defaults
#           (opt-level 3) and the postgres and libsql storage engines; the services with
#           debuginfo for every dependency;
#   now     as up.sh builds: deploy/lib.sh's tansu_cargo_install (TANSU_OPT_LEVEL,
#           TANSU_FEATURES) and the workspace's release profile.
# Then what the cheaper build costs at run time: each round's two brokers, one after the
# other on a port and sqlite file of their own, take the same unthrottled produce load from
# `tansu perf` (FIRST_RUN_PERF_SECONDS 20, batches of FIRST_RUN_PERF_BATCH 100 records of
# FIRST_RUN_PERF_RECORD 512 bytes from FIRST_RUN_PERF_PRODUCERS 4 producers), and the
# records each stored per second are compared in the same round.
# Writes the "first-run" section of BENCHMARKS.md. Needs ~25 min a round and ~6 GB, on 2
# cores; nothing else should be building meanwhile.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/deploy/lib.sh"
source "$REPO/bench/lib.sh"
ROUNDS="${BENCH_ROUNDS:-1}"
PERF_SECONDS="${FIRST_RUN_PERF_SECONDS:-20}"
PERF_PORT="${FIRST_RUN_PERF_PORT:-19192}"
PERF_BATCH="${FIRST_RUN_PERF_BATCH:-100}"
PERF_RECORD="${FIRST_RUN_PERF_RECORD:-512}"
PERF_PRODUCERS="${FIRST_RUN_PERF_PRODUCERS:-4}"
WORK="$REPO/.linktrace/first-run"
RESULTS="$WORK/results"
CODE="$(code_under_test)"
# FIRST_RUN_REUSE=1: measure the last run's brokers again (perf load and profile) without
# building anything; its results are added to that run's.
REUSE="${FIRST_RUN_REUSE:-0}"
mkdir -p "$WORK"
[[ "$REUSE" == 1 ]] || : >"$RESULTS"
command -v perf >/dev/null 2>&1 || apt_install linux-perf
cleanup() { stop_pid first-run-broker 2>/dev/null || true; rm -rf "$WORK"/cargo-* "$WORK"/target-*; }
trap cleanup EXIT

# first_run VARIANT ROUND: both builds at once from nothing; records VARIANT_rROUND_{broker,
# services,both}_seconds and keeps the broker as $WORK/VARIANT-rROUND/bin/tansu.
first_run() {
  local variant="$1" round="$2" start broker_pid services_pid
  local home="$WORK/cargo-$variant" target="$WORK/target-$variant" root="$WORK/$variant-r$round"
  rm -rf "$home" "$target" "$root"; mkdir -p "$home"
  start="$(date +%s.%N)"
  (
    export CARGO_HOME="$home"
    if [[ "$variant" == before ]]; then TANSU_OPT_LEVEL=3 TANSU_FEATURES=postgres,libsql; fi
    tansu_cargo_install --root "$root" >"$WORK/$variant-r$round-broker.log" 2>&1
    echo "${variant}_r${round}_broker_seconds $(echo "$(date +%s.%N) - $start" | bc)" >>"$RESULTS"
  ) &
  broker_pid=$!
  (
    export CARGO_HOME="$home" CARGO_TARGET_DIR="$target"
    local -a before=()
    [[ "$variant" == before ]] && before=(--config 'profile.release.package."*".debug=1')
    cd "$REPO" && cargo build "${before[@]}" --release -p linktrace-ingest -p linktrace-consumer -p linktrace-api \
      -p linktrace-webhooks --bins >"$WORK/$variant-r$round-services.log" 2>&1
    echo "${variant}_r${round}_services_seconds $(echo "$(date +%s.%N) - $start" | bc)" >>"$RESULTS"
  ) &
  services_pid=$!
  wait "$broker_pid"; wait "$services_pid"
  echo "${variant}_r${round}_both_seconds $(echo "$(date +%s.%N) - $start" | bc)" >>"$RESULTS"
  echo "${variant}_r${round}_crates $(grep -c '^ *Compiling' "$WORK/$variant-r$round-broker.log")" >>"$RESULTS"
  rm -rf "$home" "$target"
}

# broker_perf VARIANT ROUND: that build's broker on its own port and sqlite file, taking
# PERF_SECONDS of `tansu perf` produce load from one fixed client (the round's "before" build,
# whatever the broker); records VARIANT_rROUND_records_per_sec: records the broker stored
# (counted in its sqlite file) per second of load.
broker_perf() {
  local variant="$1" round="$2" dir="$WORK/perf-$1-r$2" records
  local broker="$WORK/$1-r$2/bin/tansu" client="$WORK/before-r$2/bin/tansu"
  rm -rf "$dir"; mkdir -p "$dir"
  daemonize first-run-broker "$dir" "" "$dir/broker.log" "$broker" broker \
    --listener-url "tcp://127.0.0.1:$PERF_PORT" --advertised-listener-url "tcp://127.0.0.1:$PERF_PORT" \
    --storage-engine "sqlite://tansu.db"
  KAFKA_PORT="$PERF_PORT" wait_for "the $variant broker" 30 kafka_up
  "$client" topic create perf --partitions 1 --broker "tcp://127.0.0.1:$PERF_PORT" >/dev/null 2>&1
  # Where the broker's CPU goes meanwhile: perf samples, from the second second to two before
  # the end (bench/report broker-share: the share in its C code, which is sqlite's).
  (sleep 1; perf record -F 499 -g -p "$(cat "$RUN/first-run-broker.pid")" -o "$dir/perf.data" \
    -- sleep "$((PERF_SECONDS - 3))" >/dev/null 2>&1) &
  local profiler=$!
  "$client" perf --broker "tcp://127.0.0.1:$PERF_PORT" perf produce --batch-size "$PERF_BATCH" \
    --record-size "$PERF_RECORD" --producers "$PERF_PRODUCERS" --duration "${PERF_SECONDS}s" \
    >"$dir/perf.log" 2>&1
  wait "$profiler" || true
  stop_pid first-run-broker
  echo "${variant}_r${round}_c_share $(perf report -i "$dir/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
    bench_report broker-share)" >>"$RESULTS"
  records="$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM record").fetchone()[0])' "$dir/tansu.db")"
  echo "${variant}_r${round}_records $records" >>"$RESULTS"
  echo "${variant}_r${round}_records_per_sec $(echo "$records / $PERF_SECONDS" | bc)" >>"$RESULTS"
}

for round in $(seq 1 "$ROUNDS"); do
  if ((round % 2)); then order="before now"; else order="now before"; fi
  for variant in $order; do
    [[ "$REUSE" == 1 ]] && break
    log "round $round: a first run's builds ($variant)"
    first_run "$variant" "$round"
  done
  for variant in $order; do
    log "round $round: the $variant broker under tansu perf"
    broker_perf "$variant" "$round"
  done
done
[[ "$REUSE" == 1 ]] || echo "rounds $ROUNDS" >>"$RESULTS"
[[ "$REUSE" == 1 ]] || echo "now_broker \"Rust at opt-level $TANSU_OPT_LEVEL, sqlite at $TANSU_SQLITE_OPT_LEVEL, features $TANSU_FEATURES\"" >>"$RESULTS"
bench_report first-run "$RESULTS" "$REPO/BENCHMARKS.md" "$CODE" \
  "$PERF_SECONDS s, batches of $PERF_BATCH records of $PERF_RECORD bytes from $PERF_PRODUCERS producers"
