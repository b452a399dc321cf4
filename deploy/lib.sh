# Shared by deploy/up.sh, deploy/down.sh, deploy/test.sh and bench/run.sh.
# Every function is idempotent: it checks before it acts.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Absolute, whatever the caller gave: daemons are started from other folders.
STATE="$(realpath -m "${LINKTRACE_STATE_DIR:-$REPO/.linktrace}")"
RUN="$STATE/run"
LOGS="$STATE/logs"
mkdir -p "$RUN" "$LOGS"
export PATH="$HOME/.cargo/bin:$PATH"

# Local defaults; every one can be overridden from the environment.
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/linktrace}"
export CLICKHOUSE_URL="${CLICKHOUSE_URL:-http://127.0.0.1:8123}"
export CLICKHOUSE_DATABASE="${CLICKHOUSE_DATABASE:-linktrace}"
export CLICKHOUSE_TCP_PORT="${CLICKHOUSE_TCP_PORT:-9000}"
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
export KAFKA_EVENTS_TOPIC="${KAFKA_EVENTS_TOPIC:-linktrace.events}"
export KAFKA_DEAD_LETTER_TOPIC="${KAFKA_DEAD_LETTER_TOPIC:-linktrace.events.dlq}"
export KAFKA_EVENTS_PARTITIONS="${KAFKA_EVENTS_PARTITIONS:-4}"
export INGEST_ADDR="${INGEST_ADDR:-127.0.0.1:8081}"
export API_ADDR="${API_ADDR:-127.0.0.1:8082}"
export CONSUMER_ADDR="${CONSUMER_ADDR:-127.0.0.1:8083}"
export WEBHOOKS_ADDR="${WEBHOOKS_ADDR:-127.0.0.1:8084}"
# One machine: webhook receivers run beside the stack (on loopback), so they are allowed
# here. docker-compose leaves this off: customers' URLs may not reach private networks.
export WEBHOOKS_ALLOW_PRIVATE_URLS="${WEBHOOKS_ALLOW_PRIVATE_URLS:-true}"
# Static group membership: a restarted consumer takes its partitions back at once.
export KAFKA_CONSUMER_INSTANCE_ID="${KAFKA_CONSUMER_INSTANCE_ID:-consumer-$(hostname)}"
export GATEWAY_ADDR="${GATEWAY_ADDR:-127.0.0.1:8080}"
export PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-http://$GATEWAY_ADDR}"
export LINKTRACE_ADMIN_TOKEN="${LINKTRACE_ADMIN_TOKEN:-lt_admin_local_dev_token}"
# The gateway (nginx on loopback) is the one proxy whose X-Forwarded-For the api believes:
# it reaches the services from 127.0.0.2 (proxy_bind), which nothing else uses.
export GATEWAY_PROXY_BIND="${GATEWAY_PROXY_BIND:-127.0.0.2}"
export TRUSTED_PROXIES="${TRUSTED_PROXIES:-$GATEWAY_PROXY_BIND}"
# IP -> country: ip-location-db's geo-whois-asn-country (CC0), from the npm registry,
# installed by install_dependencies (never downloaded by the services).
GEOIP_PACKAGE="@ip-location-db/geo-whois-asn-country-mmdb"
GEOIP_VERSION="2.3.2026061719"
UPLOT_VERSION="1.6.32"
# What a user runs: release. `deploy/up.sh --debug` (or LINKTRACE_PROFILE=debug) for a
# quicker build while developing; deploy/test.sh starts the stack from its debug build.
export LINKTRACE_PROFILE="${LINKTRACE_PROFILE:-release}"
# tansu reads a sqlite path relative to its working folder ($STATE/tansu).
TANSU_STORAGE="${TANSU_STORAGE:-sqlite://tansu.db}"
# The local broker is tansu 0.6, whose idempotent-producer support breaks across a broker
# restart: librdkafka asks for an epoch bump (InitProducerId with its old id), which tansu
# has not implemented (a todo!() that kills its storage task), and every later request
# fails. Plain acks=all producers survive restarts; duplicates a retry may leave in the
# topic are dropped by the consumer (deterministic event ids). docker-compose runs Apache
# Kafka with idempotence on.
export KAFKA_PRODUCER_IDEMPOTENT="${KAFKA_PRODUCER_IDEMPOTENT:-false}"

