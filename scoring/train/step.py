"""`scoring train`: the use case's trainer on one features date, registered in MLflow.

Read the features at one pinned version → the use case's `label(data, D)` gives the entity
key and `label` → join with the features of D → hold out a share of the entities
(`scoring.train.holdout`) → `fit(inputs, labels, seed)` on the rest, on the driver → check the
model serves the use case's task → log it (skops with reviewed types, XGBoost or LightGBM
native; signature; input example) and its held-out metrics → register it → log the monitoring
baseline (the held-out rows, their outputs and outcomes) → tag the version → set the alias. The alias is set last, so a failed run never becomes the
champion.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from scoring.core import io
from scoring.core.errors import DataError, UseCaseCodeError, UseCaseError
from scoring.core.tables import Tables
from scoring.features.asof import as_known_at, first_delivery
from scoring.model.loading import trusted_types
from scoring.model.predictors import EstimatorPredictor, check_estimator
from scoring.model.registry import MlflowTarget, configure_mlflow, ensure_experiment
from scoring.model.signature import bind_inputs, contract_inputs
from scoring.model.tasks import REGRESSION, Outputs
from scoring.monitor.baseline import (
    BASELINE_TAG,
    baseline_rows,
    log_baseline,
    sample_positions,
    tag_version,
)
from scoring.runs.result import StepResult
from scoring.train.holdout import describe, holdout_mask, holdout_metrics, usable_split
from scoring.train.register import log_model
from scoring.usecase.code import load_function
from scoring.usecase.spec import AS_OF_DATE, FEATURE_RUN_ID, TrainSpec, UseCase

log = logging.getLogger(__name__)
LABEL = "label"


@dataclass(frozen=True)
class TrainSettings:
    """How a training run behaves (the alias to set, the `training` config section)."""

    alias: str
    baseline_max_rows: int
    seed: int
    # Share of the entities held out of training; their outcomes go into the baseline.
    holdout_share: float = 0.2
    # More tags of the registered version, set before the alias (a retrain's reason).
    version_tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PinnedData:
    """The `TrainingData` a label function gets: reads at the run's pinned versions."""

    spark: SparkSession
    tables: Tables
    usecase: UseCase
    feature_version: int
    source_versions: Mapping[str, int]

    def features(self, as_of: date) -> DataFrame:
        """The features partition of `as_of` at the pinned version."""
        column = self.usecase.features.as_of_column
        return io.read_partition(
            self.spark, self.tables["features"], column, as_of, self.feature_version
        )

    def source(self, name: str, as_of: date) -> DataFrame:
        """A raw source as known at the end of `as_of` (its bronze table at the pinned version)."""
        if name not in self.source_versions:
            raise UseCaseError(f"{self.usecase.path}: no ingested source '{name}' to label from")
        bronze = io.read_table(self.spark, self.tables.bronze(name), self.source_versions[name])
        return as_known_at(bronze, self.usecase.sources[name], as_of, first_delivery(bronze))


