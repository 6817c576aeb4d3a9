"""`scoring train`: fit the demo churn model on one features date and register it in MLflow.

Read the features of D and of D + 30 at one pinned version → label → fit the pipeline on the
driver → log it (skops, explicit trusted types, signature, input example) → register it under
`mlflow.model_name` → log the monitoring baseline → set the alias. The alias is set last, so
a failed run never becomes the champion.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import date
from importlib.metadata import version as package_version
from typing import Any

import pandas as pd
from pyspark.sql import SparkSession

from scoring import io
from scoring.churn_model import TARGET, build_pipeline, label_date, model_inputs_of
from scoring.churn_model import with_churn_target as add_target
from scoring.config import TableRef
from scoring.contracts import load_contract
from scoring.errors import DataError
from scoring.model_adapter import SKOPS_TRUSTED_TYPES, SklearnPredictor, bind_inputs
from scoring.registry import MlflowTarget, configure_mlflow, ensure_experiment
from scoring.steps import StepResult

log = logging.getLogger(__name__)
BASELINE_ARTIFACT = "baseline/baseline.parquet"
_REQUIREMENTS = ("scikit-learn", "skops", "pandas", "numpy")


@dataclass(frozen=True)
class TrainSettings:
    """How a training run behaves (from the `training` config section)."""

    alias: str
    baseline_max_rows: int
    seed: int


def run_train(
    spark: SparkSession,
    features: TableRef,
    target: MlflowTarget,
    run_date: date,
    run_id: str,
    settings: TrainSettings,
) -> StepResult:
    """Train on the features of `run_date`, register a version and point `alias` at it.

    Raises:
        DataError: the features table, the partition of `run_date` or of `run_date + 30`
            (needed for the label) is missing, or the label has a single class.
    """
    rows, feature_version = training_rows(spark, features, run_date)
    inputs = model_inputs_of(load_contract("features"))
    frame = bind_inputs(rows, inputs)
    labels = rows[TARGET].to_numpy()
    if len(set(labels.tolist())) < 2:
        raise DataError(f"{features}: the churn label of {run_date} has a single class")
    pipeline = build_pipeline(inputs, settings.seed).fit(frame, labels)
    baseline = baseline_frame(rows, frame, pipeline, settings.baseline_max_rows, settings.seed)
    tags = {"run_id": run_id, "run_date": run_date.isoformat()}
    tags["feature_table_version"] = str(feature_version)
    version, baseline_uri, mlflow_run = _log_and_register(target, pipeline, frame, baseline, tags)
    client = configure_mlflow(target)
    client.set_model_version_tag(target.model_name, version, "baseline_uri", baseline_uri)
    for key, value in tags.items():
        client.set_model_version_tag(target.model_name, version, key, value)
    client.set_registered_model_alias(target.model_name, settings.alias, version)
    log.info("registered %s version %s as @%s", target.model_name, version, settings.alias)
    return StepResult(
        step="train",
        run_id=run_id,
        run_date=run_date,
        rows_in=len(rows),
        details={
            "model_uri": f"models:/{target.model_name}/{version}",
            "alias": settings.alias,
            "mlflow_run_id": mlflow_run,
            "baseline_uri": baseline_uri,
            "feature_table_version": feature_version,
        },
    )


def training_rows(spark: SparkSession, ref: TableRef, run_date: date) -> tuple[pd.DataFrame, int]:
    """The labelled training rows (pandas, on the driver) and the features version read."""
    feature_version = io.current_version(spark, ref)
    if feature_version is None:
        raise DataError(f"{ref}: features table does not exist")
    current = io.read_partition(spark, ref, "as_of_date", run_date, feature_version)
    try:
        later = io.read_partition(spark, ref, "as_of_date", label_date(run_date), feature_version)
    except DataError as exc:
        raise DataError(
            f"{exc}; the churn label of {run_date} needs the features of "
            f"{label_date(run_date)} (no purchase in the 30 days after the run date)"
        ) from exc
    # Training happens on the driver: scikit-learn needs the rows in memory.
    rows: pd.DataFrame = add_target(current, later).toPandas()
    return rows.sort_values("customer_id", ignore_index=True), feature_version


def baseline_frame(
    rows: pd.DataFrame, frame: pd.DataFrame, pipeline: Any, max_rows: int, seed: int
) -> pd.DataFrame:
    """The monitoring baseline: model inputs, `score`, predicted `label` and observed `target`.

    At most `max_rows` rows, a seeded sample of the rows sorted by customer, so it is
    deterministic.
    """
    keep = (
        frame.index if len(frame) <= max_rows else frame.sample(max_rows, random_state=seed).index
    )
    sample = frame.loc[keep].sort_index()
    scored = SklearnPredictor(pipeline).predict(sample)
    return pd.concat(
        [rows.loc[sample.index, ["customer_id"]], sample, scored, rows.loc[sample.index, [TARGET]]],
        axis=1,
    ).reset_index(drop=True)


def _log_and_register(
    target: MlflowTarget,
    pipeline: Any,
    frame: pd.DataFrame,
    baseline: pd.DataFrame,
    tags: dict[str, str],
) -> tuple[str, str, str]:
    """Log model and baseline in one MLflow run; return (version, baseline URI, run id)."""
    import mlflow

    experiment_id = ensure_experiment(target)
    with mlflow.start_run(experiment_id=experiment_id, run_name=tags["run_id"], tags=tags) as run:
        mlflow.log_params({"training_rows": len(frame), "baseline_rows": len(baseline)})
        info = log_sklearn_model(pipeline, frame, target.model_name)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, os.path.basename(BASELINE_ARTIFACT))
            baseline.to_parquet(path, index=False)
            mlflow.log_artifact(path, artifact_path=os.path.dirname(BASELINE_ARTIFACT))
        baseline_uri = f"{run.info.artifact_uri}/{BASELINE_ARTIFACT}"
    return str(info.registered_model_version), baseline_uri, run.info.run_id


def log_sklearn_model(
    pipeline: Any, frame: pd.DataFrame, registered_name: str, **extra: Any
) -> Any:
    """Log a fitted scikit-learn `pipeline` in the active MLflow run and register it.

    The project's one way to log a model: skops with the explicit SKOPS_TRUSTED_TYPES, a
    signature from `frame` and `predict_proba`, an input example and pinned requirements
    (no slow inference). `extra` goes to `mlflow.sklearn.log_model` (e.g. the benchmark's
    `pyfunc_predict_fn`). Returns MLflow's ModelInfo.
    """
    import mlflow.sklearn
    from mlflow.models import infer_signature

    return mlflow.sklearn.log_model(
        pipeline,
        name="model",
        signature=infer_signature(frame, pipeline.predict_proba(frame)),
        input_example=frame.head(5),
        serialization_format="skops",
        skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
        registered_model_name=registered_name,
        pip_requirements=[f"{name}=={package_version(name)}" for name in _REQUIREMENTS],
        **extra,
    )
