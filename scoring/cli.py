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


def _ingest(inv: Invocation) -> int:
    from scoring.ingest import SOURCES, run_ingest
    from scoring.session import session_for

    assert inv.run_date is not None  # the command declares needs_run_date
    config = inv.config
    result = run_ingest(
        session_for(config),
        raw_root=config.raw_root,
        bronze={source: config.table(f"bronze_{source}") for source in SOURCES},
        quarantine=config.table("quarantine"),
        max_quarantine_share=config.ingest.max_quarantine_share,
        run_date=inv.run_date,
        run_id=inv.run_id,
    )
    log.info("ingest %s: %s", inv.run_date, result)
    print(
        f"ingest {inv.run_date}: {result.rows_in} records read, {result.rows_out} accepted, "
        f"{result.rows_deduplicated} duplicates, {result.rows_quarantined} quarantined"
    )
    return 0


def _features(inv: Invocation) -> int:
    from scoring.features_step import run_features
    from scoring.session import session_for

    assert inv.run_date is not None  # the command declares needs_run_date
    config = inv.config
    result = run_features(
        session_for(config),
        customers=config.table("bronze_customers"),
        transactions=config.table("bronze_transactions"),
        features=config.table("features"),
        run_date=inv.run_date,
        run_id=inv.run_id,
    )
    log.info("features %s: %s", inv.run_date, result)
    print(f"features {inv.run_date}: {result.rows_out} customers, versions {result.table_versions}")
    return 0


def _monitor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fail-on-alert",
        action="store_true",
        help="exit 3 when any drift metric is at alert (after writing the metrics)",
    )
    parser.add_argument(
        "--model-version", default=None, help="default: the version that scored the date last"
    )


def _monitor(inv: Invocation) -> int:
    from functools import partial

    from scoring.baseline import download_baseline
    from scoring.monitor import run_monitor
    from scoring.prometheus import write_prometheus
    from scoring.runs import record_step
    from scoring.session import session_for

    config, run_date = inv.config, _required_date(inv)
    spark = session_for(config)
    tables = {name: config.table(name) for name in ("features", "scores", "drift_metrics")}
    baseline = partial(
        download_baseline, config.tracking_uri, config.registry_uri, config.mlflow.model_name
    )
    try:
        with record_step(spark, config.table("runs"), "monitor", run_date, inv.run_id) as rec:
            rec.result = run_monitor(
                spark,
                tables,
                config.monitor,
                config.mlflow.model_name,
                baseline,
                run_date,
                inv.run_id,
                inv.args.model_version,
            )
    finally:
        write_prometheus(
            spark, config.table("runs"), tables["drift_metrics"], config.prometheus_file
        )
    alerts = int(rec.result.details["alerts"]) if rec.result else 0
    print(f"monitor {run_date}: {alerts} drift alert(s); details in {tables['drift_metrics']}")
    if inv.args.fail_on_alert and alerts:
        log.error("monitor: %d drift alert(s) and --fail-on-alert is set", alerts)
        return 3
    return 0


def _report(inv: Invocation) -> int:
    from scoring.baseline import download_baseline
    from scoring.errors import ModelError
    from scoring.report import run_report
    from scoring.session import session_for

    config, run_date = inv.config, _required_date(inv)
    spark = session_for(config)
    names = ("drift_metrics", "scores", "runs", "quarantine")

    def baseline(version: str) -> str | None:
        try:
            return download_baseline(
                config.tracking_uri, config.registry_uri, config.mlflow.model_name, version
            )
        except ModelError as exc:  # the page says so instead of failing
            log.warning("report: no baseline: %s", exc)
            return None

    path = run_report(
        spark,
        {n: config.table(n) for n in names},
        config.mlflow.model_name,
        baseline,
        config.reports_dir,
        run_date,
    )
    print(f"report written to {path}")
    return 0


def _required_date(inv: Invocation) -> date:
    if inv.run_date is None:  # argparse enforces it for needs_run_date commands
        raise ConfigError(f"{inv.command}: --run-date is required")
    return inv.run_date


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
