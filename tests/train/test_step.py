from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import skops.io
from mlflow.tracking import MlflowClient

from scoring.churn_model import with_churn_target
from scoring.core.errors import DataError
from scoring.model.adapter import SKOPS_TRUSTED_TYPES
from scoring.model.registry import download_model, mlflow_target, resolve_model
from scoring.train.step import TrainSettings, run_train
from tests.helpers import assert_frames_equal
from tests.model_fixtures import RUN_DATE, feature_row, features_frame, write_features


def test_churn_target_is_one_without_purchases_in_the_next_30_days(spark):
    now = features_frame(spark, [feature_row(c, RUN_DATE) for c in (1, 2, 3)])
    later = features_frame(
        spark,
        [
            feature_row(1, date(2026, 3, 31), txn_count_30d=0),
            feature_row(2, date(2026, 3, 31), txn_count_30d=4),
        ],
    )
    actual = with_churn_target(now, later).select("customer_id", "target")
    expected = spark.createDataFrame([("C001", 1), ("C002", 0)], "customer_id string, target int")
    assert_frames_equal(actual, expected)


def test_train_fails_naming_the_missing_label_partition(spark, config):
    write_features(spark, config, [feature_row(c, RUN_DATE) for c in range(4)])
    settings = TrainSettings("champion", 10, 7)
    with pytest.raises(DataError, match="as_of_date=2026-03-31"):
        run_train(spark, config.table("features"), mlflow_target(config), RUN_DATE, "t", settings)


@pytest.mark.slow
def test_trained_model_is_registered_with_the_champion_alias_and_run_tags(trained):
    target = mlflow_target(trained)
    version = MlflowClient(target.tracking_uri).get_model_version_by_alias(
        "scoring_churn", "champion"
    )
    assert (str(version.version), version.tags["run_date"], version.tags["run_id"]) == (
        "1",
        "2026-03-01",
        "train-1",
    )


@pytest.mark.slow
def test_baseline_parquet_holds_the_sampled_inputs_scores_and_target(trained):
    target = mlflow_target(trained)
    tags = MlflowClient(target.tracking_uri).get_model_version("scoring_churn", "1").tags
    baseline = pd.read_parquet(tags["baseline_uri"])
    assert len(baseline) == 30
    assert list(baseline.columns[:3]) == ["customer_id", "segment", "country"]
    assert list(baseline.columns[-3:]) == ["score", "label", "target"]


@pytest.mark.slow
def test_logged_model_needs_exactly_the_trusted_types_written_in_code(trained):
    target = mlflow_target(trained)
    folder = download_model(target, resolve_model(target, "models:/scoring_churn/1"))
    untrusted = skops.io.get_untrusted_types(file=f"{folder}/model.skops")
    assert sorted(untrusted) == sorted(SKOPS_TRUSTED_TYPES)