# Pinned tools from PyPI (tansu's version is pinned where it is installed).
CHDB_VERSION=4.4.0
PYTEST_VERSION=8.4.2
SCHEMATHESIS_VERSION=4.32.5

CLICKHOUSE_HTTP_PORT="${CLICKHOUSE_URL##*:}"
CLICKHOUSE_HTTP_PORT="${CLICKHOUSE_HTTP_PORT%%/*}"
KAFKA_PORT="${KAFKA_BROKERS##*:}"

# Each line carries the seconds since the script started, so a slow phase shows itself.
log() { printf '\033[1m[linktrace +%ss]\033[0m %s\n' "$SECONDS" "$*" >&2; }

# pid_alive NAME: true when $RUN/NAME.pid names a live process.
pid_alive() {
  local file="$RUN/$1.pid"
  [[ -f "$file" ]] && kill -0 "$(cat "$file")" 2>/dev/null
}

# wait_for DESCRIPTION SECONDS COMMAND...: retries COMMAND until it succeeds.
wait_for() {
  local what="$1" seconds="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then log "timed out waiting for $what"; return 1; fi
    sleep 0.5
  done
}

# daemonize NAME DIR USER LOGFILE PROGRAM ARGS...: starts PROGRAM detached, in DIR, as USER
# (empty: ourselves), output to LOGFILE, its own pid in $RUN/NAME.pid.
daemonize() {
  local name="$1" dir="$2" user="$3" logfile="$4"; shift 4
  local as_user=()
  [[ -n "$user" ]] && as_user=(--chuid "$user")
  start-stop-daemon --start --background --make-pidfile --pidfile "$RUN/$name.pid" \
    --chdir "$dir" "${as_user[@]}" --output "$logfile" --startas "$1" -- "${@:2}"
}

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  ((${#missing[@]} == 0)) && return 0
  if ((apt_updated == 0)); then apt-get update -qq; apt_updated=1; fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_dependencies() {
  begin_tansu_install
  apt_install clickhouse-server clickhouse-client nginx-light curl postgresql-client gettext-base
  install_geoip
  install_dashboard_assets
}

# The broker is built once from crates.io, in the background so that the rest of the first run
# (Debian packages, ClickHouse, the services' own build) goes on beside it. It is the local
# stand-in for Kafka, not our code, so it is built for a short first run rather than for its
# last percent of speed (bench/first-run.sh measures both):
#   - only the storage engine the local stack uses, sqlite (libsql); TANSU_FEATURES adds
#     others (postgres, for brokers that share one cluster);
#   - its Rust unoptimised (TANSU_OPT_LEVEL, default 0) and without debug info, but sqlite,
#     the C inside libsql-ffi that does most of a produce's work (perf, bench/first-run.sh),
#     at release's opt-level 3 (TANSU_SQLITE_OPT_LEVEL).
TANSU_VERSION=0.6.0
TANSU_FEATURES="${TANSU_FEATURES:-libsql}"
TANSU_OPT_LEVEL="${TANSU_OPT_LEVEL:-0}"
TANSU_SQLITE_OPT_LEVEL="${TANSU_SQLITE_OPT_LEVEL:-3}"
begin_tansu_install() {
  if command -v tansu >/dev/null 2>&1 || [[ -n "${TANSU_INSTALL_PID:-}" ]]; then return 0; fi
  log "building the tansu broker in the background (cargo install, once; $LOGS/tansu-install.log)"
  tansu_cargo_install >"$LOGS/tansu-install.log" 2>&1 &
  TANSU_INSTALL_PID=$!
}

# tansu_cargo_install [CARGO INSTALL ARGS...]: the one way the broker is built (up.sh and
# bench/first-run.sh). Run from / so that no project's cargo configuration applies.
tansu_cargo_install() {
  (cd / && CARGO_PROFILE_RELEASE_OPT_LEVEL="$TANSU_OPT_LEVEL" CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install tansu --version "$TANSU_VERSION" --locked --features "$TANSU_FEATURES" \
      --config "profile.release.package.libsql-ffi.opt-level=$TANSU_SQLITE_OPT_LEVEL" "$@")
}

finish_tansu_install() {
  [[ -n "${TANSU_INSTALL_PID:-}" ]] || return 0
  log "waiting for the tansu build to finish"
  if ! wait "$TANSU_INSTALL_PID"; then
    log "building tansu failed: see $LOGS/tansu-install.log"
    exit 1
  fi
  unset TANSU_INSTALL_PID
}

# npm_install_pinned DIR PACKAGE VERSION FILE WHAT: PACKAGE@VERSION from the npm registry into
# DIR (once: again only when FILE, relative to the package, is missing or the version changed).
npm_install_pinned() {
  local dir="$1" package="$2" version="$3" file="$4" what="$5"
  local installed="$dir/node_modules/$package"
  if [[ ! -s "$installed/$file" ]] || ! grep -q "\"version\": \"$version\"" "$installed/package.json" 2>/dev/null; then
    command -v npm >/dev/null 2>&1 || apt_install npm
    log "installing $what ($package@$version, npm)"
    mkdir -p "$dir"
    npm install --silent --no-audit --no-fund --prefix "$dir" "$package@$version" >"$LOGS/$(basename "$dir")-install.log" 2>&1
  fi
}

install_geoip() {
  npm_install_pinned "$STATE/geoip" "$GEOIP_PACKAGE" "$GEOIP_VERSION" geo-whois-asn-country.mmdb \
    "the IP -> country database"
  export GEOIP_DATABASE="${GEOIP_DATABASE:-$STATE/geoip/node_modules/$GEOIP_PACKAGE/geo-whois-asn-country.mmdb}"
}

# The dashboard's charting library (uPlot, MIT), pinned, from the npm registry; the api serves
# it from DASHBOARD_ASSETS_DIR (never from a CDN at run time).
install_dashboard_assets() {
  npm_install_pinned "$STATE/dashboard" uplot "$UPLOT_VERSION" dist/uPlot.iife.min.js \
    "the dashboard's charting library"
  export DASHBOARD_ASSETS_DIR="${DASHBOARD_ASSETS_DIR:-$STATE/dashboard/node_modules/uplot/dist}"
}

# start_postgres: the machine's Postgres on 127.0.0.1:5432, started if it is not running. A
# cluster that is running but not yet answering (still starting, or recovering after a crash)
# is waited for, not started again: pg_ctlcluster would refuse ("already running", exit 2).
start_postgres() {
  if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then return 0; fi
  local version
  version="$(ls /etc/postgresql | head -1)"
  if pg_ctlcluster "$version" main status >/dev/null 2>&1; then
    log "Postgres $version is running but not yet answering on 127.0.0.1:5432: waiting for it"
  else
    log "starting Postgres"
    # Another starter may win the race between status and start: its cluster is waited for.
    if pg_ctlcluster --skip-systemctl-redirect "$version" main start; then
      touch "$RUN/postgres.started-by-us"
    fi
  fi
  if ! wait_for "Postgres on 127.0.0.1:5432" "${POSTGRES_START_SECONDS:-120}" pg_isready -h 127.0.0.1 -p 5432 -q; then
    pg_lsclusters >&2 || true
    tail -n 20 "/var/log/postgresql/postgresql-$version-main.log" >&2 2>/dev/null || true
    return 1
  fi
}

clickhouse_up() { curl -sf "http://127.0.0.1:$CLICKHOUSE_HTTP_PORT/ping"; }

start_clickhouse() {
  local dir="$STATE/clickhouse"
  if clickhouse_up; then
    # Users and profiles are re-read by a running server: keep them current.
    [[ -d "$dir" ]] && cp "$REPO/deploy/clickhouse/users.xml" "$dir/users.xml"
    return 0
  fi
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"
  sed -e "s#@DIR@#$dir#g" -e "s#@HTTP_PORT@#$CLICKHOUSE_HTTP_PORT#g" -e "s#@TCP_PORT@#$CLICKHOUSE_TCP_PORT#g" \
    "$REPO/deploy/clickhouse/config.xml" >"$dir/config.xml"
  cp "$REPO/deploy/clickhouse/users.xml" "$dir/users.xml"
  chown -R clickhouse:clickhouse "$dir"
  log "starting ClickHouse on 127.0.0.1:$CLICKHOUSE_HTTP_PORT"
  daemonize clickhouse "$dir" clickhouse "$LOGS/clickhouse.out" \
    "$(command -v clickhouse-server)" --config-file="$dir/config.xml"
  wait_for "ClickHouse" 60 clickhouse_up
}

kafka_up() { (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null; }

start_broker() {
  if kafka_up; then return 0; fi
  mkdir -p "$STATE/tansu"
  log "starting tansu on 127.0.0.1:$KAFKA_PORT ($TANSU_STORAGE)"
  daemonize tansu "$STATE/tansu" "" "$LOGS/tansu.log" "$(command -v tansu)" broker \
    --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --storage-engine "$TANSU_STORAGE"
  wait_for "tansu" 30 kafka_up
  index_tansu_headers "$STATE/tansu/tansu.db"
}

# index_tansu_headers DB: tansu 0.6's sqlite schema has no index on header(topition,
# offset_id), and a fetch reads each record's headers with that join: when many messages
# carry headers (dead letters do; events did, with their request id), a fetch scans the whole
# header table per record and a drain of 300k events stalls the broker. The index makes it a
# look-up. Idempotent.
index_tansu_headers() {
  [[ "$TANSU_STORAGE" == sqlite://* && -f "$1" ]] || return 0
  python3 - "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'header'").fetchone():
    db.execute("CREATE INDEX IF NOT EXISTS header_record ON header (topition, offset_id)")
    db.commit()
PY
}

create_topics() {
  for topic in "$KAFKA_EVENTS_TOPIC" "$KAFKA_DEAD_LETTER_TOPIC"; do
    tansu topic create "$topic" --partitions "$KAFKA_EVENTS_PARTITIONS" \
      --broker "tcp://127.0.0.1:$KAFKA_PORT" >>"$LOGS/topics.log" 2>&1 || true
  done
}

start_infrastructure() {
  start_databases
  start_broker_and_topics
}

# The first half of start_infrastructure: everything but the broker, whose first build may
# still be running in the background.
start_databases() {
  install_dependencies
  start_postgres
  # In cluster mode (deploy/up.sh --cluster) the cluster's node 1 is CLICKHOUSE_URL.
  [[ -n "${CLICKHOUSE_SKIP_SINGLE:-}" ]] || start_clickhouse
}

start_broker_and_topics() {
  finish_tansu_install
  start_broker
  create_topics
}

build_services() {
  log "building the services ($LINKTRACE_PROFILE)"
  if [[ "$LINKTRACE_PROFILE" == release ]]; then
    (cd "$REPO" && cargo build --release -p linktrace-ingest -p linktrace-consumer -p linktrace-api -p linktrace-webhooks --bins)
  else
    # The whole workspace, as the test build does: the same features, so dependencies the
    # tests built are reused rather than built again with another feature set.
    (cd "$REPO" && cargo build --workspace --bins)
  fi
}

# start_service NAME: runs target/$PROFILE/linktrace-NAME in the background on $NAME_ADDR.
start_service() {
  local addr_var
  addr_var="$(echo "$1" | tr '[:lower:]' '[:upper:]')_ADDR"
  start_service_as "$1" "$1" "${!addr_var}"
}

# start_service_as PIDNAME SERVICE ADDRESS [VAR=VALUE...]: one more instance of SERVICE,
# known as PIDNAME, with some settings of its own.
start_service_as() {
  local name="$1" service="$2" address="$3"; shift 3
  if pid_alive "$name"; then return 0; fi
  log "starting $name on $address"
  local addr_var
  addr_var="$(echo "$service" | tr '[:lower:]' '[:upper:]')_ADDR"
  (export "$addr_var=$address" "$@"; daemonize "$name" "$REPO" "" "$LOGS/$name.log" "$REPO/target/$LINKTRACE_PROFILE/linktrace-$service")
  wait_for "$name" 60 curl -sf "http://$address/healthz"
}

# SERVICE_INSTANCES of each service (deploy/up.sh --cluster: 2). One instance keeps today's
# names and ports; with more, instance K of SERVICE is SERVICE-K on $SERVICE_ADDR's port
# + 10*(K-1). The consumers and webhook workers are then dynamic members of their groups:
# with two static members, tansu 0.6 left the group without an assignment for good once one
# of them rejoined (seen here: five minutes, and nothing; dynamic members were assigned at
# once). A SIGKILLed dynamic member's partitions move once the broker drops it from the group.
SERVICE_INSTANCES="${SERVICE_INSTANCES:-1}"

# service_addresses SERVICE: the addresses of SERVICE's instances, one per line.
service_addresses() {
  local addr_var address
  addr_var="$(echo "$1" | tr '[:lower:]' '[:upper:]')_ADDR"
  address="${!addr_var}"
  for k in $(seq 1 "$SERVICE_INSTANCES"); do
    echo "${address%:*}:$((${address##*:} + 10 * (k - 1)))"
  done
}

start_services() {
  local service k address
  for service in consumer webhooks ingest api; do
    if ((SERVICE_INSTANCES == 1)); then start_service "$service"; continue; fi
    k=0
    for address in $(service_addresses "$service"); do
      k=$((k + 1))
      start_service_as "$service-$k" "$service" "$address" \
        KAFKA_CONSUMER_INSTANCE_ID= WEBHOOKS_CONSUMER_INSTANCE_ID=
    done
  done
}

# The pid names of the services' instances, for down.sh and test.sh.
service_pid_names() {
  local service
  for service in api ingest webhooks consumer; do
    echo "$service"
    for k in 1 2 3 4 5 6 7 8 9; do echo "$service-$k"; done
  done
}

start_gateway() {
  if pid_alive nginx; then return 0; fi
  mkdir -p "$STATE/nginx"
  # Every instance behind its upstream: "a; server b; ..." fills `server ${LT_..._UPSTREAM};`.
  local ingest api
  ingest="$(service_addresses ingest | paste -sd';' | sed 's/;/; server /g')"
  api="$(service_addresses api | paste -sd';' | sed 's/;/; server /g')"
  LT_INGEST_UPSTREAM="$ingest" LT_API_UPSTREAM="$api" LT_GATEWAY_LISTEN="$GATEWAY_ADDR" \
    LT_PROXY_BIND="$GATEWAY_PROXY_BIND" \
    envsubst '${LT_INGEST_UPSTREAM} ${LT_API_UPSTREAM} ${LT_GATEWAY_LISTEN} ${LT_PROXY_BIND}' \
    <"$REPO/deploy/nginx/gateway.conf.template" >"$STATE/nginx/gateway.conf"
  sed -e "s#@STATE@#$STATE/nginx#g" -e "s#@RUN@#$RUN#g" "$REPO/deploy/nginx/local.conf" >"$STATE/nginx/nginx.conf"
  log "starting the gateway on $GATEWAY_ADDR"
  nginx -c "$STATE/nginx/nginx.conf" -p "$STATE/nginx"
  wait_for "gateway" 15 curl -sf "http://$GATEWAY_ADDR/healthz"
}

stop_pid() {
  local name="$1" file="$RUN/$1.pid" pid
  [[ -f "$file" ]] || return 0
  pid="$(cat "$file")"
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $name ($pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}
