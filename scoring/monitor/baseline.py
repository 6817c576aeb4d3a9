"""The monitoring baseline of a registered model version: built, logged, found by tag, read.

A baseline is a Parquet file of rows held out of the model version's training (or, for a
model trained elsewhere, of one features date): the entity key, the model's inputs as the
model saw them, its outputs (`scoring.model.tasks.MONITORED_OUTPUTS`) and, for held-out
rows, the observed outcome `__outcome__`. It is logged as the artifact
`baseline/baseline.parquet` of an MLflow run, and the registered version is tagged with its URI (`baseline_uri`), so the monitor
finds the baseline of whatever version scored a date.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from scoring.core.errors import DataError, ModelError
from scoring.model.registry import (
    MlflowTarget,
    configure_mlflow,
    require_answer,
    require_registry,
    unreachable_error,
)
from scoring.model.tasks import MONITORED_OUTPUTS, Outputs, output_names

BASELINE_TAG = "baseline_uri"
BASELINE_ARTIFACT = "baseline/baseline.parquet"
# The observed outcome of a held-out row (scoring.train.holdout); a name no feature has.
TARGET = "__outcome__"


def baseline_rows(
    keys: pd.DataFrame,
    inputs: pd.DataFrame,
    outputs: Outputs,
    task: str,
    target: pd.Series | None = None,
) -> pd.DataFrame:
    """One baseline frame: keys, inputs, the task's monitored outputs, the target if known."""
    parts = [keys.reset_index(drop=True), inputs.reset_index(drop=True)]
    parts.append(pd.DataFrame({n: outputs.columns[n] for n in MONITORED_OUTPUTS[task]}))
    if target is not None:
        parts.append(pd.DataFrame({TARGET: target.to_numpy()}))
    return pd.concat(parts, axis=1)


def sample_positions(rows: int, max_rows: int, seed: int) -> list[int]:
    """At most `max_rows` row positions out of `rows`, seeded and sorted (deterministic)."""
    if rows <= max_rows:
        return list(range(rows))
    return sorted(pd.Series(range(rows)).sample(max_rows, random_state=seed).tolist())


def log_baseline(frame: pd.DataFrame) -> str:
    """Log `frame` as `baseline/baseline.parquet` of the active MLflow run; return its URI."""
    import mlflow

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, os.path.basename(BASELINE_ARTIFACT))
        frame.to_parquet(path, index=False)
        mlflow.log_artifact(path, artifact_path=os.path.dirname(BASELINE_ARTIFACT))
    run = mlflow.active_run()
    assert run is not None  # called inside mlflow.start_run
    return f"{run.info.artifact_uri}/{BASELINE_ARTIFACT}"


def tag_version(
    target: MlflowTarget, model_name: str, version: str, tags: Mapping[str, str]
) -> None:
    """Set tags on a registered model version (the baseline's URI among them)."""
    client = configure_mlflow(target)
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, value)


def baseline_uri(tracking_uri: str, registry_uri: str, model_name: str, version: str) -> str:
    """The `baseline_uri` tag of registered model version `model_name`/`version`.

    Raises:
        RegistryNotFoundError: a local registry that does not exist (it is not created).
        MlflowUnreachableError: the registry did not answer.
        ModelError: no such version, or it has no baseline tag.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    require_registry(registry_uri, f"model {model_name} version {version}")
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    try:
        model_version = client.get_model_version(model_name, version)
    except MlflowException as exc:
        unreachable = unreachable_error(exc, "registry", registry_uri)
        if unreachable is not None:
            raise unreachable from exc
        raise ModelError(f"model {model_name} version {version}: not in the registry") from exc
    uri = (model_version.tags or {}).get(BASELINE_TAG)
    if not uri:
        raise ModelError(
            f"model {model_name} version {version}: no '{BASELINE_TAG}' tag; record one with "
            f"`scoring baseline --run-date D --model models:/{model_name}/{version}`"
        )
    return str(uri)


def download_baseline(tracking_uri: str, registry_uri: str, model_name: str, version: str) -> str:
    """Download the baseline Parquet of a model version to a local temporary folder."""
    import mlflow.artifacts

    uri = baseline_uri(tracking_uri, registry_uri, model_name, version)
    target = tempfile.mkdtemp(prefix="scoring-baseline-")
    return require_answer(
        tracking_uri,
        "tracking server",
        lambda: str(
            mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=target, tracking_uri=tracking_uri
            )
        ),
    )


def read_baseline(spark: SparkSession, path: str, outputs: Sequence[str]) -> DataFrame:
    """The baseline Parquet as a Spark frame, read on the driver so any cluster can use it.

    The file lives on the driver's disk (an MLflow download), which executors may not see;
    it is a sample of modest size, so it crosses to Spark through pandas and Arrow.

    Raises:
        DataError: the file cannot be read or lacks one of the model's `outputs`.
    """
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the baseline Parquet ({exc})") from exc
    missing = [c for c in outputs if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: the baseline has no '{missing[0]}' column")
    return spark.createDataFrame(frame)


def input_features(baseline: DataFrame, entity: Sequence[str], task: str) -> list[str]:
    """The model input features of a baseline: every column but keys, outputs and target."""
    others = {*entity, *output_names(task), TARGET}
    return [c for c in baseline.columns if c not in others]
