"""The churn demo's `sample_data` hook: `scoring generate-demo-data [--customers N ...]`.

The engine calls `generate(raw_root, args, run_date)` with the command's arguments it does
not know itself; they are parsed here, so the demo's knobs stay in the demo.
"""

from __future__ import annotations

import argparse
import datetime
from collections.abc import Sequence
from pathlib import Path

from scoring.usecase import ConfigError

from . import INVALID_KINDS, OUTCOME_SOURCE, generate_demo_data

DEFAULT_START = datetime.date(2026, 3, 1)


class _Parser(argparse.ArgumentParser):
    """argparse that raises ConfigError (the CLI's exit 2) instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"generate-demo-data: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scoring generate-demo-data", add_help=False)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=5, help="delivery days")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", type=datetime.date.fromisoformat, default=None)
    parser.add_argument("--history-days", type=int, default=120)
    parser.add_argument("--drift-day", type=int, default=None)
    return parser


def generate(raw_root: Path, args: Sequence[str], run_date: datetime.date | None) -> str:
    """Write the demo's drops under `raw_root`; return a summary (one line per source).

    The first delivery day is `--start`, else the command's `--run-date`, else 2026-03-01.
    """
    options = _parser().parse_args(list(args))
    summary = generate_demo_data(
        raw_root,
        customers=options.customers,
        days=options.days,
        seed=options.seed,
        start=options.start or run_date or DEFAULT_START,
        history_days=options.history_days,
        drift_day=options.drift_day,
    )
    lines = [
        f"{source}: {summary.total(source)} lines in {options.days} daily drops, "
        f"{sum(summary.total(source, k) for k in INVALID_KINDS)} of them invalid"
        for source in ("customers", "transactions")
    ]
    if summary.arrival is not None:
        invalid = sum(c.invalid for c in summary.deliveries if c.source == OUTCOME_SOURCE)
        lines.append(
            f"{OUTCOME_SOURCE}: {summary.total(OUTCOME_SOURCE)} lines ({invalid} invalid) "
            f"arriving on {summary.arrival.isoformat()} (ingest that date to deliver them)"
        )
    return "\n".join(lines)
