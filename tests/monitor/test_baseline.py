from __future__ import annotations

import pandas as pd
import pytest

from scoring.core.errors import DataError, ModelError
from scoring.monitor.baseline import download_baseline, input_features, read_baseline


def register(tmp_path, tags):
    """A registered model version whose run holds baseline/baseline.parquet."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("e", artifact_location=str(tmp_path / "art"))
    run = client.create_run(experiment)
    folder = tmp_path / "baseline"
    folder.mkdir()
    pd.DataFrame({"x": [1.0, 2.0], "score": [0.1, 0.9]}).to_parquet(folder / "baseline.parquet")
    client.log_artifact(run.info.run_id, str(folder / "baseline.parquet"), "baseline")
    client.create_registered_model("churn")
    source = f"{run.info.artifact_uri}/baseline"
    artifact = f"{run.info.artifact_uri}/baseline/baseline.parquet"
    client.create_model_version("churn", source, run.info.run_id, tags=tags(artifact))
    return uri


def test_the_baseline_is_found_by_the_versions_tag_and_downloaded(tmp_path):
    uri = register(tmp_path, lambda artifact: {"baseline_uri": artifact})
    path = download_baseline(uri, uri, "churn", "1")
    assert pd.read_parquet(path).to_dict("list") == {"x": [1.0, 2.0], "score": [0.1, 0.9]}


def test_a_version_without_the_tag_is_a_model_error_naming_it(tmp_path):
    uri = register(tmp_path, lambda artifact: {})
    with pytest.raises(ModelError, match="model churn version 1: no 'baseline_uri' tag"):
        download_baseline(uri, uri, "churn", "1")


def test_an_unknown_version_is_a_model_error(tmp_path):
    uri = register(tmp_path, lambda artifact: {"baseline_uri": artifact})
    with pytest.raises(ModelError, match="model churn version 7: not in the registry"):
        download_baseline(uri, uri, "churn", "7")


def test_a_null_category_survives_the_crossing_to_spark(spark, tmp_path):
    path = tmp_path / "b.parquet"
    pd.DataFrame({"country": ["DE", None], "score": [0.1, 0.2]}).to_parquet(path)
    frame = read_baseline(spark, str(path), ["score"])
    assert [r["country"] for r in frame.collect()] == ["DE", None]
    assert input_features(frame, ("customer_id",), "binary") == ["country"]


def test_inputs_are_every_column_but_the_keys_outputs_and_outcome(spark, tmp_path):
    path = tmp_path / "b.parquet"
    columns = {
        "insurer_id": ["a"],
        "policy_no": [1],
        "x": [1.0],
        "label": ["hi"],
        "score": [0.7],
        "__outcome__": ["hi"],
        "target": [3.0],  # a feature may be called target: the outcome's name is reserved
        "y": [2.0],
    }
    pd.DataFrame(columns).to_parquet(path)
    frame = read_baseline(spark, str(path), ["label", "score"])
    assert input_features(frame, ("insurer_id", "policy_no"), "multiclass") == [
        "x",
        "target",
        "y",
    ]


def test_a_baseline_without_the_models_output_is_named(spark, tmp_path):
    path = tmp_path / "b.parquet"
    pd.DataFrame({"x": [1.0], "score": [0.1]}).to_parquet(path)
    with pytest.raises(DataError, match=r"b\.parquet: the baseline has no 'prediction' column"):
        read_baseline(spark, str(path), ["prediction"])
