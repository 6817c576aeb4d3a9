"""The CLI's commands: their own arguments and handlers, over `scoring.runs.steps`.

A handler gets an `Invocation` (validated config, the use case, run id, run date, parsed
arguments), starts what it needs and returns the process exit code. Step handlers go
through `scoring.runs.steps`, so every step is recorded in the use case's `runs` table; then
its Prometheus metrics are rebuilt and the command's MLflow run is logged (with the drift
metrics and report it made), as a pipeline's are.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from scoring.cli import preflight
from scoring.core.config import Config
from scoring.core.logs import new_run_id
from scoring.usecase.spec import UseCase

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from scoring.runs.result import StepResult
    from scoring.runs.steps import StepRun

log = logging.getLogger("scoring")

# `--fail-on-alert` exit code: the metrics were written, but the data drifted.
EXIT_DRIFT_ALERT = 3
# A step failed (as `scoring.cli.main` exits on a ScoringError); also a pipeline whose
# retrain failed after the dates were scored.
EXIT_FAILED = 1
# `replay` exit codes: the replay differs from the run's rows; the run cannot be replayed.
EXIT_REPLAY_DIFFERS, EXIT_BAD_REPLAY = 1, 2


@dataclass(frozen=True)
class Invocation:
    """What a command handler gets: the parsed arguments, config, use case and run identity."""

    command: str
    config: Config
    usecase: UseCase
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
    passes_extra: bool = False  # unknown arguments go to the handler (the sample data's own)
    # What the command needs of MLflow, asked before a session or table exists
    # (`scoring.cli.preflight`): raises a ScoringError naming what is missing.
    start_check: Callable[[Invocation], None] | None = None


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


def _run_step(inv: Invocation, step: Callable[[StepRun], StepResult]) -> tuple[StepResult, StepRun]:
    """Run one step for a single-step command, then rebuild the metrics and log the
    command's MLflow run (named after its run id), also when the step failed."""
    from scoring.core.session import session_for
    from scoring.runs.pipeline import observe
    from scoring.runs.steps import StepRun

    assert inv.run_date is not None  # argparse enforces --run-date for step commands
    run = StepRun(session_for(inv.config), inv.config, inv.usecase, inv.run_date)
    results: list[StepResult] = []
    try:
        results.append(step(run))
    finally:
        observe(run, results, inv.run_id, failed=not results)
    return results[0], run


def _doctor(inv: Invocation) -> int:
    from scoring.cli.doctor import run_doctor

    return run_doctor(inv.config, inv.usecase)


def _generate_demo_data(inv: Invocation) -> int:
    from scoring.core.errors import UseCaseError
    from scoring.usecase.code import load_function

    sample = inv.usecase.sample_data
    if sample is None:
        raise UseCaseError(
            f"{inv.usecase.path}: sample_data: use case '{inv.usecase.name}' ships no "
            "sample data generator"
        )
    generate = load_function(inv.usecase, sample)
    raw_root = Path(inv.config.raw_root(inv.usecase.name))
    print(generate(raw_root, list(inv.args.extra), inv.run_date))
    print(f"sample data of use case {inv.usecase.name} written under {raw_root}")
    return 0


def _ingest(inv: Invocation) -> int:
    from scoring.runs import steps

    result, _ = _run_step(inv, lambda run: steps.ingest(run, inv.run_id))
    print(
        f"ingest {inv.run_date}: {result.rows_in} records read, {result.rows_out} accepted, "
        f"{result.rows_deduplicated} duplicates, {result.rows_quarantined} quarantined"
    )
    return 0


def _features(inv: Invocation) -> int:
    from scoring.runs import steps

    result, _ = _run_step(inv, lambda run: steps.features(run, inv.run_id))
    print(
        f"features {inv.run_date}: {result.rows_out} rows, versions {dict(result.table_versions)}"
    )
    return 0


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--alias", default=None, help="alias to set (default: the use case's model.alias)"
    )


