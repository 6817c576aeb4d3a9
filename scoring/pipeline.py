"""`scoring pipeline --run-date D`: ingest → features → (train) → score → monitor for one date.

When the registry has no model under the configured alias yet, the pipeline trains one
first: on the features as of D - 30 days, labelled by the features as of D (churn = no
purchase in the 30 days after), so both feature dates are built from bronze before training.
Every step is recorded in `runs` under one pipeline run id; the Prometheus textfile is
rebuilt and one MLflow run is logged at the end, also when a step failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date

from pyspark.sql import SparkSession

from scoring import runner
from scoring.churn_model import LABEL_HORIZON_DAYS
from scoring.config import Config
from scoring.runner import StepRun
from scoring.steps import StepResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineOptions:
    """Choices of one pipeline run."""

    model_uri: str | None = None
    train_alias: str = "champion"


def run_pipeline(
    spark: SparkSession,
    config: Config,
    run_date: date,
    pipeline_run_id: str,
    options: PipelineOptions | None = None,
) -> list[StepResult]:
    """Run every step for `run_date`; return their results in order.

    Raises:
        ScoringError: the first step that fails, after recording it in `runs`.
    """
    options = options or PipelineOptions()
    run = StepRun(spark, config, run_date, pipeline_run_id)
    results: list[StepResult] = []
    try:
        results.append(runner.ingest(run))
        results.append(runner.features(run))
        model_uri = options.model_uri or runner.default_model(config)
        if options.model_uri is None and not runner.has_model(config, model_uri):
            results += _train_first_model(run, options.train_alias)
        results.append(runner.score(run, model_uri))
        scored_version = str(results[-1].details.get("model_version"))
        results.append(runner.monitor(run, scored_version))
    finally:
        _observe(spark, config, run_date, pipeline_run_id, results)
    return results


def _train_first_model(run: StepRun, alias: str) -> list[StepResult]:
    """Build the features of D - 30 and train on them, labelled by the features of D."""
    train_date = date.fromordinal(run.run_date.toordinal() - LABEL_HORIZON_DAYS)
    log.info("no model under the configured alias yet: training on %s", train_date)
    earlier = replace(run, run_date=train_date)
    return [runner.features(earlier), runner.train(earlier, alias)]


def _observe(
    spark: SparkSession,
    config: Config,
    run_date: date,
    pipeline_run_id: str,
    results: list[StepResult],
) -> None:
    """Rebuild the .prom file and log the pipeline's MLflow run (a failed run too)."""
    from scoring.registry import ensure_experiment, mlflow_target
    from scoring.tracking import log_pipeline_run

    runner.write_metrics_file(spark, config)
    version = next((r.details.get("model_version") for r in results if r.step == "score"), None)
    log_pipeline_run(
        config.tracking_uri,
        ensure_experiment(mlflow_target(config)),
        pipeline_run_id,
        run_date,
        results,
        model_name=config.mlflow.model_name,
        model_version=str(version) if version is not None else None,
        failed=not results or results[-1].step != "monitor",
    )