def run_train(
    spark: SparkSession,
    tables: Tables,
    target: MlflowTarget,
    usecase: UseCase,
    registered_name: str,
    run_date: date,
    run_id: str,
    settings: TrainSettings,
) -> StepResult:
    """Train on the features of `run_date`, register a version and point `alias` at it.

    Raises:
        UseCaseError: the use case declares no trainer.
        DataError: the features or the label's data are missing, or the label is unusable.
        UseCaseCodeError: the label or fit function raised or returned something unusable.
        ModelError: the fitted model cannot serve the task or needs untrusted skops types.
    """
    trainer = _trainer(usecase)
    version = io.current_version(spark, tables["features"])
    if version is None:
        raise DataError(f"{tables['features']}: features table does not exist")
    data = PinnedData(spark, tables, usecase, version, _source_versions(spark, tables, usecase))
    rows = _labelled_rows(data, trainer, run_date)
    exclude = (*usecase.entity, AS_OF_DATE, FEATURE_RUN_ID, LABEL)
    assert usecase.features.contract is not None  # a trainer needs built or declared features
    inputs = bind_inputs(rows, contract_inputs(usecase.features.contract, exclude))
    labels = _labels(rows[LABEL], usecase, str(tables["features"]), run_date)
    held = _held_out(rows, labels, usecase, settings, run_date)
    model = _fit(
        usecase,
        trainer,
        inputs[~held].reset_index(drop=True),
        labels[~held].reset_index(drop=True),
        settings.seed,
    )
    check_estimator(model, usecase.model, f"{trainer.fit} (trained model)")
    used = inputs[list(model.feature_names_in_)] if hasattr(model, "feature_names_in_") else inputs
    tags = {
        "run_id": run_id,
        "run_date": run_date.isoformat(),
        "usecase": usecase.name,
        "feature_table_version": str(version),
        "source_versions": json.dumps(dict(data.source_versions), sort_keys=True),
    }
    baseline, metrics = _baseline(rows, used, labels, held, model, usecase, settings)
    registered, baseline_uri, mlflow_run = _log(
        target, model, used[~held], baseline, usecase, registered_name, tags, metrics
    )
    version_tags = {**tags, **settings.version_tags, BASELINE_TAG: baseline_uri}
    tag_version(target, registered_name, registered, version_tags)
    configure_mlflow(target).set_registered_model_alias(registered_name, settings.alias, registered)
    log.info("registered %s version %s as @%s", registered_name, registered, settings.alias)
    return StepResult(
        step="train",
        run_id=run_id,
        run_date=run_date,
        rows_in=len(rows),
        details={
            "held_out_rows": int(held.sum()),
            **metrics,
            "model_uri": f"models:/{registered_name}/{registered}",
            "model_version": registered,
            "alias": settings.alias,
            "mlflow_run_id": mlflow_run,
            "baseline_uri": baseline_uri,
            "feature_table_version": version,
        },
    )


def _held_out(
    rows: pd.DataFrame,
    labels: pd.Series,
    usecase: UseCase,
    settings: TrainSettings,
    run_date: date,
) -> np.ndarray:
    """The rows kept out of training for the baseline (`scoring.train.holdout`); none, with
    a warning naming why, when the split is unusable on this data."""
    mask = holdout_mask(rows[list(usecase.entity)], settings.holdout_share, settings.seed)
    reason = usable_split(mask, labels, usecase.model.task)
    if reason is None:
        return mask
    if settings.holdout_share > 0:
        log.warning(
            "training.holdout_share %s on the %d rows of %s: %s; the model trains on every "
            "row and its baseline carries no outcome (no quality baseline)",
            settings.holdout_share,
            len(rows),
            run_date,
            reason,
        )
    return np.zeros(len(rows), dtype=bool)


