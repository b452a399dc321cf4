"""bench/profile.sh's report (bench/profile.txt) → the "profile" section of BENCHMARKS.md.

Usage: bench/report profile PROFILE.txt BENCHMARKS.md"""
import sys
from .sections import replace_section
parts = open(sys.argv[1]).read().split("\n## ")
summary, groups = parts[0].strip().splitlines(), parts[1].strip().splitlines()
replace_section(sys.argv[2], "profile", [
    "## Instructions per request (`bench/profile.sh`, valgrind callgrind)",
    "",
    "A count, not a time: it repeats run to run on this noisy machine. Ingest's heaviest",
    "functions are in `bench/profile.txt`.",
    "",
    *[f"- {line.lstrip('# ')}" for line in summary],
    "",
    f"Where the difference is ({groups[0].split(': ', 1)[1]}):",
    *groups[1:],
])
