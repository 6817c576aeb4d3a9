"""Scoring a multiclass model through the real UDF: its probabilities map crosses Arrow."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from scoring.core import io
from scoring.model.registry import ensure_experiment, mlflow_target
from scoring.score.step import ScoreRequest, run_score
from scoring.train.register import log_model
from scoring.usecase.spec import ModelSpec
from tests.conftest import churn_tables, make_config
from tests.model_fixtures import RUN_DATE, feature_row, write_features

pytestmark = pytest.mark.slow
INPUTS = ["txn_count_30d", "tenure_days"]


def test_a_multiclass_model_writes_label_its_probability_and_every_class(spark, tmp_path):
    config = make_config(tmp_path / "lake")
    rows = [feature_row(c, RUN_DATE) for c in range(30)]
    write_features(spark, config, rows)
    frame = pd.DataFrame(rows)[INPUTS].astype("float64")
    tiers = np.where(
        frame["txn_count_30d"] >= 4, "high", np.where(frame["txn_count_30d"] >= 2, "mid", "low")
    )
    model = LogisticRegression(max_iter=500).fit(frame, tiers)
    target = mlflow_target(config, "churn")
    with mlflow.start_run(experiment_id=ensure_experiment(target)):
        info = log_model(model, frame, "multiclass", "tiers", ())
    spec = ModelSpec("tiers", "champion", "multiclass")
    request = ScoreRequest(
        f"models:/tiers/{info.registered_model_version}",
        spec,
        "tiers",
        ("customer_id",),
        update_current=True,
    )
    run_score(spark, churn_tables(config), target, request, RUN_DATE, "score-m", 7)
    scored: pd.DataFrame = io.read_table(spark, churn_tables(config)["scores"]).toPandas()
    scored = scored.sort_values("customer_id", ignore_index=True)
    expected = model.predict_proba(frame)
    classes = list(model.classes_)
    assert scored["label"].tolist() == [classes[i] for i in expected.argmax(axis=1)]
    assert np.allclose(scored["score"], expected.max(axis=1))
    for got, want in zip(scored["probabilities"], expected, strict=True):
        assert dict(got).keys() == set(classes)
        assert np.allclose([dict(got)[c] for c in classes], want)
    current = io.read_table(spark, churn_tables(config)["scores_current"])
    assert current.count() == 30
