"""The `scoring` command line: `scoring <command> --env ENV --run-date D [--set k=v ...]`.

The configuration is loaded and validated once here, at the boundary; each command then
calls the library with plain typed values. An expected failure (bad config, bad input, a
missing model) prints one line naming what is wrong and exits non-zero.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from scoring.config import Config, load_config
from scoring.errors import ConfigError, ScoringError
from scoring.logs import configure_logging, new_run_id

log = logging.getLogger("scoring")


@dataclass(frozen=True)
class Invocation:
    """What a command handler gets: the parsed arguments, the config and the run's identity."""

    command: str
    config: Config
    run_id: str
    run_date: date | None
    args: argparse.Namespace


@dataclass(frozen=True)
class Command:
    """A CLI command: its name, help, extra arguments and handler (returns the exit code)."""

    name: str
    help: str
    handler: Callable[[Invocation], int]
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    needs_run_date: bool = False


def _doctor(inv: Invocation) -> int:
    from scoring.doctor import run_doctor

    return run_doctor(inv.config)


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customers", type=_positive_int, default=2000)
    parser.add_argument("--days", type=_positive_int, default=5, help="delivery days")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--start", type=_iso_date, default=None, help="first delivery day (default: --run-date)"
    )
    parser.add_argument("--history-days", type=_positive_int, default=120)
    parser.add_argument(
        "--drift-day", type=int, default=None, help="delivery day index from which data drifts"
    )


def _generate_demo_data(inv: Invocation) -> int:
    from scoring.demo import generate_demo_data

    args = inv.args
    start = args.start or inv.run_date or date(2026, 3, 1)
    summary = generate_demo_data(
        Path(inv.config.raw_root),
        customers=args.customers,
        days=args.days,
        seed=args.seed,
        start=start,
        history_days=args.history_days,
        drift_day=args.drift_day,
    )
    log.info("demo data written under %s: %s", inv.config.raw_root, summary)
    print(f"demo data written under {inv.config.raw_root}")
    return 0


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--alias", choices=("champion", "challenger"), default="champion", help="alias to set"
    )


def _train(inv: Invocation) -> int:
    from scoring.registry import mlflow_target
    from scoring.session import session_for
    from scoring.train import TrainSettings, run_train

    config, run_date = inv.config, _required_date(inv)
    settings = TrainSettings(
        inv.args.alias, config.training.baseline_max_rows, config.training.seed
    )
    result = run_train(
        session_for(config),
        config.table("features"),
        mlflow_target(config),
        run_date,
        inv.run_id,
        settings,
    )
    print(f"trained {result.details['model_uri']} as @{inv.args.alias} on {result.rows_in} rows")
    return 0


def _score_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        metavar="URI",
        help="models:/NAME@ALIAS or models:/NAME/VERSION (default: the configured model at "
        "scoring.default_alias)",
    )


def _score(inv: Invocation) -> int:
    from scoring.registry import default_model_uri, mlflow_target
    from scoring.score import ScoreTables, run_score
    from scoring.session import session_for

    config, run_date = inv.config, _required_date(inv)
    model_uri = inv.args.model or default_model_uri(
        config.mlflow.model_name, config.scoring.default_alias
    )
    tables = ScoreTables(
        config.table("features"), config.table("scores"), config.table("scores_current")
    )
    result = run_score(
        session_for(config),
        tables,
        mlflow_target(config),
        model_uri,
        run_date,
        inv.run_id,
        config.scoring.batch_size,
    )
    print(
        f"scored {result.rows_out} rows of {run_date} with {result.details['model_uri']} into "
        f"{tables.scores} (version {result.table_versions['scores']})"
    )
    return 0


COMMANDS: tuple[Command, ...] = (
    Command("doctor", "check versions, Spark + Delta round trip and MLflow", _doctor),
    Command(
        "generate-demo-data",
        "write raw client drops (CSV / JSON lines) with realistic dirt",
        _generate_demo_data,
        _demo_arguments,
    ),
    Command(
        "train",
        "train the demo churn model on a features date and register it in MLflow",
        _train,
        _train_arguments,
        needs_run_date=True,
    ),
    Command(
        "score",
        "score a features date with a registered model into scores and scores_current",
        _score,
        _score_arguments,
        needs_run_date=True,
    ),
)


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    """The argument parser: common options on every command, then the command's own."""
    parser = argparse.ArgumentParser(prog="scoring", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands:
        child = sub.add_parser(command.name, help=command.help, description=command.help)
        child.add_argument("--env", default="local", help="conf/<env>.yaml (default: local)")
        child.add_argument(
            "--run-date",
            type=_iso_date,
            required=command.needs_run_date,
            help="the business date YYYY-MM-DD",
        )
        child.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a config key, e.g. --set spark.shuffle_partitions=8",
        )
        child.add_argument(
            "--conf-dir", default=None, help="folder with base.yaml (default: packaged conf/)"
        )
        command.add_arguments(child)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `scoring` console script and of `jobs/*.py`."""
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.env, args.overrides, args.conf_dir)
    except ConfigError as exc:
        print(f"scoring: config error: {exc}", file=sys.stderr)
        return 2
    run_id = new_run_id(args.command)
    configure_logging(config.logging.level, config.logging.json, run_id)
    command = next(c for c in COMMANDS if c.name == args.command)
    invocation = Invocation(args.command, config, run_id, args.run_date, args)
    try:
        return command.handler(invocation)
    except ScoringError as exc:
        log.error("%s failed: %s", args.command, exc)
        print(f"scoring {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _required_date(inv: Invocation) -> date:
    """The run date of a command declared with needs_run_date (argparse enforced it)."""
    if inv.run_date is None:
        raise ConfigError(f"{inv.command}: --run-date is required")
    return inv.run_date


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date YYYY-MM-DD") from exc


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value
