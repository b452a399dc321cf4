#!/usr/bin/env bash
# Runs the whole test suite against real Postgres, ClickHouse and Kafka.
# Brings up the infrastructure first (deploy/up.sh --infra). Tests isolate themselves:
# their own databases, topics and random ports, so they run beside a stack that is up.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$REPO/deploy/up.sh" --infra
apt_install chromium >/dev/null 2>&1 || log "chromium is not available; the dashboard browser test will say so"

cd "$REPO"
export RUST_BACKTRACE=1
# Two cores: integration tests spawn services of their own, so keep parallelism modest.
cargo test --workspace --no-fail-fast -- --test-threads="${TEST_THREADS:-4}" "$@"
