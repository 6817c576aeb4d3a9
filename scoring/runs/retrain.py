"""Retraining from monitoring: a new challenger when an enabled kind of alert fires on D.

The pipeline asks `fired` after the monitor (and quality) step of its date D: the drift
alerts (the monitor step's `alerts`, as `--fail-on-alert` counts them) when `retrain.on`
holds `drift`, the quality alerts when it holds `quality`. Nothing fired: nothing happens
and nothing is recorded. Otherwise `run_retrain` runs as the step `retrain` of D in `runs`
and first decides whether to train at all:

- the use case has no trainer, or scores an existing features table: not retrained (a
  warning, not a failure: a model trained elsewhere is retrained elsewhere);
- `retrain.alias` holds a version retrained less than `retrain.cooldown_days` before D (a
  version trained by hand: trained on a date that recent): not retrained, one alert episode
  gives one challenger, which the next dates shadow-score;
- the serving version was itself trained on D - `train.horizon_days`: a retrain would fit
  the same rows with the same seed, the same model again: not retrained.

Else it builds the features of D - `train.horizon_days` when that partition is missing (the
newest date whose labels are known by D; recorded as its own `features` step), runs the use
case's trainer on them (`scoring.train.step.run_train`: held-out rows, baseline, version tags)
and points `retrain.alias` at the new version, never the serving alias. The version is tagged
with why (`retrain.reason`), when (`retrain.run_date`, D) and by which pipeline run. Nothing
is promoted here.

The `runs` row has no details column: its `warnings` carry the one line a person reads
("retrained challenger v3 on the features of 2026-02-02 because ...", or why not), the
report shows it; the StepResult's `details` carry the same as fields.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from scoring.core import io
from scoring.core.config import RETRAIN_TRIGGERS, RetrainSettings, check_retrain_alias
from scoring.core.errors import ModelNotFoundError
from scoring.core.tables import Tables
from scoring.model.registry import MlflowTarget, ResolvedModel, default_model_uri, resolve_model
from scoring.runs.result import StepResult
from scoring.train.step import TrainSettings, run_train
from scoring.usecase.spec import UseCase

log = logging.getLogger(__name__)

RETRAIN = "retrain"
#: Tags of a retrained version: the pipeline date that retrained it, why, which pipeline run.
RETRAINED_ON, RETRAIN_REASON, RETRAIN_PIPELINE = (
    "retrain.run_date",
    "retrain.reason",
    "retrain.pipeline_run_id",
)
#: Kind of alert -> the step that counts it and the detail naming what alerted.
_ALERTING = {"drift": ("monitor", "alerted_features"), "quality": ("quality", "alerted_metrics")}
_HOLDOUT = "holdout_"


@dataclass(frozen=True)
class Trigger:
    """Alerts of one enabled kind that fired on a date."""

    kind: str  # drift or quality
    run_date: date
    alerts: int
    subjects: tuple[str, ...]  # the features or metrics at alert

    def describe(self) -> str:
        """`3 drift alert(s) on 2026-03-02 (segment)`."""
        what = f" ({', '.join(self.subjects)})" if self.subjects else ""
        return f"{self.alerts} {self.kind} alert(s) on {self.run_date}{what}"


def fired(results: Sequence[StepResult], enabled: Sequence[str]) -> list[Trigger]:
    """The alerts of the kinds in `enabled` that the steps in `results` raised."""
    found = []
    for kind in RETRAIN_TRIGGERS:
        if kind not in enabled:
            continue
        step, key = _ALERTING[kind]
        for result in results:
            alerts = int(result.details.get("alerts", 0) or 0)
            if result.step != step or not alerts:
                continue
            subjects = [str(s) for s in result.details.get(key) or ()]
            if result.details.get("dataset_drift"):
                subjects.append("the share of drifted features")
            found.append(Trigger(kind, result.run_date, alerts, tuple(subjects)))
    return found


@dataclass(frozen=True)
class RetrainRequest:
    """What a retrain needs beyond the session and tables: the model, the settings, why."""

    registered_name: str
    settings: RetrainSettings
    training: TrainSettings  # the `training` section; its alias is replaced by retrain.alias
    triggers: tuple[Trigger, ...]
    pipeline_run_id: str | None = None


def run_retrain(
    spark: SparkSession,
    tables: Tables,
    target: MlflowTarget,
    usecase: UseCase,
    request: RetrainRequest,
    run_date: date,
    run_id: str,
    build_features: Callable[[date], StepResult],
) -> StepResult:
    """Decide, then (maybe) train a new version under `retrain.alias` (module docstring).

    `build_features(day)` builds and records the features of `day` (the pipeline's
    `features` step); it is called only when that partition is missing.

    Raises:
        ConfigError: retrain.alias is the serving alias.
        DataError, UseCaseCodeError, ModelError: the training failed (as `scoring train`).
    """
    settings = request.settings
    check_retrain_alias(settings, usecase.model.alias, str(usecase.path))
    reason = "; ".join(t.describe() for t in request.triggers)
    details: dict[str, Any] = {
        "retrained": False,
        "reason": reason,
        "triggers": [t.kind for t in request.triggers],
        "alias": settings.alias,
    }
    trainer = usecase.train
    if trainer is None or usecase.features.score_only:
        why = f"use case '{usecase.name}' declares no trainer (a model trained elsewhere)"
        return _not_retrained(run_id, run_date, details, why)
    train_date = run_date - timedelta(days=trainer.horizon_days)
    champion = _version(target, request.registered_name, usecase.model.alias)
    why_not = _cooldown(
        _version(target, request.registered_name, settings.alias), champion, settings, run_date
    )
    if why_not is None:
        why_not = _same_rows(champion, train_date)
    if why_not is not None:
        return _not_retrained(run_id, run_date, details, why_not)
    built = None
    if not _has_partition(spark, tables, usecase, train_date):
        built = build_features(train_date)
    tags = {
        RETRAINED_ON: run_date.isoformat(),
        RETRAIN_REASON: reason,
        RETRAIN_PIPELINE: request.pipeline_run_id or "",
    }
    training = TrainSettings(
        settings.alias,
        request.training.baseline_max_rows,
        request.training.seed,
        request.training.holdout_share,
        version_tags=tags,
    )
    trained = run_train(
        spark, tables, target, usecase, request.registered_name, train_date, run_id, training
    )
    version = str(trained.details["model_version"])
    holdout = {
        k[len(_HOLDOUT) :]: float(v) for k, v in trained.details.items() if k.startswith(_HOLDOUT)
    }
    theirs = _holdout_metrics(target, champion)
    note = (
        f"retrained {settings.alias} v{version} on the features of {train_date} because "
        f"{reason}; held out: {_side_by_side(holdout, theirs, champion)}; not promoted: the "
        f"serving alias {usecase.model.alias} stays"
        + (f" on v{champion.version}" if champion is not None else "")
    )
    log.info("%s", note)
    return StepResult(
        step=RETRAIN,
        run_id=run_id,
        run_date=run_date,
        rows_in=trained.rows_in,
        details={
            **details,
            "retrained": True,
            "retrained_version": version,
            "model_uri": trained.details["model_uri"],
            "training_date": train_date.isoformat(),
            "holdout": holdout,
            "champion_version": champion.version if champion is not None else None,
            "champion_holdout": theirs,
            "baseline_uri": trained.details["baseline_uri"],
            "features_built": built is not None,
            "note": note,
        },
        warnings=(note,),
    )


def _not_retrained(run_id: str, run_date: date, details: Mapping[str, Any], why: str) -> StepResult:
    note = f"not retrained despite {details['reason']}: {why}"
    log.warning("%s", note)
    return StepResult(
        step=RETRAIN,
        run_id=run_id,
        run_date=run_date,
        details={**details, "skipped": why, "note": note},
        warnings=(note,),
    )


def _version(target: MlflowTarget, name: str, alias: str) -> ResolvedModel | None:
    """The version at `alias`, or None when the alias (or the model) has none."""
    try:
        return resolve_model(target, default_model_uri(name, alias))
    except ModelNotFoundError:
        return None


def _cooldown(
    current: ResolvedModel | None,
    champion: ResolvedModel | None,
    settings: RetrainSettings,
    run_date: date,
) -> str | None:
    """Why the alias's version is too recent to be replaced, or None."""
    if current is None or settings.cooldown_days == 0:
        return None
    if champion is not None and current.version == champion.version:
        return None  # the challenger was promoted: the alias holds no challenger any more
    since = current.tags.get(RETRAINED_ON) or current.tags.get("run_date")
    if since is None:
        return None
    age = (run_date - date.fromisoformat(since)).days
    if age >= settings.cooldown_days:
        return None
    return (
        f"{settings.alias} v{current.version} was retrained on {since}, {age} day(s) before "
        f"{run_date} (retrain.cooldown_days = {settings.cooldown_days})"
    )


