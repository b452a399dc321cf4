#!/usr/bin/env bash
# The test build, before and after one integration test binary (issue 32): for a baseline
# commit (BENCH_BASELINE, default fe424a8: sixteen integration test binaries, full debuginfo)
# and the code under test (HEAD), each from a clean target folder of its own:
#   - the clean build deploy/test.sh starts with (`cargo test --workspace --no-run`): seconds
#     and the target folder's size;
#   - the builds its later phases add (that commit's own commands: chaos, the SQL catalog, the
#     services schemathesis runs against): seconds and megabytes added;
#   - a relink after a change to the api (`touch api/src/lib.rs`, the same test build),
#     BENCH_ROUNDS (3) rounds alternating the two, median.
# Sizes are exact; times carry the machine's noise (±15–25 %), hence the interleaved relinks.
# Writes the "test-build" section of BENCHMARKS.md. Needs ~25 min and ~20 GB on 2 cores.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/deploy/lib.sh"
source "$REPO/bench/lib.sh"
BASELINE="${BENCH_BASELINE:-fe424a8}"
ROUNDS="${BENCH_ROUNDS:-3}"
WORK="$REPO/.linktrace/test-build"
RESULTS="$WORK/results"
CODE="$(code_under_test)"
mkdir -p "$WORK"; : >"$RESULTS"

# checkout NAME COMMIT: a worktree of COMMIT at $WORK/NAME, its target folder beside it.
checkout() {
  rm -rf "$WORK/$1" "$WORK/$1-target"
  git -C "$REPO" worktree remove --force "$WORK/$1" >/dev/null 2>&1 || true
  git -C "$REPO" worktree add --detach "$WORK/$1" "$2" >/dev/null
}
cleanup() {
  for name in baseline candidate; do
    git -C "$REPO" worktree remove --force "$WORK/$name" >/dev/null 2>&1 || true
    rm -rf "$WORK/$name-target"
  done
}
trap cleanup EXIT
checkout baseline "$BASELINE"
checkout candidate HEAD
# The code under test with its uncommitted changes, if any.
(cd "$REPO" && git diff HEAD) | (cd "$WORK/candidate" && git apply --allow-empty 2>/dev/null || true)

# timed NAME LAYOUT COMMAND...: runs COMMAND in LAYOUT's worktree with its target folder and
# records NAME_LAYOUT_seconds and NAME_LAYOUT_mb (the folder's size afterwards).
timed() {
  local name="$1" layout="$2"; shift 2
  local start end
  start="$(date +%s.%N)"
  (cd "$WORK/$layout" && CARGO_TARGET_DIR="$WORK/$layout-target" "$@" >"$WORK/$name-$layout.log" 2>&1)
  end="$(date +%s.%N)"
  echo "${name}_${layout}_seconds $(echo "$end - $start" | bc)" >>"$RESULTS"
  echo "${name}_${layout}_mb $(du -sm "$WORK/$layout-target" | cut -f1)" >>"$RESULTS"
}

for layout in baseline candidate; do
  log "test build ($layout)"
  timed clean "$layout" cargo test --workspace --no-run
done
# What each commit's deploy/test.sh builds after its test build.
log "later phases (baseline: its own commands)"
timed chaos baseline cargo test -p linktrace-integration --test chaos --no-run
timed catalog baseline cargo build -p linktrace-integration --bin linktrace-sql-catalog
timed services baseline cargo build -p linktrace-ingest -p linktrace-consumer -p linktrace-api -p linktrace-webhooks --bins
log "later phases (candidate)"
timed chaos candidate cargo test --workspace --test chaos --no-run
timed services candidate cargo build --workspace --bins
for round in $(seq 1 "$ROUNDS"); do
  if ((round % 2)); then order="baseline candidate"; else order="candidate baseline"; fi
  for layout in $order; do
    log "relink round $round ($layout)"
    touch "$WORK/$layout/api/src/lib.rs"
    timed "relink_r$round" "$layout" cargo test --workspace --no-run
  done
done

bench_report test-build "$RESULTS" "$REPO/BENCHMARKS.md" "$BASELINE" "$CODE" "$ROUNDS"
