#!/usr/bin/env bash
# Single node against the cluster on this machine, in one run: bench/consumer-latency.sh with
# two settings, interleaved — the stack on this machine's ClickHouse server, and the same stack
# in cluster mode on a cluster of the bench's own (ZooKeeper and four 18.16 servers, 2 shards x
# 2 replicas, deploy/clickhouse-cluster.sh on ports 24123-24126 (below the ephemeral range, 32768 and up, whose ports a client connection may hold), started afresh and stopped
# after). Measures events/s accepted under the batch endpoint's peak, the 202 → visible
# delay, the consumer's per-batch timings, and the servers' INSERT queries and ZooKeeper
# transactions (system.events, summed over the nodes). Writes the "cluster" section of
# BENCHMARKS.md. Knobs: those of consumer-latency.sh (LATENCY_LOAD_SECONDS, LATENCY_ROUNDS).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CLICKHOUSE_CLUSTER_HTTP_BASE=24123 CLICKHOUSE_CLUSTER_TCP_BASE=25000 \
  CLICKHOUSE_CLUSTER_INTERSERVER_BASE=25009 ZOOKEEPER_PORT=24181 \
  CLICKHOUSE_CLUSTER_STATE="$REPO/.linktrace/bench-cluster"
"$REPO/deploy/clickhouse-cluster.sh" reset
trap '"$REPO/deploy/clickhouse-cluster.sh" down' EXIT
"$REPO/deploy/clickhouse-cluster.sh" up
nodes="http://127.0.0.1:24123 http://127.0.0.1:24124 http://127.0.0.1:24125 http://127.0.0.1:24126"
export LATENCY_SECTION=cluster
export LATENCY_SETTINGS="single_node CLICKHOUSE_CLUSTER=
cluster CLICKHOUSE_URL=http://127.0.0.1:24123 CLICKHOUSE_CLUSTER=linktrace CLICKHOUSE_SHARDS=http://127.0.0.1:24123,http://127.0.0.1:24124;http://127.0.0.1:24125,http://127.0.0.1:24126 CLICKHOUSE_SERVERS=${nodes// /%20}"
"$REPO/bench/consumer-latency.sh"
