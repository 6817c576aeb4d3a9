"""`scoring pipeline --run-date D`: ingest → features → (train) → score → monitor (→ quality)
(→ compare → promote) (→ retrain) (→ report) for one date.

A score-only use case (`features.table`) skips ingest and features. The model must be in the
registry before anything runs; when it is not (no model at the use case's alias, or no
registry yet), the pipeline fails at once, naming the model, the alias and how to get one,
unless it was told to train a first model (`--train-if-missing`, `PipelineOptions.
train_if_missing`) and the use case declares a trainer: then it trains one on the features
as of D - `train.horizon_days` (whose label is known by D), so both feature dates are built
before training. It never trains a serving model on its own: a mistyped registry path would
otherwise get a new champion, silently. After monitor (and quality), an alert of a kind in
`retrain.on` trains a challenger under `retrain.alias` (`scoring.runs.retrain`; never the
serving alias); a failed retrain leaves the date's scores as they are. Every step is recorded in `runs` under one pipeline run id; the
Prometheus textfile is rebuilt and one MLflow run is logged at the end, also when a step
failed.

When the score step shadow-scored other versions (`model.shadow`), `compare` runs after
quality, and with `promotion.auto: true` the rules decide a promotion (docs/promotion.md).

The score step scores the serving alias and the use case's `model.shadow` aliases in one pass
(a shadow alias without a version is skipped).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from pyspark.sql import SparkSession

from scoring.core.config import Config
from scoring.core.errors import ModelNotFoundError
from scoring.model.registry import mlflow_target, resolve_model
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
    train_if_missing: bool = False  # train a first model when the alias has none yet


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
        ModelNotFoundError: before any step, when the model is missing and may not be
            trained here (see `needs_first_model`).
        ScoringError: the first step that fails, after recording it in `runs`.
    """
    options = options or PipelineOptions()
    train_first = needs_first_model(config, usecase, options.model_uri, options.train_if_missing)
    run = StepRun(spark, config, usecase, run_date, pipeline_run_id)
    results: list[StepResult] = []
    completed = False
    try:
        if not usecase.features.score_only:
            results.append(runner.ingest(run))
            results.append(runner.features(run))
        model_uri = options.model_uri or runner.default_model(config, usecase)
        if train_first:
            results += _train_first_model(run, model_uri, options.train_alias)
        score_result = runner.score(run, model_uri)
        results.append(score_result)
        scored_version = str(score_result.details.get("model_version"))
        results.append(runner.monitor(run, scored_version))
        if usecase.labels is not None:
            results.append(runner.quality(run, None))
        results += compare_shadows(run, score_result)
        if config.retrain.on:
            results += retrain_on_alerts(run, results)
        if options.report:
            results.append(runner.report(run))
        completed = True
    finally:
        observe(run, results, pipeline_run_id, failed=not completed)
    return results


def compare_shadows(run: StepRun, score: StepResult) -> list[StepResult]:
    """When the score step shadow-scored other versions (`details["shadow_versions"]`, a
    non-empty {alias: version}), compare each with the serving version (after quality, so
    the realized rows of the dates whose outcomes arrived are fresh); then, with
    `promotion.auto`, promote the best one whose rules hold (docs/promotion.md)."""
    shadows = score.details.get("shadow_versions")
    if not isinstance(shadows, dict) or not shadows:
        return []
    served = f"models:/{run.model_name}/{score.details['model_version']}"
    done = [runner.compare(run, served)]
    if run.config.promotion.auto:
        done += _auto_promote(run, {str(v) for v in shadows.values()})
    return done


