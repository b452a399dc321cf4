"""The benchmark goals (bench/goals.toml), for the reports."""

import tomllib

from . import BENCH

GOALS = tomllib.loads((BENCH / "goals.toml").read_text())
