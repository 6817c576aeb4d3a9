"""`scoring pipeline --run-date D`: ingest → features → (train) → score → monitor for one date.

A score-only use case (`features.table`) skips ingest and features. When the registry has no
model under the use case's alias yet and the use case declares a trainer, the pipeline
trains one first: on the features as of D - `train.horizon_days` (whose label is known by
D), so both feature dates are built before training. Every step is recorded in `runs` under
one pipeline run id; the Prometheus textfile is rebuilt and one MLflow run is logged at the
end, also when a step failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from pyspark.sql import SparkSession

from scoring.core.config import Config
from scoring.core.errors import ModelNotFoundError
from scoring.runs import steps as runner
from scoring.runs.result import StepResult
from scoring.runs.steps import StepRun
from scoring.usecase.spec import UseCase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineOptions:
    """Choices of one pipeline run."""

    model_uri: str | None = None
    train_alias: str = "champion"
    report: bool = False  # write the date's HTML report (and log it to the MLflow run)


def run_pipeline(
    spark: SparkSession,
    config: Config,
    usecase: UseCase,
    run_date: date,
    pipeline_run_id: str,
    options: PipelineOptions | None = None,
) -> list[StepResult]:
    """Run every step of the use case for `run_date`; return their results in order.

    Raises:
        ScoringError: the first step that fails, after recording it in `runs`.
    """
    options = options or PipelineOptions()
    run = StepRun(spark, config, usecase, run_date, pipeline_run_id)
    results: list[StepResult] = []
    completed = False
    try:
        if not usecase.features.score_only:
            results.append(runner.ingest(run))
            results.append(runner.features(run))
        model_uri = options.model_uri or runner.default_model(config, usecase)
        if options.model_uri is None and not runner.has_model(config, usecase, model_uri):
            results += _train_first_model(run, model_uri, options.train_alias)
        results.append(runner.score(run, model_uri))
        scored_version = str(results[-1].details.get("model_version"))
        results.append(runner.monitor(run, scored_version))
        if options.report:
            results.append(runner.report(run))
        completed = True
    finally:
        observe(run, results, pipeline_run_id, failed=not completed)
    return results


def _train_first_model(run: StepRun, model_uri: str, alias: str) -> list[StepResult]:
    """Build the features of D - horizon and train on them (their label is known by D)."""
    trainer = run.usecase.train
    if trainer is None or run.usecase.features.score_only:
        raise ModelNotFoundError(
            f"{model_uri}: no such model in {run.config.registry_uri}, and use case "
            f"'{run.usecase.name}' declares no trainer: register one and record its baseline"
        )
    train_date = run.run_date - timedelta(days=trainer.horizon_days)
    log.info("no model under %s yet: training on %s", model_uri, train_date)
    earlier = run.on(train_date)
    built = [runner.features(earlier)] if trainer.horizon_days else []
    return [*built, runner.train(earlier, alias)]


def observe(run: StepRun, results: list[StepResult], name: str, failed: bool) -> None:
    """Rebuild the metrics (textfile, Pushgateway) and log one MLflow run named `name` (a
    pipeline run id, or a single command's run id), a failed one too: the steps' metrics,
    the date's drift metrics and the report as artifacts."""
    from scoring.model.registry import ensure_experiment
    from scoring.runs.tracking import drift_artifacts, log_pipeline_run

    runner.write_metrics_file(run.spark, run.config, run.usecase)
    version = next((r.details.get("model_version") for r in results if r.step == "score"), None)
    monitored = any(r.step == "monitor" for r in results)
    drift = drift_artifacts(run.spark, run.tables["drift_metrics"], run.run_date, run.model_name)
    reports = [str(r.details["path"]) for r in results if r.step == "report"]
    log_pipeline_run(
        run.config.tracking_uri,
        ensure_experiment(run.target),
        name,
        run.run_date,
        results,
        model_name=run.model_name,
        model_version=str(version) if version is not None else None,
        tags={"usecase": run.usecase.name},
        failed=failed,
        drift=drift if monitored else None,
        files=reports,
    )
