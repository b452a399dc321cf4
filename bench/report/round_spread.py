#!/usr/bin/env python3
"""How often would one bench/run.sh miss issue 16's 0.9 goal by chance, with N rounds?

Each argument is one bench/run.sh run: a git revision whose BENCHMARKS.md that run wrote
(its per-round ratios line), or a file (such a BENCHMARKS.md, or the run's raw results,
`.linktrace/bench/results.<id>`). Pools each paired row's per-round ratios (ingest / limit,
within a round) over the runs and resamples them: the share of run medians of N rounds,
drawn from the pool, that fall below 0.9. Rounds are drawn as if independent; what differs
from run to run (the machine's speed that hour) is in the pool, not modelled apart.
Prints a Markdown table; `--write` also puts it in the round-spread section of BENCHMARKS.md.
Usage: bench/report round-spread [--write] RUN...
"""
import json
import os
import random
import subprocess
import sys
from datetime import datetime, timezone
from statistics import median

from . import REPO
from .goals import GOALS
from .sections import replace_section

GOAL = GOALS["ingest"]["speed_vs_limit"]
DRAWS = 20_000
ROWS = [("durable", "", 32), ("durable", "", 256), ("in-memory", "_memory", 32),
        ("in-memory", "_memory", 256)]
ROUNDS_LINE = "Each round's ingest / limit, in order: "


def read_run(run):
    """A run's text: the file `run`, or BENCHMARKS.md as of git revision `run`."""
    if os.path.isfile(run):
        return open(run).read()
    return subprocess.run(["git", "-C", REPO, "show", f"{run}:BENCHMARKS.md"],
                          capture_output=True, text=True, check=True).stdout


def ratios_written(text, broker, conns):
    """A row's per-round ratios as BENCHMARKS.md prints them (two decimals)."""
    line = next(l for l in text.splitlines() if l.startswith(ROUNDS_LINE))
    label = f"{'in-memory' if broker else 'durable'} {conns}: "
    part = next(p for p in line[len(ROUNDS_LINE):].rstrip(".").split("; ") if p.startswith(label))
    return [float(x) for x in part[len(label):].split(", ")]


def ratios_raw(text, broker, conns):
    """A row's per-round ratios from a run's raw results."""
    wrk = {}
    for line in text.splitlines():
        name, _, rest = line.strip().partition(" ")
        if rest.startswith("{"):
            wrk[name] = json.loads(rest)
    found, n = [], 1
    while f"ingest{broker}_c{conns}_r{n}" in wrk and f"limit{broker}_c{conns}_r{n}" in wrk:
        ingest, limit = wrk[f"ingest{broker}_c{conns}_r{n}"], wrk[f"limit{broker}_c{conns}_r{n}"]
        if limit["rps"]:
            found.append(ingest["rps"] / limit["rps"])
        n += 1
    return found


def ratios(text, broker, conns):
    if text.startswith("# Benchmarks"):
        return ratios_written(text, broker, conns)
    return ratios_raw(text, broker, conns)


def miss_rate(pool, rounds, rng):
    """The share of medians of `rounds` draws from `pool` below GOAL."""
    return sum(median(rng.choices(pool, k=rounds)) < GOAL for _ in range(DRAWS)) / DRAWS


def observed(each):
    """How many of the runs had a median below GOAL, by how many rounds they ran."""
    by_rounds = {}
    for run in each:
        if run:
            runs, below = by_rounds.get(len(run), (0, 0))
            by_rounds[len(run)] = (runs + 1, below + (median(run) < GOAL))
    return ", ".join(f"{below} of {runs} with {n}" for n, (runs, below) in sorted(by_rounds.items()))


def table(runs):
    texts = [read_run(run) for run in runs]
    rng = random.Random(16)
    lines = [
        "| row | rounds pooled | pooled median | each run's median, in order | resampled: a run of 10 rounds below 0.9 | of 20 rounds | observed: runs below 0.9, by their rounds |",
        "|---|---:|---:|---|---:|---:|---|",
    ]
    for label, broker, conns in ROWS:
        each = [ratios(text, broker, conns) for text in texts]
        pool = [r for run in each for r in run]
        medians = ", ".join(f"{median(run):.3f}" for run in each if run)
        lines.append(f"| {label} {conns} | {len(pool)} | {median(pool):.3f} | {medians} "
                     f"| {miss_rate(pool, 10, rng):.1%} | {miss_rate(pool, 20, rng):.1%} "
                     f"| {observed(each)} |")
    return lines


def main(args):
    write = args[:1] == ["--write"]
    runs = args[1:] if write else args
    if not runs:
        sys.exit(__doc__)
    lines = table(runs)
    print("\n".join(lines))
    if write:
        when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        replace_section(os.path.join(REPO, "BENCHMARKS.md"), "round-spread", [
            "## How often one run misses a 0.9 goal by chance (`bench/report round-spread`)",
            "",
            f"`bench/report round-spread --write {' '.join(runs)}` — {when}: the per-round ingest / limit",
            f"ratios of {len(runs)} `bench/run.sh` runs (each argument a commit holding the",
            "BENCHMARKS.md that run wrote), pooled per row and resampled 20,000 times: the share of",
            "runs of 10 or 20 rounds whose median falls below 0.9. Rounds are drawn as if",
            "independent; the machine's speed from one hour to the next is in the pool, not",
            "modelled apart, so where it matters the real rate is higher: the last column, what the",
            "runs themselves did, is the check on it.",
            "",
            *lines,
        ])


if __name__ == "__main__":
    main(sys.argv[1:])
