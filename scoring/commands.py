"""The CLI's commands: their own arguments and handlers, over `scoring.runner`.

A handler gets an `Invocation` (validated config, run id, run date, parsed arguments),
starts what it needs and returns the process exit code. Step handlers go through the
runner, so every step is recorded in `runs` and the Prometheus textfile is rebuilt.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from scoring.config import Config
from scoring.logs import new_run_id

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from scoring.runner import StepRun

log = logging.getLogger("scoring")

# `--fail-on-alert` exit code: the metrics were written, but the data drifted.
EXIT_DRIFT_ALERT = 3


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


def iso_date(text: str) -> date:
    """argparse type: a date `YYYY-MM-DD`."""
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date YYYY-MM-DD") from exc


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


@contextmanager
def _step_run(inv: Invocation) -> Iterator[StepRun]:
    """A runner.StepRun for a single-step command; the .prom file is rebuilt afterwards."""
    from scoring import runner
    from scoring.session import session_for

    assert inv.run_date is not None  # argparse enforces --run-date for step commands
    spark = session_for(inv.config)
    try:
        yield runner.StepRun(spark, inv.config, inv.run_date)
    finally:
        runner.write_metrics_file(spark, inv.config)


def _doctor(inv: Invocation) -> int:
    from scoring.doctor import run_doctor

    return run_doctor(inv.config)


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customers", type=positive_int, default=2000)
    parser.add_argument("--days", type=positive_int, default=5, help="delivery days")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--start", type=iso_date, default=None, help="first delivery day (default: --run-date)"
    )
    parser.add_argument("--history-days", type=positive_int, default=120)
    parser.add_argument(
        "--drift-day", type=int, default=None, help="delivery day index from which data drifts"
    )


def _generate_demo_data(inv: Invocation) -> int:
    from scoring.demo import INVALID_KINDS, generate_demo_data

    args = inv.args
    summary = generate_demo_data(
        Path(inv.config.raw_root),
        customers=args.customers,
        days=args.days,
        seed=args.seed,
        start=args.start or inv.run_date or date(2026, 3, 1),
        history_days=args.history_days,
        drift_day=args.drift_day,
    )
    for source in ("customers", "transactions"):
        print(
            f"{source}: {summary.total(source)} lines in {args.days} daily drops, "
            f"{sum(summary.total(source, k) for k in INVALID_KINDS)} of them invalid"
        )
    print(f"demo data written under {inv.config.raw_root}")
    return 0


def _ingest(inv: Invocation) -> int:
    from scoring import runner

    with _step_run(inv) as run:
        result = runner.ingest(run, inv.run_id)
    print(
        f"ingest {inv.run_date}: {result.rows_in} records read, {result.rows_out} accepted, "
        f"{result.rows_deduplicated} duplicates, {result.rows_quarantined} quarantined"
    )
    return 0


def _features(inv: Invocation) -> int:
    from scoring import runner

    with _step_run(inv) as run:
        result = runner.features(run, inv.run_id)
    print(f"features {inv.run_date}: {result.rows_out} customers, versions {result.table_versions}")
    return 0


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--alias", choices=("champion", "challenger"), default="champion", help="alias to set"
    )


def _train(inv: Invocation) -> int:
    from scoring import runner

    with _step_run(inv) as run:
        result = runner.train(run, inv.args.alias, inv.run_id)
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
    from scoring import runner

    with _step_run(inv) as run:
        result = runner.score(run, inv.args.model, inv.run_id)
    print(
        f"scored {result.rows_out} rows of {inv.run_date} with {result.details['model_uri']} "
        f"into {inv.config.table('scores')} (version {result.table_versions['scores']})"
    )
    return 0


def _monitor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fail-on-alert",
        action="store_true",
        help=f"exit {EXIT_DRIFT_ALERT} when any drift metric is at alert (after writing them)",
    )
    parser.add_argument(
        "--model-version", default=None, help="default: the version that scored the date last"
    )


def _monitor(inv: Invocation) -> int:
    from scoring import runner

    with _step_run(inv) as run:
        result = runner.monitor(run, inv.args.model_version, inv.run_id)
    alerts = int(result.details["alerts"])
    print(
        f"monitor {inv.run_date}: {alerts} drift alert(s); see {inv.config.table('drift_metrics')}"
    )
    return _drift_exit(inv, alerts)


def _drift_exit(inv: Invocation, alerts: int) -> int:
    if inv.args.fail_on_alert and alerts:
        log.error("%d drift alert(s) and --fail-on-alert is set", alerts)
        return EXIT_DRIFT_ALERT
    return 0


def _report(inv: Invocation) -> int:
    from scoring import runner
    from scoring.session import session_for

    assert inv.run_date is not None
    path = runner.report(session_for(inv.config), inv.config, inv.run_date)
    print(f"report written to {path}")
    return 0


def _pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    _score_arguments(parser)
    parser.add_argument(
        "--days",
        type=positive_int,
        default=1,
        help="run this many consecutive dates from --run-date, in one session (default 1)",
    )
    parser.add_argument(
        "--fail-on-alert",
        action="store_true",
        help=f"exit {EXIT_DRIFT_ALERT} when monitoring finds a drift alert",
    )
    parser.add_argument(
        "--report", action="store_true", help="also write the HTML report of the date"
    )


def _pipeline(inv: Invocation) -> int:
    from scoring import runner
    from scoring.pipeline import PipelineOptions, run_pipeline
    from scoring.session import session_for

    assert inv.run_date is not None
    spark = session_for(inv.config)
    options = PipelineOptions(model_uri=inv.args.model)
    alerts = 0
    for offset in range(inv.args.days):
        run_date = date.fromordinal(inv.run_date.toordinal() + offset)
        run_id = inv.run_id if offset == 0 else new_run_id("pipeline")
        results = run_pipeline(spark, inv.config, run_date, run_id, options)
        for result in results:
            print(f"{result.run_date} {result.step:<9} rows in {result.rows_in}, out "
                  f"{result.rows_out}; versions {dict(result.table_versions)}")  # fmt: skip
        alerts = int(results[-1].details["alerts"])
    if inv.args.report:
        print(f"report written to {runner.report(spark, inv.config, run_date)}")
    _print_tables(spark, inv.config)
    return _drift_exit(inv, alerts)


def _print_tables(spark: SparkSession, config: Config) -> None:
    """Where each table is, its version and row count: the end of a run, for people."""
    from scoring import io
    from scoring.config import LOGICAL_TABLES

    print("\ntables:")
    for name in LOGICAL_TABLES:
        ref = config.table(name)
        if io.table_exists(spark, ref):
            version, rows = io.current_version(spark, ref), io.read_table(spark, ref).count()
            print(f"  {name:<20} v{version:<4} {rows:>10} rows  {ref}")
    print(f"  mlflow registry       {config.registry_uri}")
    print(f"  prometheus textfile   {config.prometheus_file}")


COMMANDS: tuple[Command, ...] = (
    Command("doctor", "check versions, Spark + Delta round trip and MLflow", _doctor),
    Command(
        "generate-demo-data",
        "write raw client drops (CSV / JSON lines) with realistic dirt",
        _generate_demo_data,
        _demo_arguments,
    ),
    Command(
        "ingest",
        "check the date's raw drops against their contracts; MERGE into bronze, quarantine the rest",
        _ingest,
        needs_run_date=True,
    ),
    Command(
        "features",
        "build point-in-time customer features as of --run-date from bronze",
        _features,
        needs_run_date=True,
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
    Command(
        "monitor",
        "drift of the model inputs and the score vs the baseline and the previous date",
        _monitor,
        _monitor_arguments,
        needs_run_date=True,
    ),
    Command(
        "report",
        "write the HTML monitoring report of a date (score distribution, PSI, runs)",
        _report,
        needs_run_date=True,
    ),
    Command(
        "pipeline",
        "ingest -> features -> (train when no model yet) -> score -> monitor for one date",
        _pipeline,
        _pipeline_arguments,
        needs_run_date=True,
    ),
)
