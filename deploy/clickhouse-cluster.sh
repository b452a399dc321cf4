#!/usr/bin/env bash
# A ClickHouse cluster on this machine: ZooKeeper (Debian's zookeeperd) and four 18.16
# servers as `linktrace`, 2 shards x 2 replicas. Idempotent: starts whatever is down.
#   deploy/clickhouse-cluster.sh up     start (the default)
#   deploy/clickhouse-cluster.sh down   stop
#   deploy/clickhouse-cluster.sh kill N SIGKILL node N (1-4), for fault tests
#   deploy/clickhouse-cluster.sh stop-zookeeper   stop ZooKeeper alone (a fault test; `up` starts it)
#   deploy/clickhouse-cluster.sh reset  stop and delete every node's data and ZooKeeper's (tests)
# Ports: node N answers HTTP on CLICKHOUSE_CLUSTER_HTTP_BASE+N-1 (default 8123: node 1 is
# CLICKHOUSE_URL, as in single-node mode), native on CLICKHOUSE_CLUSTER_TCP_BASE+N-1 and
# replication on CLICKHOUSE_CLUSTER_INTERSERVER_BASE+N-1; ZooKeeper on ZOOKEEPER_PORT.
# CLICKHOUSE_CLUSTER_STATE keeps data and pid files apart (tests run a cluster of their own).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HTTP_BASE="${CLICKHOUSE_CLUSTER_HTTP_BASE:-8123}"
TCP_BASE="${CLICKHOUSE_CLUSTER_TCP_BASE:-9000}"
INTERSERVER_BASE="${CLICKHOUSE_CLUSTER_INTERSERVER_BASE:-9009}"
ZOOKEEPER_PORT="${ZOOKEEPER_PORT:-2181}"
# The stack's cluster (deploy/up.sh --cluster) keeps its pid files with the rest, in $RUN; a
# cluster of its own (the tests') keeps them in its state folder.
# The path is made canonical: a process is recognised by it on its command line, however
# the caller spelled it (`a/../b` or `b`).
if [[ -n "${CLICKHOUSE_CLUSTER_STATE:-}" ]]; then
  CLUSTER_STATE="$(realpath -m "$CLICKHOUSE_CLUSTER_STATE")" CLUSTER_RUN="$CLUSTER_STATE/run"
else
  CLUSTER_STATE="$STATE/cluster" CLUSTER_RUN="$RUN"
fi
mkdir -p "$CLUSTER_RUN"

