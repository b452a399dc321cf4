"""Replaces (or appends) one marked section of BENCHMARKS.md: the part between
`<!-- NAME:start -->` and `<!-- NAME:end -->`. bench/report/run.py keeps these sections when it
rewrites the rest of the file. Also reads the raw results the scripts write."""


import json


def read_results(path):
    """A benchmark script's raw results: one `NAME PAYLOAD` line per measurement, the payload
    JSON where it is JSON (else its text), by name."""
    rows = {}
    for line in open(path):
        name, _, payload = line.strip().partition(" ")
        if not name:
            continue
        try:
            rows[name] = json.loads(payload)
        except ValueError:
            rows[name] = payload
    return rows


def replace_section(path, name, body_lines):
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = "\n".join([start, *body_lines, end])
    try:
        text = open(path).read()
    except FileNotFoundError:
        text = "# Benchmarks\n"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    open(path, "w").write(text)
