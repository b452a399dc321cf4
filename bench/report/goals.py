"""The benchmark goals (bench/goals.toml), for the reports."""

import tomllib
from pathlib import Path

GOALS = tomllib.loads((Path(__file__).resolve().parent.parent / "goals.toml").read_text())
