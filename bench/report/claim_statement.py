"""bench/claim-statement.sh's raw results → the "claim-statement" section of BENCHMARKS.md.

Usage: bench/report claim-statement RESULTS BENCHMARKS.md ROWS SECONDS ROUNDS CODE CLAIMS_AT_THE_END"""
import statistics
import sys
import time
from .sections import read_results, replace_section

results, out, rows, seconds, rounds, code, total = sys.argv[1:8]
found = {name: float(ms) for name, ms in read_results(results).items()}
def series(mode):
    return [found[f"{mode}_r{r}"] for r in range(1, int(rounds) + 1)]
unprepared, prepared = series("unprepared"), series("prepared")
lines = [
    "## The entity claim statement (`bench/claim-statement.sh`)",
    "",
    f"`bench/claim-statement.sh` — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, code `{code}`: "
    f"ingest's claim statement, {rows} fresh tuples a run, one pgbench client on the local "
    f"Postgres, {seconds} s a mode, {rounds} alternating rounds (medians; ms a run).",
    "",
    "| how it is sent | ms a run (median) | rounds |",
    "|---|---:|---|",
    f"| unprepared, parsed and planned every run (until `6886f46`) | {statistics.median(unprepared):.3f} | {', '.join(f'{v:.2f}' for v in unprepared)} |",
    f"| prepared, planned for its parameters every run (now) | {statistics.median(prepared):.3f} | {', '.join(f'{v:.2f}' for v in prepared)} |",
    "",
    f"Prepared / unprepared: **{statistics.median(p / u for p, u in zip(prepared, unprepared)):.2f}×** "
    f"(median of the rounds' ratios); the table held {int(total):,} claims at the end. sqlx's "
    "unprepared path also waited for a Describe before binding, a round trip pgbench's does not take.",
]
replace_section(out, "claim-statement", lines)
print("\n".join(lines))
