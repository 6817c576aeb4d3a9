"""The `scoring` command line: `scoring <command> --usecase DIR --env ENV --run-date D [--set k=v ...]`.

The use case and the configuration are loaded and validated once here, at the boundary
(the use case's `monitor`, `quality`, `retrain`, `promotion` and `scoring` sections are merged
over the environment's, before `--set`), and
checked with what the command needs of MLflow before any session or table exists
(`scoring.cli.preflight`); each command (see `scoring.cli.commands`) then calls the library
with plain typed values. An
expected failure (bad config or use case, bad input, a missing model) prints one line
naming what is wrong and exits non-zero: 2 for a configuration or use case error, 1 for a
failed step.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from scoring.cli.commands import COMMANDS, Command, Invocation, iso_date
from scoring.cli.preflight import check_config
from scoring.core.config import load_config
from scoring.core.errors import ConfigError, ScoringError
from scoring.core.logs import configure_logging, new_run_id
from scoring.model.registry import apply_request_settings
from scoring.usecase import USECASE_ENV, default_usecase_dir, load_usecase

__all__ = ["COMMANDS", "build_parser", "main", "run"]

EXIT_CONFIG = 2
EXIT_FAILED = 1


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    """The argument parser: common options on every command, then the command's own."""
    parser = argparse.ArgumentParser(prog="scoring", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands:
        child = sub.add_parser(command.name, help=command.help, description=command.help)
        child.add_argument(
            "--usecase",
            type=Path,
            default=None,
            metavar="DIR",
            help=f"the use case folder (default: ${USECASE_ENV}, else the checkout's example)",
        )
        child.add_argument("--env", default="local", help="conf/<env>.yaml (default: local)")
        child.add_argument(
            "--run-date",
            type=iso_date,
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


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the `scoring` console script, `jobs/*.py` and Databricks' wheel tasks.

    Raises `SystemExit` with the exit code, also 0: a runner that calls this function instead
    of running a process (`python_wheel_task`) sees a failed step as a failed task.
    """
    raise SystemExit(run(argv))


def run(argv: Sequence[str] | None = None) -> int:
    """The command line `argv` (default `sys.argv[1:]`) run; its exit code (for tests)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    command = next(c for c in COMMANDS if c.name == args.command)
    if extra and not command.passes_extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    try:
        usecase = load_usecase(args.usecase or default_usecase_dir())
        sections = {
            "monitor": dict(usecase.monitor),
            "quality": dict(usecase.quality),
            "retrain": dict(usecase.retrain),
            "promotion": dict(usecase.promotion),
            "scoring": dict(usecase.scoring),
        }
        layers = [(str(usecase.path), {k: v for k, v in sections.items() if v})]
        config = load_config(args.env, args.overrides, args.conf_dir, layers=layers)
        check_config(config, usecase)  # before any session, table or MLflow store exists
    except ConfigError as exc:
        print(f"scoring: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    apply_request_settings(config.mlflow.request_timeout_seconds, config.mlflow.request_max_retries)
    run_id = new_run_id(args.command)
    configure_logging(config.logging.level, config.logging.json, run_id)
    invocation = Invocation(args.command, config, usecase, run_id, args.run_date, args)
    try:
        if command.start_check is not None:
            command.start_check(invocation)
        return command.handler(invocation)
    except ConfigError as exc:
        print(f"scoring {args.command}: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ScoringError as exc:
        print(f"scoring {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
