#!/usr/bin/env python3
"""The report of bench/load-profile.sh: requests/s and CPU µs per request of ingest and the
limit handler (medians over the rounds), and the CPU of round 1 split by what the code is
doing (perf cpu-clock samples, grouped by bench/report/code_groups.py) in µs per request.
Usage: bench/report load-profile RESULTS PERF_LIMIT PERF_INGEST CONNECTIONS SECONDS ROUNDS CODE
OUT BENCHMARKS_MD STORAGE [PADDED_BYTES] (PADDED_BYTES > 0: a row for the limit handler
with its values padded to that size, run in every round beside the other two)."""
import datetime
import os
import re
import statistics
import subprocess
import sys

from .code_groups import group_of
from .sections import read_results, replace_section

(results_path, perf_limit, perf_ingest, connections, seconds, rounds, code, out_path,
 benchmarks, storage) = sys.argv[1:11]
padded_bytes = int(sys.argv[11]) if len(sys.argv) > 11 else 0
broker_name = {"memory": "in-memory tansu", "sqlite": "durable tansu (sqlite)"}[storage]
rows = read_results(results_path)
tick = os.sysconf("SC_CLK_TCK")


def figures(name):
    runs = [(rows[f"{name}_r{r}"], int(rows[f"ticks_{name}_r{r}"])) for r in range(1, int(rounds) + 1)]
    switches = [int(rows[f"switches_{name}_r{r}"]) / max(rows[f"{name}_r{r}"]["requests"], 1)
                for r in range(1, int(rounds) + 1)]
    broker = [int(rows[f"broker_ticks_{name}_r{r}"]) / tick * 1e6 / max(rows[f"{name}_r{r}"]["requests"], 1)
              for r in range(1, int(rounds) + 1)]
    return {
        "broker_us": statistics.median(broker),
        "switches": statistics.median(switches),
        "rps": statistics.median(r["rps"] for r, _ in runs),
        "cpu_us": statistics.median(t / tick * 1e6 / max(r["requests"], 1) for r, t in runs),
        "p99_ms": statistics.median(r["p99_ms"] for r, _ in runs),
        "errors": sum(r["errors"] for r, _ in runs),
        "round1_cpu_us": runs[0][1] / tick * 1e6 / max(runs[0][0]["requests"], 1),
    }


def groups(perf_data):
    """Share of the samples by group."""
    out = subprocess.run(
        ["perf", "report", "-i", perf_data, "--no-children", "-g", "none", "--sort", "dso,symbol",
         "--stdio"],
        capture_output=True, text=True, check=True,
    ).stdout
    shares = {}
    for line in out.splitlines():
        match = re.match(r"^\s*([0-9.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)$", line)
        if match:
            dso, symbol = match.group(2), match.group(3)
            # The service's own binary says nothing about the code; the kernel and libc do.
            own = dso.startswith(("linktrace-", "bare-produce"))
            group = group_of(symbol if own else f"{dso} {symbol}")
            shares[group] = shares.get(group, 0.0) + float(match.group(1)) / 100
    return shares


ingest, limit = figures("ingest"), figures("limit")
padded = figures("padded") if padded_bytes else None
ingest_groups, limit_groups = groups(perf_ingest), groups(perf_limit)
when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
lines = [
    f"`{'' if storage == 'memory' else f'LOAD_STORAGE={storage} '}{f'LOAD_PADDED_LIMIT_BYTES={padded_bytes} ' if padded_bytes else ''}LOAD_CONNECTIONS={connections} bench/load-profile.sh` — {when}, code `{code}`: release ingest and `bare-produce` on one "
    f"{broker_name}, wrk with {connections} connections, {seconds} s a run, {rounds} interleaved "
    f"rounds (medians); CPU is each service's own utime+stime per request, and the broker's.",
    "",
    "| service | requests/s | p99 ms | CPU µs/request | broker CPU µs/request | context switches/request | errors |",
    "|---|---:|---:|---:|---:|---:|---:|",
    f"| ingest | {ingest['rps']:,.0f} | {ingest['p99_ms']:.1f} | {ingest['cpu_us']:.1f} | {ingest['broker_us']:.1f} | {ingest['switches']:.2f} | {ingest['errors']} |",
    f"| limit (`bare-produce`) | {limit['rps']:,.0f} | {limit['p99_ms']:.1f} | {limit['cpu_us']:.1f} | {limit['broker_us']:.1f} | {limit['switches']:.2f} | {limit['errors']} |",
    *([f"| limit, values padded to {padded_bytes} bytes | {padded['rps']:,.0f} | {padded['p99_ms']:.1f} | {padded['cpu_us']:.1f} | {padded['broker_us']:.1f} | {padded['switches']:.2f} | {padded['errors']} |",
       f"| padded limit / limit | {padded['rps'] / limit['rps']:.2f} | | {padded['cpu_us'] / limit['cpu_us']:.2f} | {padded['broker_us'] / max(limit['broker_us'], 1e-9):.2f} | | |",
       f"| **ingest / padded limit** | **{ingest['rps'] / padded['rps']:.2f}** | | **{ingest['cpu_us'] / padded['cpu_us']:.2f}** | {ingest['broker_us'] / max(padded['broker_us'], 1e-9):.2f} | | |"]
      if padded else []),
    f"| **ingest / limit** | **{ingest['rps'] / limit['rps']:.2f}** | | **{ingest['cpu_us'] / limit['cpu_us']:.2f}** | {ingest['broker_us'] / max(limit['broker_us'], 1e-9):.2f} | {ingest['switches'] / max(limit['switches'], 1e-9):.2f} | |",
    "",
    "Round 1's CPU per request split by what the code is doing (perf cpu-clock samples, "
    "`bench/report/code_groups.py`), heaviest difference first:",
    "",
    "| what | ingest µs/request | limit µs/request | difference |",
    "|---|---:|---:|---:|",
]
table = sorted(
    ((g, ingest_groups.get(g, 0) * ingest["round1_cpu_us"], limit_groups.get(g, 0) * limit["round1_cpu_us"])
     for g in set(ingest_groups) | set(limit_groups)),
    key=lambda row: row[2] - row[1],
)
for group, mine, theirs in table:
    lines.append(f"| {group} | {mine:.2f} | {theirs:.2f} | {mine - theirs:+.2f} |")
lines.append(f"| **total** | {sum(r[1] for r in table):.2f} | {sum(r[2] for r in table):.2f} | "
             f"{sum(r[1] - r[2] for r in table):+.2f} |")
open(out_path, "w").write("\n".join(lines) + "\n")
section = "load-profile" if storage == "memory" else f"load-profile-{storage}"
title = "## Ingest's CPU under load, by what it does" + ("" if storage == "memory" else f" ({broker_name})")
replace_section(benchmarks, section, [title, "", *lines])
