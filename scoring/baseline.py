"""The training baseline of a registered model version: found by tag, read into Spark.

`scoring train` logs `baseline/baseline.parquet` (the training rows' model inputs, `score`,
`label` and the observed `target`) in the model's MLflow run and tags the registered version
with `baseline_uri`.
"""

from __future__ import annotations

import tempfile

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from scoring.errors import DataError, ModelError

BASELINE_TAG = "baseline_uri"
# Columns of the baseline that are not model inputs (`target` is the observed outcome).
NON_INPUTS = ("score", "label", "target", "customer_id", "as_of_date", "feature_run_id")


def baseline_uri(tracking_uri: str, registry_uri: str, model_name: str, version: str) -> str:
    """The `baseline_uri` tag of registered model version `model_name`/`version`."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    try:
        model_version = client.get_model_version(model_name, version)
    except MlflowException as exc:
        raise ModelError(f"model {model_name} version {version}: not in the registry") from exc
    uri = (model_version.tags or {}).get(BASELINE_TAG)
    if not uri:
        raise ModelError(
            f"model {model_name} version {version}: no '{BASELINE_TAG}' tag (train logs it)"
        )
    return str(uri)


def download_baseline(tracking_uri: str, registry_uri: str, model_name: str, version: str) -> str:
    """Download the baseline Parquet of a model version to a local temporary folder."""
    import mlflow.artifacts

    uri = baseline_uri(tracking_uri, registry_uri, model_name, version)
    target = tempfile.mkdtemp(prefix="scoring-baseline-")
    return str(
        mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=target, tracking_uri=tracking_uri
        )
    )


def read_baseline(spark: SparkSession, path: str) -> DataFrame:
    """The baseline Parquet as a Spark frame, read on the driver so any cluster can use it.

    The file lives on the driver's disk (an MLflow download), which executors may not see;
    it is a training set of modest size, so it crosses to Spark through pandas and Arrow.
    """
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the baseline Parquet ({exc})") from exc
    if "score" not in frame.columns:
        raise DataError(f"{path}: the baseline has no 'score' column")
    return spark.createDataFrame(frame)


def input_features(baseline: DataFrame) -> list[str]:
    """The model input features of a baseline: every column but score, label and keys."""
    return [c for c in baseline.columns if c not in NON_INPUTS]
