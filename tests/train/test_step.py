from __future__ import annotations

import shutil
from datetime import date

import pandas as pd
import pytest
import skops.io
from mlflow.tracking import MlflowClient
from sklearn.ensemble import RandomForestClassifier

from scoring.core.errors import DataError, ModelError, UseCaseCodeError, UseCaseError
from scoring.model.registry import download_model, mlflow_target, resolve_model
from scoring.train.register import log_sklearn
from scoring.train.step import TrainSettings, run_train
from scoring.usecase import load_usecase
from tests.conftest import CHURN_DIR, churn_tables
from tests.model_fixtures import RUN_DATE, feature_row, write_features
from tests.usecase.factory import usecase_doc, write_usecase

SETTINGS = TrainSettings("champion", 10, 7)


def train(spark, config, usecase, run_date=RUN_DATE):
    tables = churn_tables(config)
    target = mlflow_target(config, usecase.name)
    return run_train(spark, tables, target, usecase, usecase.model.name, run_date, "t", SETTINGS)


def test_train_fails_naming_the_missing_label_partition(spark, config, churn):
    write_features(spark, config, [feature_row(c, RUN_DATE) for c in range(4)])
    with pytest.raises(DataError, match=r"as_of_date=2026-03-31.*the churn label of 2026-03-01"):
        train(spark, config, churn)


def test_a_use_case_without_a_trainer_says_how_a_model_gets_in(spark, config, tmp_path):
    usecase = load_usecase(write_usecase(tmp_path / "uc", usecase_doc(train=None)))
    with pytest.raises(UseCaseError, match=r"train: .*declares no trainer.*scoring baseline"):
        train(spark, config, usecase)


def churn_copy(folder, old: str, new: str):
    """The churn demo copied to `folder`, with `old` replaced by `new` in its train.py."""
    shutil.copytree(CHURN_DIR, folder)
    code = folder / "train.py"
    assert old in code.read_text()
    code.write_text(code.read_text().replace(old, new))
    return load_usecase(folder)


def test_a_fit_function_that_raises_is_named(spark, config, tmp_path):
    rows = [feature_row(c, RUN_DATE) for c in range(6)]
    rows += [feature_row(c, date(2026, 3, 31), txn_count_30d=c % 2) for c in range(6)]
    write_features(spark, config, rows)
    usecase = churn_copy(
        tmp_path / "uc",
        "return build_pipeline(",
        "raise RuntimeError('boom')\n    return build_pipeline(",
    )
    with pytest.raises(UseCaseCodeError, match=r"train\.py:fit raised RuntimeError: boom"):
        train(spark, config, usecase)


def test_a_label_function_that_returns_no_label_column_is_named(spark, config, tmp_path):
    write_features(spark, config, [feature_row(c, RUN_DATE) for c in range(4)])
    usecase = churn_copy(
        tmp_path / "uc", "data.features(label_date(as_of))", "data.features(as_of)"
    )
    code = usecase.folder / "train.py"
    code.write_text(code.read_text().replace('.alias("label")', '.alias("outcome")'))
    with pytest.raises(
        UseCaseCodeError, match=r"train\.py:label must return .*\['customer_id', 'label'\]"
    ):
        train(spark, config, load_usecase(usecase.folder))


def test_a_model_needing_unreviewed_skops_types_is_refused_at_training():
    forest = RandomForestClassifier(n_estimators=2).fit(pd.DataFrame({"x": [0.0, 1.0]}), [0, 1])
    with pytest.raises(ModelError, match=r"sklearn\.tree\._tree\.Tree.*model\.skops_trusted_types"):
        log_sklearn(forest, ("numpy.dtype",), {})


@pytest.mark.slow
def test_trained_model_is_registered_with_the_champion_alias_and_run_tags(trained):
    target = mlflow_target(trained, "churn")
    version = MlflowClient(target.tracking_uri, target.registry_uri).get_model_version_by_alias(
        "scoring_churn", "champion"
    )
    assert (str(version.version), version.tags["run_date"], version.tags["run_id"]) == (
        "1",
        "2026-03-01",
        "train-1",
    )
    assert version.tags["usecase"] == "churn"


@pytest.mark.slow
def test_baseline_parquet_holds_the_held_out_keys_inputs_score_and_outcome(trained):
    target = mlflow_target(trained, "churn")
    client = MlflowClient(target.tracking_uri, target.registry_uri)
    version = client.get_model_version("scoring_churn", "1")
    baseline = pd.read_parquet(version.tags["baseline_uri"])
    # 40 customers, 20 % held out by a hash of the key: a few, not all, not none.
    assert 2 <= len(baseline) <= 16
    assert list(baseline.columns[:3]) == ["customer_id", "segment", "country"]
    assert list(baseline.columns[-2:]) == ["score", "__outcome__"]
    # The outcome is the fixture's label: customers 3k and 4k churn (no purchase at D + 30).
    numbers = baseline["customer_id"].str[1:].astype(int)
    expected = ((numbers % 3 == 0) | (numbers % 4 == 0)).astype(int)
    assert baseline["__outcome__"].tolist() == expected.tolist()
    assert baseline["customer_id"].tolist() == sorted(baseline["customer_id"].tolist())
    # The held-out metrics are logged to the training run, for people.
    assert version.run_id is not None
    run = client.get_run(version.run_id)
    assert {"holdout_roc_auc", "holdout_log_loss", "holdout_brier"} <= set(run.data.metrics)
    assert 0.0 <= run.data.metrics["holdout_roc_auc"] <= 1.0
    assert run.data.params["training_rows"] == str(40 - len(baseline))


@pytest.mark.slow
def test_logged_model_needs_only_reviewed_types(trained):
    target = mlflow_target(trained, "churn")
    folder = download_model(target, resolve_model(target, "models:/scoring_churn/1"))
    untrusted = skops.io.get_untrusted_types(file=f"{folder}/model.skops")
    assert sorted(untrusted) == [
        "numpy.dtype",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    ]


def test_the_label_date_of_the_demo_is_thirty_days_later(churn):
    from scoring.usecase import import_module

    assert import_module(churn, "train").label_date(RUN_DATE) == date(2026, 3, 31)


@pytest.mark.slow
def test_without_a_held_out_share_every_row_trains_and_the_baseline_has_no_outcome(
    spark, config, churn
):
    from tests.model_fixtures import training_features

    write_features(spark, config, training_features())
    tables = churn_tables(config)
    target = mlflow_target(config, churn.name)
    settings = TrainSettings("champion", 100, 7, holdout_share=0.0)
    result = run_train(spark, tables, target, churn, churn.model.name, RUN_DATE, "t", settings)
    assert result.details["held_out_rows"] == 0
    client = MlflowClient(target.tracking_uri, target.registry_uri)
    baseline = pd.read_parquet(client.get_model_version("scoring_churn", "1").tags["baseline_uri"])
    assert len(baseline) == 40
    assert "__outcome__" not in baseline.columns
