#!/usr/bin/env python3
"""Turns bench/run.sh's raw results into BENCHMARKS.md."""
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone

results_path, out_path, seconds, connections, batch = sys.argv[1:6]
wrk, other = {}, {}
for line in open(results_path):
    name, _, rest = line.strip().partition(" ")
    if rest.startswith("{"):
        wrk[name] = json.loads(rest)
    else:
        other[name] = rest.split()


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def mem_gib():
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal"):
            return int(line.split()[1]) / 1024 / 1024
    return 0


repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
commit = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
bare = wrk["bare"]


def row(label, r, note=""):
    ratio = r["rps"] / bare["rps"] if bare["rps"] else 0
    errors = f'{r["errors"]}' if r["errors"] else "0"
    return f'| {label} | {r["rps"]:,.0f} | {r["p50_ms"]:.2f} | {r["p99_ms"]:.2f} | {ratio:.2f} | {errors} | {note} |'


batch_events = int(other["batch_events"][0])
batch_rps = batch_events / wrk["batch"]["seconds"]
start_count, end_count, start_t, end_t, accepted = other["drain"]
drained = int(end_count) - int(start_count)
drain_s = float(end_t) - float(start_t)
drain_rate = drained / drain_s if drain_s > 0 else 0
e2e = wrk["e2e"]
mem = {n: int(other[f"memory_{n}"][0]) / 1024 for n in ("ingest", "consumer", "api")}

lines = [
    "# Benchmarks",
    "",
    "Produced by `bench/run.sh` — rerun it to refresh this file. Every figure below comes",
    "from that one run; nothing is copied from elsewhere.",
    "",
    f"- **When**: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
    f"- **Commit**: `{commit}`{' (with uncommitted changes)' if dirty else ''}",
    f"- **Machine**: {os.cpu_count()} cores ({cpu_model()}), {mem_gib():.0f} GiB; load generator, broker, ClickHouse,",
    "  Postgres and the services all share these cores over loopback.",
    f"- **Command**: `bench/run.sh` (wrk, 2 threads, {connections} connections, {seconds} s per measurement;",
    "  release build; tansu with durable sqlite storage; ClickHouse 18.16).",
    "",
    "## Ingest (`POST /api/v1/events`, straight to the ingest service)",
    "",
    "| path | requests/s | p50 ms | p99 ms | ratio to bare | errors | what it does per request |",
    "|---|---:|---:|---:|---:|---:|---|",
    row("bare axum baseline", bare, "parse the same JSON, answer 202"),
    row("ingest, plain", wrk["ingest"], "cached auth + link, quota lease, produce with acks=all, 202"),
    row("ingest, dedup path", wrk["ingest_dedup"], "as above + Postgres claim and mark (fresh `entityId` each)"),
    "",
    "## Other paths",
    "",
    "| measurement | result |",
    "|---|---|",
    f"| batch endpoint (`/events/batch`, {batch} events a request, 8 connections) | **{batch_rps:,.0f} events/s** ({wrk['batch']['rps']:,.1f} requests/s, p99 {wrk['batch']['p99_ms']:.1f} ms) |",
    f"| redirect `GET /l/{{code}}` (click produced and acknowledged before the 302) | **{wrk['redirect']['rps']:,.0f} clicks/s** (p50 {wrk['redirect']['p50_ms']:.2f} ms, p99 {wrk['redirect']['p99_ms']:.2f} ms) |",
    f"| consumer drain into ClickHouse (backlog left by the load above) | **{drain_rate:,.0f} events/s** ({drained:,} events in {drain_s:.1f} s; {end_count} of {accepted} accepted stored) |",
    f"| end-to-end delay, 202 at the gateway → visible in ClickHouse (200 events/s probe + 4-connection background load) | **p50 {e2e['p50_ms']:.0f} ms, p99 {e2e['p99_ms']:.0f} ms**, max {e2e['max_ms']:.0f} ms ({e2e['seen']} of {e2e['sent']} seen) |",
    f"| peak memory (VmHWM) | ingest {mem['ingest']:.0f} MiB, consumer {mem['consumer']:.0f} MiB, api {mem['api']:.0f} MiB |",
    "",
    "## Reading these numbers",
    "",
    "- The ratio compares ingest with a handler that does no work; both are driven by the same wrk",
    "  on the same two cores, which wrk, tansu, Postgres and ClickHouse also use.",
    "- The end-to-end delay includes the consumer's batch window (`CONSUMER_BATCH_MAX_WAIT_MS`,",
    "  250 ms) and the probe's 25 ms polling of ClickHouse.",
    "- The drain rate is bounded by how fast tansu (sqlite storage) serves fetches; see the",
    "  README's notes on the broker.",
]
open(out_path, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