def _train(inv: Invocation) -> int:
    from scoring.runs import steps

    alias = inv.args.alias or inv.usecase.model.alias
    result, _ = _run_step(inv, lambda run: steps.train(run, alias, inv.run_id))
    print(f"trained {result.details['model_uri']} as @{alias} on {result.rows_in} rows")
    return 0


def _model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        metavar="URI",
        help="models:/NAME@ALIAS or models:/NAME/VERSION (default: the use case's model at "
        "its alias)",
    )


def _score_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--model",
        default=None,
        metavar="URI",
        help="models:/NAME@ALIAS or models:/NAME/VERSION (default: the use case's model at "
        "its alias, with its model.shadow aliases)",
    )
    which.add_argument(
        "--models",
        type=model_list,
        default=None,
        metavar="A,B",
        help="score several models in one pass: the first as --model, the others as its "
        "shadows (scores only); each an alias of the use case's model or a models:/ URI",
    )
    parser.add_argument(
        "--update-current",
        action="store_true",
        default=None,
        help="also MERGE into scores_current when --model is not the use case's serving alias",
    )


def model_list(text: str) -> list[str]:
    """argparse type: `a,b` -> distinct, non-empty model names (aliases or URIs)."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items or len(set(items)) != len(items):
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of distinct models A,B")
    return items


def _score(inv: Invocation) -> int:
    from scoring.runs import steps

    args = inv.args
    result, run = _run_step(
        inv,
        lambda run: steps.score(run, args.model, inv.run_id, args.update_current, args.models),
    )
    where = run.tables["scores"]
    shadows = "".join(
        f", shadow {alias} v{version}"
        for alias, version in result.details.get("shadow_versions", {}).items()
    )
    print(
        f"scored {result.rows_out} rows of {inv.run_date} with {result.details['model_uri']}"
        f"{shadows} into {where} (version {result.table_versions['scores']})"
    )
    return 0


def _baseline(inv: Invocation) -> int:
    from scoring.runs import steps

    result, _ = _run_step(inv, lambda run: steps.baseline(run, inv.args.model, inv.run_id))
    print(
        f"baseline of {result.details['model_uri']} from {inv.run_date}: {result.rows_in} rows "
        f"at {result.details['baseline_uri']}"
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
    from scoring.runs import steps

    result, run = _run_step(inv, lambda run: steps.monitor(run, inv.args.model_version, inv.run_id))
    where = run.tables["drift_metrics"]
    alerts = int(result.details["alerts"])
    print(f"monitor {inv.run_date}: {alerts} drift alert(s); see {where}")
    return _drift_exit(inv, alerts)


def _drift_exit(inv: Invocation, alerts: int) -> int:
    if inv.args.fail_on_alert and alerts:
        log.error("%d drift alert(s) and --fail-on-alert is set", alerts)
        return EXIT_DRIFT_ALERT
    return 0


def _quality_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        metavar="URI",
        help="models:/NAME@ALIAS or models:/NAME/VERSION: only that version (default: every "
        "version that scored)",
    )
    parser.add_argument(
        "--fail-on-alert",
        action="store_true",
        help=f"exit {EXIT_DRIFT_ALERT} when any quality metric is at alert (after writing them)",
    )


def _quality(inv: Invocation) -> int:
    from scoring.runs import steps

    result, run = _run_step(inv, lambda run: steps.quality(run, inv.args.model, inv.run_id))
    details = result.details
    alerts = int(details["alerts"])
    print(
        f"quality {inv.run_date}: {result.rows_out} metric rows, {alerts} alert(s), "
        f"{result.rows_quarantined or 0} outcome(s) quarantined; see {run.tables['model_quality']}"
    )
    return _drift_exit(inv, alerts)


def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--champion",
        default=None,
        metavar="URI",
        help="models:/NAME@ALIAS or models:/NAME/VERSION (default: the use case's serving alias)",
    )
    parser.add_argument(
        "--challenger",
        default=None,
        metavar="URI",
        help="only this version (default: every other version that scored --run-date)",
    )


def _compare(inv: Invocation) -> int:
    from scoring.runs import steps

    result, run = _run_step(
        inv,
        lambda run: steps.compare(run, inv.args.champion, inv.args.challenger, inv.run_id),
    )
    details = result.details
    for version, pair in details["pairs"].items():
        shown = ", ".join(f"{k} {v:.4g}" for k, v in pair.items() if k != "realized_dates")
        print(
            f"compare {inv.run_date}: champion v{details['champion_version']} vs v{version}: "
            f"{shown}; realized on {len(pair['realized_dates'])} date(s)"
        )
    print(f"see {run.tables['model_comparison']}")
    return 0


def _promote_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", required=True, metavar="ALIAS", help="the alias to move")
    parser.add_argument(
        "--model", required=True, metavar="URI", help="models:/NAME/VERSION to promote"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="promote even when a rule fails (recorded as forced; never the default)",
    )
    parser.add_argument("--reason", default="", metavar="TEXT", help="why, for the record")
    parser.add_argument(
        "--requested-by",
        default=None,
        metavar="WHO",
        help="who asks (default: $SCORING_REQUESTED_BY, else the OS user)",
    )


def requested_by(explicit: str | None) -> str:
    """Who asks for a promotion: --requested-by, else $SCORING_REQUESTED_BY, else the OS user."""
    import getpass
    import os

    return explicit or os.environ.get("SCORING_REQUESTED_BY") or getpass.getuser()


def _promote(inv: Invocation) -> int:
    from datetime import UTC, datetime

    from scoring.core.session import session_for
    from scoring.runs import steps

    args = inv.args
    # The rules' window ends at the run date; without one, today (UTC).
    run_date = inv.run_date or datetime.now(UTC).date()
    run = steps.StepRun(session_for(inv.config), inv.config, inv.usecase, run_date)
    request = steps.promote_request(
        run, args.to, args.model, requested_by(args.requested_by), args.force, args.reason
    )
    details = steps.promote(run, request, inv.run_id).details
    print(
        f"{details['decision']}: {run.model_name} v{details['version']} is now "
        f"'{details['alias']}' (previous: {details['previous_version'] or 'none'}); recorded "
        f"on the version's tags, the model's promotion.history tag and in {run.tables['runs']}"
    )
    return 0


def _report(inv: Invocation) -> int:
    from scoring.runs import steps

    result, _ = _run_step(inv, lambda run: steps.report(run, inv.run_id))
    print(f"report written to {result.details['path']}")
    return 0


def _replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run-id", default=None, metavar="RUN", help="the succeeded score run to replay"
    )
    parser.add_argument(
        "--model",
        default=None,
        metavar="URI",
        help="with --run-date: the newest score run of that date with this model "
        "(models:/NAME/VERSION, or models:/NAME@ALIAS as the run asked for it)",
    )
    parser.add_argument(
        "--into",
        default=None,
        metavar="TABLE",
        help="the scratch table (path or catalog name; default: replay_<run id> next to scores)",
    )


def _replay(inv: Invocation) -> int:
    import sys

    from scoring.core.session import session_for
    from scoring.model.registry import mlflow_target
    from scoring.runs.steps import score_request, usecase_tables
    from scoring.score.replay import ReplayRefused, Selector, into_table, run_replay

    config, usecase, args = inv.config, inv.usecase, inv.args
    try:
        if args.run_id is None and inv.run_date is None:
            raise ReplayRefused("give --run-id RUN, or --run-date D (and optionally --model URI)")
        into = into_table(args.into, usecase.name) if args.into else None
        result = run_replay(
            session_for(config),
            usecase_tables(config, usecase),
            mlflow_target(config, usecase.name),
            score_request(config, usecase, None),
            Selector(args.run_id, inv.run_date, args.model),
            config.scoring.batch_size,
            inv.run_id,
            into,
        )
    except ReplayRefused as exc:
        print(f"scoring replay: {exc}", file=sys.stderr)
        return EXIT_BAD_REPLAY
    print(result.summary())
    return 0 if result.comparison.same else EXIT_REPLAY_DIFFERS


def _pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    _model_argument(parser)
    parser.add_argument(
        "--days",
        type=positive_int,
        default=1,
        help="run this many consecutive dates from --run-date, in one session (default 1)",
    )
    parser.add_argument(
        "--fail-on-alert",
        action="store_true",
        help=f"exit {EXIT_DRIFT_ALERT} when monitoring finds a drift or quality alert on any of "
        "the dates",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="also write each date's HTML report (and log it to the date's MLflow run)",
    )
    parser.add_argument(
        "--train-if-missing",
        action="store_true",
        help="when the registry has no model at the use case's alias, train a first one on "
        "D - train.horizon_days (without it, a missing model is an error)",
    )


def _pipeline(inv: Invocation) -> int:
    from scoring.core.errors import ScoringError
    from scoring.core.session import session_for
    from scoring.runs.pipeline import PipelineOptions, run_pipeline
    from scoring.runs.summary import retrain_failed, summary_table, verdict

    assert inv.run_date is not None
    spark = session_for(inv.config)
    options = PipelineOptions(
        model_uri=inv.args.model,
        train_alias=inv.usecase.model.alias,
        report=inv.args.report,
        train_if_missing=inv.args.train_if_missing,
    )
    done = []
    try:
        for offset in range(inv.args.days):
            run_date = date.fromordinal(inv.run_date.toordinal() + offset)
            run_id = inv.run_id if offset == 0 else new_run_id("pipeline")
            done += run_pipeline(spark, inv.config, inv.usecase, run_date, run_id, options)
    except ScoringError as exc:
        print(f"\n{summary_table(done)}\n\n{verdict(done, f'{type(exc).__name__}: {exc}')}")
        raise
    _print_tables(spark, inv.config, inv.usecase)
    print(f"\n{summary_table(done)}\n\n{verdict(done)}")
    if retrain_failed(done):  # the dates were scored, but a step failed: a scheduler must see it
        log.error("a retrain failed (the dates' scores stand); see the runs table")
        return EXIT_FAILED
    alerts = sum(int(r.details.get("alerts", 0)) for r in done if r.step in _ALERTING)
    return _drift_exit(inv, alerts)


#: The steps whose alerts `--fail-on-alert` counts.
_ALERTING = ("monitor", "quality")


def _maintain_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tables",
        type=lambda text: [t.strip() for t in text.split(",") if t.strip()],
        default=None,
        metavar="T1,T2",
        help="only these logical tables (default: every table, then raw archival)",
    )
    parser.add_argument(
        "--retain-hours",
        type=float,
        default=None,
        help="VACUUM retention for this run; below the time-travel floor or a table's "
        "configured retention it is refused (default: each table's configured retention)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="report what would be done, change nothing"
    )


def _maintain(inv: Invocation) -> int:
    from datetime import UTC, datetime

    from scoring.core.session import session_for
    from scoring.maintain.step import MaintainRequest, plan_maintenance
    from scoring.runs import steps

    # Archival counts ages from the run date; without one, from today (UTC).
    run_date = inv.run_date or datetime.now(UTC).date()
    request = MaintainRequest(inv.args.tables, inv.args.retain_hours, inv.args.dry_run)
    # A refused request stops here, before a Spark session exists.
    tables = steps.usecase_tables(inv.config, inv.usecase)
    plan_maintenance(tables, inv.config.storage.retention, request)
    run = steps.StepRun(session_for(inv.config), inv.config, inv.usecase, run_date)
    result = steps.maintain(run, request, inv.run_id)
    prefix = "maintain (dry run)" if request.dry_run else "maintain"
    for outcome in result.details["tables"]:
        print(f"{prefix}: {outcome.summary()}")
    print(f"{prefix}: {result.details['archive'].summary()}")
    return 0


def _print_tables(spark: SparkSession, config: Config, usecase: UseCase) -> None:
    """Where each table is, its version and row count: the end of a run, for people."""
    from scoring.core import io
    from scoring.runs.steps import usecase_tables

    tables = usecase_tables(config, usecase)
    print(f"\ntables of use case {usecase.name}:")
    for name in tables:
        ref = tables[name]
        if io.table_exists(spark, ref):
            version, rows = io.current_version(spark, ref), io.read_table(spark, ref).count()
            print(f"  {name:<22} v{version:<4} {rows:>10} rows  {ref}")
    print(f"  {'mlflow registry':<22} {config.registry_uri}")
    print(f"  {'prometheus textfile':<22} {config.prometheus_file(usecase.name)}")


COMMANDS: tuple[Command, ...] = (
    Command("doctor", "check versions, Spark + Delta, MLflow and the use case", _doctor),
    Command(
        "generate-demo-data",
        "write the use case's sample raw drops (arguments after the options go to its generator)",
        _generate_demo_data,
        passes_extra=True,
    ),
    Command(
        "ingest",
        "check the date's raw drops against their contracts; MERGE into bronze, quarantine the rest",
        _ingest,
        needs_run_date=True,
    ),
    Command(
        "features",
        "build the use case's point-in-time features as of --run-date from its sources",
        _features,
        needs_run_date=True,
    ),
    Command(
        "train",
        "run the use case's trainer on a features date and register the model in MLflow",
        _train,
        _train_arguments,
        needs_run_date=True,
        start_check=preflight.registry_answers,
    ),
    Command(
        "baseline",
        "record the monitoring baseline of a model version from the features of --run-date",
        _baseline,
        _model_argument,
        needs_run_date=True,
        start_check=preflight.model_resolves,
    ),
    Command(
        "score",
        "score a features date with a registered model (and its shadows, in the same pass) "
        "into scores (and scores_current)",
        _score,
        _score_arguments,
        needs_run_date=True,
        start_check=preflight.model_resolves,
    ),
    Command(
        "monitor",
        "drift of the model inputs and outputs vs the baseline and the previous date",
        _monitor,
        _monitor_arguments,
        needs_run_date=True,
        start_check=preflight.registered_model_exists,
    ),
    Command(
        "quality",
        "realized quality of scored dates whose outcomes arrived, estimated (CBPE) quality of "
        "--run-date, into model_quality",
        _quality,
        _quality_arguments,
        needs_run_date=True,
        start_check=preflight.registered_model_exists,
    ),
    Command(
        "compare",
        "champion vs challenger versions of --run-date (PSI, KS, Spearman, top-decile overlap, "
        "flips, realized quality side by side) into model_comparison",
        _compare,
        _compare_arguments,
        needs_run_date=True,
        start_check=preflight.registered_model_exists,
    ),
    Command(
        "promote",
        "move an alias to a model version when the promotion rules hold (or --force); "
        "recorded in the registry and in runs",
        _promote,
        _promote_arguments,
        start_check=preflight.registered_model_exists,
    ),
    Command(
        "report",
        "write the HTML monitoring report of a date (verdict and alerts, trends, quality, "
        "flagged distributions, calibration, quarantine, runs, every metric)",
        _report,
        needs_run_date=True,
    ),
    Command(
        "replay",
        "score a past score run again from its pinned features and model version into a "
        "scratch table; compare bit for bit with the rows it wrote",
        _replay,
        _replay_arguments,
    ),
    Command(
        "pipeline",
        "ingest -> features -> (train with --train-if-missing when no model yet) -> score -> "
        "monitor (-> quality with labels:) for one date",
        _pipeline,
        _pipeline_arguments,
        needs_run_date=True,
        start_check=preflight.pipeline_model,
    ),
    Command(
        "maintain",
        "retention properties, OPTIMIZE and VACUUM of the use case's tables; archive old drops",
        _maintain,
        _maintain_arguments,
    ),
)