def _same_rows(champion: ResolvedModel | None, train_date: date) -> str | None:
    """Why training on `train_date` would give the serving version again, or None."""
    if champion is None or champion.tags.get("run_date") != train_date.isoformat():
        return None
    return (
        f"the serving version v{champion.version} was trained on the features of "
        f"{train_date} already (the same rows, the same model)"
    )


def _has_partition(spark: SparkSession, tables: Tables, usecase: UseCase, day: date) -> bool:
    """Whether the features table has rows of `day` (a one-row probe)."""
    ref = tables["features"]
    if not io.table_exists(spark, ref):
        return False
    column = usecase.features.as_of_column
    rows = io.read_table(spark, ref).where(F.col(column) == F.lit(day)).select(F.lit(1))
    return bool(rows.head(1))


def _holdout_metrics(target: MlflowTarget, version: ResolvedModel | None) -> dict[str, float]:
    """The held-out metrics the version's training run logged (none for a model trained
    elsewhere, or a run that held nothing out)."""
    if version is None or version.run_id is None:
        return {}
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=target.tracking_uri, registry_uri=target.registry_uri)
    metrics = client.get_run(version.run_id).data.metrics
    return {k[len(_HOLDOUT) :]: float(v) for k, v in metrics.items() if k.startswith(_HOLDOUT)}


def _side_by_side(
    ours: Mapping[str, float], theirs: Mapping[str, float], champion: ResolvedModel | None
) -> str:
    """`roc_auc 0.812 (champion v1: 0.834), log_loss 0.51 (champion v1: none)`."""
    if not ours:
        return "no held-out metric (the training date's split was unusable)"
    who = f"serving v{champion.version}" if champion is not None else "no serving version"
    parts = []
    for name in sorted(ours):
        other = f"{theirs[name]:.4f}" if name in theirs else "none"
        parts.append(f"{name} {ours[name]:.4f} ({who}: {other})")
    return ", ".join(parts)