def _auto_promote(run: StepRun, versions: set[str]) -> list[StepResult]:
    """Promote to the serving alias the shadow version with the largest mean gain among
    those the rules allow; a refusal is logged, not a failure (nothing was asked by a
    person)."""
    from scoring.compare.promote import decide

    alias = run.usecase.model.alias
    allowed = []
    for version in sorted(versions):
        uri = f"models:/{run.model_name}/{version}"
        request = runner.promote_request(
            run, alias, uri, f"pipeline {run.pipeline_run_id}", reason="promotion.auto"
        )
        decision = decide(
            run.spark, run.tables, run.target, request, run.config.promotion, run.run_date
        )
        if not decision.passed:
            log.info("promotion.auto: v%s stays in the shadow: %s", version, decision.failures())
            continue
        gains = decision.evidence.gains if decision.evidence else ()
        allowed.append((sum(gains) / len(gains) if gains else 0.0, version, request))
    if not allowed:
        return []
    _, version, request = max(allowed)
    log.info("promotion.auto: the rules hold for v%s: promoting it to '%s'", version, alias)
    return [runner.promote(run, request)]


def needs_first_model(
    config: Config, usecase: UseCase, model_uri: str | None, train_if_missing: bool
) -> bool:
    """Whether the pipeline trains a first model: the registry has none at the use case's
    alias (or no registry exists yet), and it was told to (`train_if_missing`).

    Raises:
        ModelNotFoundError: the model is missing and may not be trained here (not told to,
            an explicit `model_uri`, or no trainer), naming it and how to get one.
        ModelError: the registry could not be asked (never taken for a missing model).
    """
    uri = model_uri or runner.default_model(config, usecase)
    try:
        resolve_model(mlflow_target(config, usecase.name), uri)
        return False
    except ModelNotFoundError as exc:
        how = _how_to_get(usecase, uri, model_uri is not None, train_if_missing)
        if how is None:
            return True
        raise type(exc)(f"{exc}; {how}") from exc


def _how_to_get(usecase: UseCase, uri: str, explicit: bool, train_if_missing: bool) -> str | None:
    """What to do about a missing model, or None when the pipeline trains it itself."""
    alias = usecase.model.alias
    register = f"register a version, point alias '{alias}' at it and record its baseline"
    if explicit:
        return f"the pipeline trains only the use case's alias ({alias}), not --model {uri}"
    if usecase.train is None or usecase.features.score_only:
        return f"use case '{usecase.name}' declares no trainer: {register} (scoring baseline)"
    if not train_if_missing:
        return (
            f"train a first model with `scoring pipeline --train-if-missing` (on D - "
            f"{usecase.train.horizon_days} days) or `scoring train --run-date D`, or {register}"
        )
    return None


def _train_first_model(run: StepRun, model_uri: str, alias: str) -> list[StepResult]:
    """Build the features of D - horizon and train on them (their label is known by D)."""
    trainer = run.usecase.train
    assert trainer is not None  # needs_first_model said the use case can train
    train_date = run.run_date - timedelta(days=trainer.horizon_days)
    log.info("no model under %s yet: training on %s (--train-if-missing)", model_uri, train_date)
    earlier = run.on(train_date)
    built = [runner.features(earlier)] if trainer.horizon_days else []
    return [*built, runner.train(earlier, alias)]


def retrain_on_alerts(run: StepRun, results: list[StepResult]) -> list[StepResult]:
    """The `retrain` step when an alert of a kind in `retrain.on` fired among `results` (the
    date's monitor and quality steps), after the features it had to build; nothing when none
    fired. A failed retrain is recorded in `runs` and returned as a `retrain` result whose
    details hold `failed` (the error): the date's scores, drift and quality stand, the
    pipeline goes on (report, next dates) and the CLI exits 1 at the end."""
    from scoring.core.logs import new_run_id
    from scoring.runs.retrain import RETRAIN, fired

    triggers = fired(results, run.config.retrain.on)
    if not triggers:
        return []
    built: list[StepResult] = []
    run_id = new_run_id(RETRAIN)
    try:
        result = runner.retrain(run, triggers, built, run_id)
    except Exception as exc:  # the date's scores stand; the failure is recorded and reported
        error = f"{type(exc).__name__}: {exc}"
        log.error("retrain %s failed; the date's scores stand: %s", run.run_date, error)
        result = StepResult(
            step=RETRAIN,
            run_id=run_id,
            run_date=run.run_date,
            details={"retrained": False, "failed": error, "triggers": [t.kind for t in triggers]},
            warnings=(f"retrain failed: {error}",),
        )
    return [*built, result]


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