zookeeper_up() { [[ "$(echo ruok | timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$ZOOKEEPER_PORT; cat >&3; cat <&3" 2>/dev/null)" == imok ]]; }

start_zookeeper() {
  if zookeeper_up; then return 0; fi
  apt_install zookeeperd
  local dir="$CLUSTER_STATE/zookeeper"
  if our_pid zookeeper "$(zookeeper_mark)" >/dev/null; then
    wait_for "ZooKeeper" 120 zookeeper_up || { tail -n 20 "$dir/zookeeper.log" >&2; exit 1; }
    return 0
  fi
  rm -f "$CLUSTER_RUN/zookeeper.pid"
  mkdir -p "$dir/data" "$dir/conf"
  cat >"$dir/conf/zoo.cfg" <<CFG
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$dir/data
clientPort=$ZOOKEEPER_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,stat,mntr
CFG
  cp /etc/zookeeper/conf/log4j.properties "$dir/conf/" 2>/dev/null || true
  log "starting ZooKeeper on 127.0.0.1:$ZOOKEEPER_PORT"
  # Debian's own classpath for it (/etc/zookeeper/conf/environment), with our conf first.
  local classpath="$dir/conf:/usr/share/java/zookeeper.jar"
  start-stop-daemon --start --background --make-pidfile --pidfile "$CLUSTER_RUN/zookeeper.pid" \
    --chdir "$dir" --output "$dir/zookeeper.log" --startas /usr/bin/java -- \
    -Xmx256m -Dzookeeper.log.dir="$dir" -Dzookeeper.root.logger=INFO,CONSOLE -cp "$classpath" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/conf/zoo.cfg"
  wait_for "ZooKeeper" 120 zookeeper_up || { tail -n 20 "$dir/zookeeper.log" >&2; exit 1; }
}

# settle_zookeeper_sessions: after ZooKeeper (re)started under running nodes. It kept the
# nodes' old sessions, and their ephemeral nodes (each DDL worker's `active` mark, replicas'
# `is_active`, leader elections, the ON CLUSTER ALTER's shard lock), until each times out;
# 18.16 never resumes a session, it opens a new one. DDL sent meanwhile was refused
# (`Session expired`) or ran on two replicas of a shard at once and left a host unfinished
# for distributed_ddl_task_timeout (cluster::migrations_right_after_a_zookeeper_restart_are_applied).
# So: wait out the session timeout, then until every node answers through ZooKeeper.
settle_zookeeper_sessions() {
  local timeout_ms
  timeout_ms="$(grep -o '<session_timeout_ms>[0-9]*' "$REPO/deploy/clickhouse/cluster.xml" | grep -o '[0-9]*$')"
  log "ZooKeeper restarted: waiting out the nodes' old sessions (${timeout_ms} ms)"
  sleep "$(( timeout_ms / 1000 + 2 ))"
  for n in 1 2 3 4; do
    wait_for "node $n through ZooKeeper" 60 zookeeper_answers "$n" || exit 1
  done
}

zookeeper_answers() {
  [[ "$(curl -s "http://127.0.0.1:$((HTTP_BASE + $1 - 1))/" --data-binary \
    "SELECT count() > 0 FROM system.zookeeper WHERE path = '/clickhouse'" 2>/dev/null)" == 1 ]]
}

node_up() { curl -sf "http://127.0.0.1:$((HTTP_BASE + $1 - 1))/ping" >/dev/null; }

# our_pid NAME MARK: the pid in NAME's pid file, if that process is alive and its command
# line holds MARK (its own config path). A pid file outlives its process (a reboot, a
# SIGKILL); its number may since belong to another process, which must be neither taken
# for a running node nor signalled.
our_pid() {
  local file="$CLUSTER_RUN/$1.pid" pid
  [[ -f "$file" ]] || return 1
  pid="$(cat "$file")"
  [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$2" || return 1
  echo "$pid"
}
node_mark() { echo "$CLUSTER_STATE/clickhouse-$1/config.xml"; }
zookeeper_mark() { echo "$CLUSTER_STATE/zookeeper/conf/zoo.cfg"; }

# Shown when a node does not answer in time: why, from its own logs.
node_logs() {
  local dir="$CLUSTER_STATE/clickhouse-$1"
  echo "--- node $1: $(our_pid "clickhouse-$1" "$(node_mark "$1")" >/dev/null && echo running || echo 'not running')" >&2
  tail -n 20 "$dir/clickhouse.out" "$dir/log/clickhouse-server.err.log" >&2 2>/dev/null || true
}

start_node() {
  local n="$1" dir="$CLUSTER_STATE/clickhouse-$1"
  if node_up "$n"; then return 0; fi
  # Started and still loading its tables: wait for it, do not start a second one.
  if our_pid "clickhouse-$n" "$(node_mark "$n")" >/dev/null; then return 0; fi
  rm -f "$CLUSTER_RUN/clickhouse-$n.pid"
  local shard=$(((n + 1) / 2)) replica=$(((n + 1) % 2 + 1))
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log" "$dir/config.d"
  sed -e "s#@DIR@#$dir#g" -e "s#@HTTP_PORT@#$((HTTP_BASE + n - 1))#g" \
    -e "s#@TCP_PORT@#$((TCP_BASE + n - 1))#g" \
    "$REPO/deploy/clickhouse/config.xml" >"$dir/config.xml"
  sed -e "s#@INTERSERVER_PORT@#$((INTERSERVER_BASE + n - 1))#g" \
    -e "s#@TCP_PORT_1@#$TCP_BASE#g" -e "s#@TCP_PORT_2@#$((TCP_BASE + 1))#g" \
    -e "s#@TCP_PORT_3@#$((TCP_BASE + 2))#g" -e "s#@TCP_PORT_4@#$((TCP_BASE + 3))#g" \
    -e "s#@ZOOKEEPER_PORT@#$ZOOKEEPER_PORT#g" -e "s#@SHARD@#0$shard#g" -e "s#@REPLICA@#r$replica#g" \
    "$REPO/deploy/clickhouse/cluster.xml" >"$dir/config.d/cluster.xml"
  cp "$REPO/deploy/clickhouse/users.xml" "$dir/users.xml"
  chown -R clickhouse:clickhouse "$dir"
  log "starting ClickHouse node $n (shard $shard, replica $replica) on 127.0.0.1:$((HTTP_BASE + n - 1))"
  start-stop-daemon --start --background --make-pidfile --pidfile "$CLUSTER_RUN/clickhouse-$n.pid" \
    --chdir "$dir" --chuid clickhouse --output "$dir/clickhouse.out" \
    --startas "$(command -v clickhouse-server)" -- --config-file="$dir/config.xml"
}

# await_node N: waits up to two minutes for node N to answer. A node that exits while
# starting (a ZooKeeper that answers `ruok` before it serves sessions) is started again, up to
# three times, its logs shown each time.
await_node() {
  local n="$1" deadline=$((SECONDS + 120)) restarts=0
  until node_up "$n"; do
    if ! our_pid "clickhouse-$n" "$(node_mark "$n")" >/dev/null; then
      node_logs "$n"
      ((restarts++ < 3)) || { log "ClickHouse node $n keeps exiting"; exit 1; }
      start_node "$n"
    fi
    if ((SECONDS > deadline)); then log "timed out waiting for ClickHouse node $n"; node_logs "$n"; exit 1; fi
    sleep 0.5
  done
}

# stop_cluster_pid NAME MARK: stops NAME if its pid file names a process of ours.
stop_cluster_pid() {
  local pid
  if pid="$(our_pid "$1" "$2")"; then
    log "stopping $1"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$CLUSTER_RUN/$1.pid"
}

stop_cluster() {
  for n in 1 2 3 4; do stop_cluster_pid "clickhouse-$n" "$(node_mark "$n")"; done
  stop_cluster_pid zookeeper "$(zookeeper_mark)"
  # Anything still running from this state folder (its pid file lost): by its config path.
  pkill -9 -f -- "--config-file=$CLUSTER_STATE/clickhouse-" 2>/dev/null || true
  pkill -9 -f -- "$(zookeeper_mark)" 2>/dev/null || true
}

# restart_nodes_without_ddl_worker: 18.16's DDLWorker ends for good on a ZooKeeper error it
# does not expect ("Unexpected ZooKeeper error: ... Terminating."): two replicas of a shard
# that take one ON CLUSTER task at the same moment race to create its shard node, and the
# loser gets `Node exists`. The node then answers queries but runs no ON CLUSTER statement
# again, each one waiting out distributed_ddl_task_timeout (seen on the test cluster, 2026-12-04).
# A restart gives it a new worker, which takes up the queue where it stopped. The log is moved
# aside, so that only a termination after this restart counts next time.
restart_nodes_without_ddl_worker() {
  local n log
  for n in 1 2 3 4; do
    log="$CLUSTER_STATE/clickhouse-$n/log/clickhouse-server.err.log"
    if node_up "$n" && grep -q "DDLWorker: Unexpected ZooKeeper error" "$log" 2>/dev/null; then
      log "node $n's DDL worker has terminated (its log): restarting the node"
      stop_cluster_pid "clickhouse-$n" "$(node_mark "$n")"
      mv "$log" "$log.ddl-worker-ended-$(date +%s)"
    fi
  done
}

case "${1:-up}" in
  up)
    apt_install clickhouse-server clickhouse-client
    # ZooKeeper down under nodes that are running: they hold sessions of its last run.
    zookeeper_was_down=0
    if ! zookeeper_up; then
      for n in 1 2 3 4; do if node_up "$n"; then zookeeper_was_down=1; fi; done
    fi
    start_zookeeper
    restart_nodes_without_ddl_worker
    for n in 1 2 3 4; do start_node "$n"; done
    for n in 1 2 3 4; do await_node "$n"; done
    if ((zookeeper_was_down)); then settle_zookeeper_sessions; fi
    log "ClickHouse cluster 'linktrace' is up: http://127.0.0.1:$HTTP_BASE … :$((HTTP_BASE + 3))"
    ;;
  down)
    stop_cluster
    ;;
  reset)
    [[ -n "${CLICKHOUSE_CLUSTER_STATE:-}" ]] || { echo "reset is for a cluster of its own (CLICKHOUSE_CLUSTER_STATE)" >&2; exit 2; }
    stop_cluster
    rm -rf "$CLUSTER_STATE"
    ;;
  stop-zookeeper)
    stop_cluster_pid zookeeper "$(zookeeper_mark)"
    ;;
  kill)
    pid="$(our_pid "clickhouse-$2" "$(node_mark "$2")")" || { echo "node $2 is not running" >&2; exit 1; }
    kill -9 "$pid"
    rm -f "$CLUSTER_RUN/clickhouse-$2.pid"
    ;;
  *) echo "usage: $0 [up|down|reset|kill N|stop-zookeeper]" >&2; exit 2 ;;
esac