def _baseline(
    rows: pd.DataFrame,
    used: pd.DataFrame,
    labels: pd.Series,
    held: np.ndarray,
    model: Any,
    usecase: UseCase,
    settings: TrainSettings,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """The baseline sample and the held-out metrics.

    With a held-out part: its rows, the model's outputs on them and their outcome. Without:
    a sample of the training rows and no outcome (an in-sample outcome would flatter the
    model, and the quality monitor would take it for the model's real level).
    """
    predictor = EstimatorPredictor(model, usecase.model)
    if not held.any():
        keep = sample_positions(len(rows), settings.baseline_max_rows, settings.seed)
        sample = used.iloc[keep]
        outputs = predictor.predict(sample)
        keys = rows.iloc[keep][list(usecase.entity)]
        return baseline_rows(keys, sample, outputs, usecase.model.task), {}
    positions = np.flatnonzero(held)
    outputs = predictor.predict(used.iloc[positions])
    metrics = holdout_metrics(
        usecase.model.task, labels.iloc[positions], outputs, usecase.model.positive_class
    )
    log.info(describe(metrics, len(positions), len(rows) - len(positions)))
    keep = sample_positions(len(positions), settings.baseline_max_rows, settings.seed)
    chosen = positions[keep]
    sampled = Outputs(
        {name: np.asarray(values)[keep] for name, values in outputs.columns.items()},
        outputs.classes,
    )
    return (
        baseline_rows(
            rows.iloc[chosen][list(usecase.entity)],
            used.iloc[chosen],
            sampled,
            usecase.model.task,
            labels.iloc[chosen],
        ),
        metrics,
    )


def _source_versions(spark: SparkSession, tables: Tables, usecase: UseCase) -> dict[str, int]:
    """Each ingested source's bronze version, pinned for the label function's reads: as the
    newest succeeded ingest left it (`scoring.runs.history.bronze_versions`)."""
    from scoring.runs.history import bronze_versions

    versions = bronze_versions(spark, tables, usecase.name, usecase.sources)
    return {name: version for name, version in versions.items() if version is not None}


def _trainer(usecase: UseCase) -> TrainSpec:
    if usecase.train is None:
        raise UseCaseError(
            f"{usecase.path}: train: use case '{usecase.name}' declares no trainer; register "
            "a model trained elsewhere and record its baseline with `scoring baseline`"
        )
    return usecase.train


def _labelled_rows(data: PinnedData, trainer: TrainSpec, run_date: date) -> pd.DataFrame:
    """The features of `run_date` joined with the label function's labels (pandas, driver)."""
    label_fn = load_function(data.usecase, trainer.label)
    try:
        labels = label_fn(data, run_date)
    except DataError:
        raise
    except Exception as exc:  # the use case's code failed: name it, one line
        raise UseCaseCodeError(f"{trainer.label} raised {type(exc).__name__}: {exc}") from exc
    entity = list(data.usecase.entity)
    if not isinstance(labels, DataFrame) or not {*entity, LABEL} <= set(labels.columns):
        raise UseCaseCodeError(
            f"{trainer.label} must return a Spark DataFrame with columns {[*entity, LABEL]}"
        )
    features = data.features(run_date)
    if LABEL in features.columns:
        features = features.drop(LABEL)
    joined = features.join(labels.select(*entity, LABEL), on=entity, how="inner")
    # Training happens on the driver: the fit function needs the rows in memory.
    rows: pd.DataFrame = joined.toPandas()
    return rows.sort_values(entity, ignore_index=True)


def _labels(labels: pd.Series, usecase: UseCase, table: str, run_date: date) -> pd.Series:
    """The label column, checked: no nulls, two classes or more for a classifier."""
    if labels.empty:
        raise DataError(f"{table}: no entity of {run_date} has a label")
    if labels.isna().any():
        raise DataError(f"{table}: {int(labels.isna().sum())} labels of {run_date} are null")
    if usecase.model.task != REGRESSION and labels.nunique() < 2:
        raise DataError(f"{table}: the label of {run_date} has a single class")
    return labels


def _fit(
    usecase: UseCase, trainer: TrainSpec, inputs: pd.DataFrame, labels: pd.Series, seed: int
) -> Any:
    fit = load_function(usecase, trainer.fit)
    try:
        return fit(inputs, labels, seed)
    except Exception as exc:  # the use case's code failed: name it, one line
        raise UseCaseCodeError(f"{trainer.fit} raised {type(exc).__name__}: {exc}") from exc


def _log(
    target: MlflowTarget,
    model: Any,
    inputs: pd.DataFrame,
    baseline: pd.DataFrame,
    usecase: UseCase,
    registered_name: str,
    tags: dict[str, str],
    metrics: Mapping[str, float],
) -> tuple[str, str, str]:
    """Log model, baseline and held-out metrics in one MLflow run; return (version, baseline
    URI, run id)."""
    import mlflow

    experiment_id = ensure_experiment(target)
    with mlflow.start_run(experiment_id=experiment_id, run_name=tags["run_id"], tags=tags) as run:
        mlflow.log_params({"training_rows": len(inputs), "baseline_rows": len(baseline)})
        if metrics:
            mlflow.log_metrics(dict(metrics))
        info = log_model(
            model, inputs, usecase.model.task, registered_name, trusted_types(usecase.model)
        )
        baseline_uri = log_baseline(baseline)
    return str(info.registered_model_version), baseline_uri, run.info.run_id
