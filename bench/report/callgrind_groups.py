#!/usr/bin/env python3
"""Where two callgrind profiles differ, by what the code is doing: each function's own
(exclusive) instructions are put in the first group whose pattern its name matches, and
divided by the requests each profile served. Usage:
`callgrind_groups.py INGEST_OUT BARE_OUT REQUESTS` prints a Markdown table, heaviest
difference first. Used by bench/profile.sh."""
import re
import subprocess
import sys

from .code_groups import group_of

LINE = re.compile(r"^\s*([0-9,]+)\s+(?:\([^)]*\)\s+)?(.*)$")


def own_instructions(path):
    out = subprocess.run(
        ["callgrind_annotate", "--auto=no", "--inclusive=no", "--threshold=100", path],
        capture_output=True, text=True, check=True,
    ).stdout
    groups = {}
    for line in out.splitlines():
        match = LINE.match(line)
        if not match or "PROGRAM TOTALS" in line or "file:function" in line:
            continue
        # "file:function [binary]": the binary's name says nothing about the code.
        count = int(match.group(1).replace(",", ""))
        name = re.sub(r"\s+\[[^\]]*\]$", "", match.group(2))
        group = group_of(name)
        groups[group] = groups.get(group, 0) + count
    return groups


def main():
    ingest, bare, requests = own_instructions(sys.argv[1]), own_instructions(sys.argv[2]), int(sys.argv[3])
    rows = sorted(
        ((g, ingest.get(g, 0) / requests, bare.get(g, 0) / requests) for g in set(ingest) | set(bare)),
        key=lambda row: row[2] - row[1],
    )
    print("| what (own instructions of its functions) | ingest / request | limit / request | difference |")
    print("|---|---:|---:|---:|")
    for group, mine, limit in rows:
        print(f"| {group} | {mine:,.0f} | {limit:,.0f} | {mine - limit:+,.0f} |")
    print(f"| **total** | {sum(r[1] for r in rows):,.0f} | {sum(r[2] for r in rows):,.0f} | "
          f"{sum(r[1] - r[2] for r in rows):+,.0f} |")


if __name__ == "__main__":
    main()
