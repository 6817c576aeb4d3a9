"""The command line: `scoring <command> ...` (also `python -m scoring` and `jobs/*.py`)."""

from __future__ import annotations

from scoring.cli.main import main, run

__all__ = ["main", "run"]
