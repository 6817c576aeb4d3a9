"""The `scoring` command line: `scoring <command> --env ENV --run-date D [--set k=v ...]`.

The configuration is loaded and validated once here, at the boundary; each command (see
`scoring.commands`) then calls the library with plain typed values. An expected failure
(bad config, bad input, a missing model) prints one line naming what is wrong and exits
non-zero: 2 for a configuration error, 1 for a failed step.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from scoring.commands import COMMANDS, Command, Invocation, iso_date
from scoring.config import load_config
from scoring.errors import ConfigError, ScoringError
from scoring.logs import configure_logging, new_run_id

__all__ = ["COMMANDS", "build_parser", "main"]

log = logging.getLogger("scoring")


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    """The argument parser: common options on every command, then the command's own."""
    parser = argparse.ArgumentParser(prog="scoring", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands:
        child = sub.add_parser(command.name, help=command.help, description=command.help)
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
    try:
        return command.handler(Invocation(args.command, config, run_id, args.run_date, args))
    except ScoringError as exc:
        log.error("%s failed: %s", args.command, exc)
        print(f"scoring {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
