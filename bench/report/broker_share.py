"""The share of a broker's perf samples spent in its C code: reads `perf report --no-children
--sort dso,sym --stdio -g none` on stdin and prints the percentage, of all samples, in the
broker's own binary with a C symbol (not a Rust path: no `::`, not `<…>`). For tansu on sqlite
that C is sqlite's (its symbols: `sqlite3*`, the parser's `yy_*`, the planner's `where*`).
bench/first-run.sh uses it to show where the broker it builds spends its CPU."""

import re
import sys

total = c_code = 0.0
for line in sys.stdin:
    m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[.\]\s+(.*)", line)
    if not m:
        continue
    share, dso, symbol = float(m.group(1)), m.group(2), m.group(3).strip()
    total += share
    rust = "::" in symbol or symbol.startswith("<") or symbol.startswith("_ZN")
    if dso == "tansu" and not rust and not symbol.startswith("0x"):
        c_code += share
print(f"{100 * c_code / total:.0f}" if total else "0")
