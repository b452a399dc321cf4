#!/usr/bin/env bash
# Runs the whole test suite against real Postgres, ClickHouse and Kafka.
# Brings up the infrastructure first (deploy/up.sh --infra). Tests isolate themselves:
# their own databases, topics and random ports, so they run beside a stack that is up.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The tests build while the infrastructure comes up (on a first run, beside the broker's build).
(cd "$REPO" && cargo test --workspace --no-run -q >"$LOGS/test-build.log" 2>&1) &
test_build=$!
"$REPO/deploy/up.sh" --infra
wait "$test_build" || { log "the tests do not build: see $LOGS/test-build.log"; cat "$LOGS/test-build.log" >&2; exit 1; }
# Exports GEOIP_DATABASE, the database up.sh installed (a test reads it; the services under
# test use a tiny one the tests build).
install_geoip
# Exports DASHBOARD_ASSETS_DIR: the dashboard test draws its charts with it.
install_dashboard_assets

# Databases left by this checkout's earlier runs (each test makes its own, named
# lt_test_<checkout>_*): other checkouts' databases, maybe in use, are left alone.
export LINKTRACE_TEST_PREFIX="c$(printf '%s' "$REPO" | md5sum | cut -c1-8)"
for db in $(psql -h 127.0.0.1 -U postgres -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'lt\_test\_${LINKTRACE_TEST_PREFIX}\_%'"); do
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
done
for db in $(curl -s "$CLICKHOUSE_URL" --data-binary "SELECT name FROM system.databases WHERE name LIKE 'lt\\_test\\_${LINKTRACE_TEST_PREFIX}\\_%'"); do
  curl -s "$CLICKHOUSE_URL" --data-binary "DROP DATABASE IF EXISTS $db" >/dev/null
done

# Topics of this checkout's earlier runs (lt-test-<checkout>_*) too: the local broker keeps
# every record in one sqlite file, and a few hundred leftover test topics made it stall.
for topic in $(tansu topic list --broker "tcp://127.0.0.1:$KAFKA_PORT" 2>/dev/null |
  grep -o "lt-test-${LINKTRACE_TEST_PREFIX}_[A-Za-z0-9_.-]*" | sort -u); do
  tansu topic delete "$topic" --broker "tcp://127.0.0.1:$KAFKA_PORT" >/dev/null 2>&1 || true
done

# docker-compose.yml cannot run here (no Docker engine) but its syntax is checked.
apt_install docker-compose >/dev/null 2>&1 || true
if command -v docker-compose >/dev/null 2>&1; then
  log "validating docker-compose.yml (it ships no secret: without the operator's it does not start)"
  compose_secrets=(LINKTRACE_ADMIN_TOKEN POSTGRES_PASSWORD CLICKHOUSE_PASSWORD GRAFANA_ADMIN_PASSWORD)
  unset_secrets=()
  for name in "${compose_secrets[@]}"; do unset_secrets+=(-u "$name"); done
  if (cd "$REPO" && env "${unset_secrets[@]}" docker-compose -f docker-compose.yml config -q) >/dev/null 2>&1; then
    log "docker-compose.yml starts without the operator's secrets"
    exit 1
  fi
  set_secrets=()
  for name in "${compose_secrets[@]}"; do set_secrets+=("$name=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"); done
  (cd "$REPO" && env "${set_secrets[@]}" docker-compose -f docker-compose.yml config -q)
  log "validating docker-compose.cluster.yml (on top of docker-compose.yml)"
  (cd "$REPO" && env "${set_secrets[@]}" docker-compose -f docker-compose.yml -f docker-compose.cluster.yml config -q)
fi

# Prometheus's scrape configuration (compose's), checked by Prometheus's own promtool.
apt_install prometheus >/dev/null 2>&1 || true
if command -v promtool >/dev/null 2>&1; then
  promtool check config "$REPO/deploy/prometheus/prometheus.yml" >/dev/null
fi

# The dashboard test drives a headless browser.
apt_install chromium chromium-driver

cd "$REPO"
export RUST_BACKTRACE=1
# Two cores: integration tests spawn services of their own, so keep parallelism modest.
set +e
cargo test --workspace --no-fail-fast -- --test-threads="${TEST_THREADS:-4}" "$@"
status=$?
set -e
# The cluster tests' four ClickHouse servers and ZooKeeper (integration/tests/it/cluster.rs) are
# not needed by what follows.
CLICKHOUSE_CLUSTER_STATE="$REPO/.linktrace/test-cluster" "$REPO/deploy/clickhouse-cluster.sh" down
# Every ClickHouse migration and analytics/attribution query, as the services send them,
# on current ClickHouse (chdb, in-process) and on this machine's server: same answers.
log "ClickHouse SQL on current ClickHouse (chdb) and on the server"
python3 -m pip install -q "chdb==$CHDB_VERSION" "pytest==$PYTEST_VERSION" >/dev/null 2>&1
# The binary the test build made: `cargo run -p` would build the crate again with other features.
"$REPO/target/debug/linktrace-sql-catalog" >"$STATE/sql-catalog.json" &&
  LINKTRACE_SQL_CATALOG="$STATE/sql-catalog.json" python3 -m pytest -q -p no:cacheprovider "$REPO/integration/sql" ||
  status=1
# The benchmarks' reports (bench/report), on raw results of a known shape.
log "the benchmarks' reports"
python3 -m pytest -q -p no:cacheprovider "$REPO/bench/report" || status=1
# The running stack against its OpenAPI description (schemathesis), through the gateway.
if [[ "${SKIP_SCHEMATHESIS:-0}" != 1 ]]; then
  started_here=()
  for name in consumer webhooks ingest api nginx; do pid_alive "$name" || started_here+=("$name"); done
  # The debug build the tests just made, not a second (release) build. Schemathesis sends
  # far more than a person and many wrong keys on purpose: the per-key rate and the
  # failed-authentication throttle (tested on their own) are lifted for it.
  API_RATE_LIMIT_PER_SEC=0 AUTH_FAILURES_PER_MINUTE=1000000 \
    LINKTRACE_PROFILE=debug "$REPO/deploy/up.sh" >"$LOGS/schemathesis-up.log" 2>&1 && "$REPO/deploy/schemathesis.sh" || status=1
  # The Grafana dashboard's queries, against Debian's Prometheus scraping this stack.
  log "every Grafana panel's query against Prometheus scraping the stack"
  python3 -m pytest -q -p no:cacheprovider "$REPO/integration/grafana" || status=1
  for name in "${started_here[@]}"; do stop_pid "$name"; done
fi

# Faults under load. They stop and restart ClickHouse and the broker, so they get their own
# (ports 18123/19000 and 19092, state in .linktrace/chaos), whatever else runs here, and run
# one at a time after the rest. Postgres is the shared one, restarted with pg_ctlcluster.
if [[ "${SKIP_CHAOS:-0}" != 1 ]]; then
  log "chaos tests: broker, ClickHouse and Postgres stopped and restarted under load"
  (
    export LINKTRACE_STATE_DIR="$REPO/.linktrace/chaos" CLICKHOUSE_URL=http://127.0.0.1:18123 \
      CLICKHOUSE_TCP_PORT=19000 KAFKA_BROKERS=127.0.0.1:19092
    # The tests stop these by pid: ones another checkout started would not stop.
    bash -c 'source deploy/lib.sh
      if { kafka_up && ! pid_alive tansu; } || { clickhouse_up && ! pid_alive clickhouse; }; then
        log "the chaos ports (18123, 19092) are held by processes this checkout did not start; stop them first"
        exit 1
      fi
      start_clickhouse && start_broker'
    code=0
    # --workspace: the test build's features, so nothing is built again.
    cargo test --workspace --test chaos -- --ignored --test-threads=1 || code=$?
    bash -c 'source deploy/lib.sh && stop_pid tansu && stop_pid clickhouse'
    exit $code
  ) || status=1
fi
exit $status
