"""Run steps from a Config: the one place that turns configuration into step arguments.

Every step run is recorded in the `runs` table (succeeded, or failed with its error) and
the Prometheus textfile is rebuilt after it, whether it is started on its own (`scoring
score`) or by the pipeline. The steps themselves (`run_ingest`, `run_score`, ...) take plain
typed arguments and know nothing of the configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import partial

from pyspark.sql import SparkSession

from scoring.config import Config
from scoring.errors import ModelError, ModelNotFoundError
from scoring.logs import new_run_id
from scoring.steps import StepResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepRun:
    """Who runs a step: the session, the configuration and the run's identity."""

    spark: SparkSession
    config: Config
    run_date: date
    pipeline_run_id: str | None = None

    def recorded(self, step: str, body: Callable[[str], StepResult], run_id: str) -> StepResult:
        """Run `body(run_id)`, recording it in `runs` (also when it fails)."""
        from scoring.runs import record_step

        runs = self.config.table("runs")
        with record_step(
            self.spark, runs, step, self.run_date, run_id, self.pipeline_run_id
        ) as record:
            record.result = body(run_id)
        log.info("%s %s: %s", step, self.run_date, record.result)
        return record.result


def ingest(run: StepRun, run_id: str | None = None) -> StepResult:
    """Ingest the raw drops of the run date into bronze and quarantine."""
    from scoring.ingest import SOURCES, run_ingest

    config = run.config
    body = partial(
        run_ingest,
        run.spark,
        raw_root=config.raw_root,
        bronze={source: config.table(f"bronze_{source}") for source in SOURCES},
        quarantine=config.table("quarantine"),
        max_quarantine_share=config.ingest.max_quarantine_share,
        run_date=run.run_date,
    )
    return run.recorded("ingest", lambda rid: body(run_id=rid), run_id or new_run_id("ingest"))


def features(run: StepRun, run_id: str | None = None) -> StepResult:
    """Build the features as of the run date from bronze."""
    from scoring.features_step import run_features

    config = run.config
    body = partial(
        run_features,
        run.spark,
        customers=config.table("bronze_customers"),
        transactions=config.table("bronze_transactions"),
        features=config.table("features"),
        run_date=run.run_date,
    )
    return run.recorded("features", lambda rid: body(run_id=rid), run_id or new_run_id("features"))


def train(run: StepRun, alias: str, run_id: str | None = None) -> StepResult:
    """Train the demo model on the features of the run date and point `alias` at it."""
    from scoring.registry import mlflow_target
    from scoring.train import TrainSettings, run_train

    config = run.config
    settings = TrainSettings(alias, config.training.baseline_max_rows, config.training.seed)
    target = mlflow_target(config)
    features_ref = config.table("features")
    return run.recorded(
        "train",
        lambda rid: run_train(run.spark, features_ref, target, run.run_date, rid, settings),
        run_id or new_run_id("train"),
    )


def score(run: StepRun, model_uri: str | None, run_id: str | None = None) -> StepResult:
    """Score the features of the run date with `model_uri` (default: the configured alias)."""
    from scoring.registry import mlflow_target
    from scoring.score import ScoreTables, run_score

    config = run.config
    uri = model_uri or default_model(config)
    tables = ScoreTables(
        config.table("features"), config.table("scores"), config.table("scores_current")
    )
    target, batch = mlflow_target(config), config.scoring.batch_size
    return run.recorded(
        "score",
        lambda rid: run_score(run.spark, tables, target, uri, run.run_date, rid, batch),
        run_id or new_run_id("score"),
    )


def monitor(run: StepRun, model_version: str | None, run_id: str | None = None) -> StepResult:
    """Drift of the model inputs and the score of the run date vs baseline and previous date."""
    from scoring.baseline import download_baseline
    from scoring.monitor import run_monitor

    config = run.config
    tables = {name: config.table(name) for name in ("features", "scores", "drift_metrics")}
    baseline = partial(
        download_baseline, config.tracking_uri, config.registry_uri, config.mlflow.model_name
    )
    model_name = config.mlflow.model_name
    return run.recorded(
        "monitor",
        lambda rid: run_monitor(
            run.spark,
            tables,
            config.monitor,
            model_name,
            baseline,
            run.run_date,
            rid,
            model_version,
        ),
        run_id or new_run_id("monitor"),
    )


def report(spark: SparkSession, config: Config, run_date: date) -> str:
    """Write the HTML monitoring report of `run_date`; return its path."""
    from scoring.baseline import download_baseline
    from scoring.report import run_report

    def baseline(version: str) -> str | None:
        try:
            return download_baseline(
                config.tracking_uri, config.registry_uri, config.mlflow.model_name, version
            )
        except ModelError as exc:  # the page says so instead of failing
            log.warning("report: no baseline: %s", exc)
            return None

    names = ("drift_metrics", "scores", "runs", "quarantine")
    tables = {name: config.table(name) for name in names}
    model_name = config.mlflow.model_name
    return run_report(spark, tables, model_name, baseline, config.reports_dir, run_date)


def write_metrics_file(spark: SparkSession, config: Config) -> None:
    """Rebuild the Prometheus textfile from the `runs` and `drift_metrics` tables."""
    from scoring.prometheus import write_prometheus

    write_prometheus(
        spark, config.table("runs"), config.table("drift_metrics"), config.prometheus_file
    )


def default_model(config: Config) -> str:
    """`models:/<mlflow.model_name>@<scoring.default_alias>`."""
    from scoring.registry import default_model_uri

    return default_model_uri(config.mlflow.model_name, config.scoring.default_alias)


def has_model(config: Config, uri: str) -> bool:
    """Whether the registry resolves `uri` (e.g. whether a champion exists yet).

    Raises:
        ModelError: the registry could not be asked; never taken for "no model", which
            would make the pipeline train and register a new champion.
    """
    from scoring.registry import mlflow_target, resolve_model

    try:
        resolve_model(mlflow_target(config), uri)
    except ModelNotFoundError:
        return False
    return True
