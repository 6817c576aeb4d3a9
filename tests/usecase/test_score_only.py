"""A score-only use case: the user keeps the features table, the engine scores and monitors it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from scoring.cli import run
from scoring.core import io
from scoring.core.tables import TableRef
from scoring.runs.steps import usecase_tables
from scoring.usecase import load_usecase
from tests.conftest import make_config
from tests.usecase.factory import usecase_doc, write_usecase

pytestmark = pytest.mark.slow
D1, D2 = date(2026, 3, 1), date(2026, 3, 2)


def features(spark, path: Path) -> pd.DataFrame:
    """The user's own table: `snapshot_day` is its as-of column; 50 accounts per day."""
    rng = np.random.default_rng(2)
    rows = [
        (f"A{i:03d}", day, float(rng.normal()), float(rng.normal()), "web" if i % 2 else "shop")
        for day in (D1, D2)
        for i in range(50)
    ]
    frame = spark.createDataFrame(
        rows, "account_id string, snapshot_day date, x double, y double, channel string"
    )
    io.write_delta(
        frame,
        TableRef("features", path=str(path)),
        "overwrite",
        {"run_id": "user"},
        None,
        ("snapshot_day",),
    )
    return frame.toPandas()


@pytest.fixture(scope="module")
def kept(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("kept")
    table = root / "their_features"
    frame = features(spark, table)
    doc = usecase_doc(
        name="accounts", entity=["account_id"], sources=None, train=None,
        features={"table": str(table), "as_of_column": "snapshot_day"},
        model={"name": "accounts_model", "task": "binary", "threshold": 0.7},
    )  # fmt: skip
    folder = write_usecase(root / "uc", doc)
    config = make_config(root / "lake")
    inputs = frame[["x", "y"]]
    model = LogisticRegression().fit(inputs, (frame["x"] + frame["y"] > 0).astype(int))
    mlflow.set_tracking_uri(config.tracking_uri)
    mlflow.set_registry_uri(config.registry_uri)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model, name="model", serialization_format="skops",
            signature=mlflow.models.infer_signature(inputs, model.predict_proba(inputs)),
            registered_model_name="accounts_model",
        )  # fmt: skip
    mlflow.MlflowClient(config.tracking_uri, config.registry_uri).set_registered_model_alias(
        "accounts_model", "champion", info.registered_model_version
    )
    common = ["--usecase", str(folder), "--set", f"storage.root={root / 'lake'}"]
    codes = {
        "ingest": run(["ingest", *common, "--run-date", D1.isoformat()]),
        "baseline": run(["baseline", *common, "--run-date", D1.isoformat()]),
        "pipeline": run(["pipeline", *common, "--run-date", D2.isoformat()]),
    }
    tables = usecase_tables(config, load_usecase(folder))
    return codes, tables, model, frame


def test_a_score_only_use_case_has_nothing_to_ingest_and_says_so(kept):
    assert kept[0]["ingest"] == 2


def test_the_pipeline_scores_and_monitors_the_users_table_only(spark, kept):
    codes, tables, _, _ = kept
    assert (codes["baseline"], codes["pipeline"]) == (0, 0)
    runs = io.read_table(spark, tables["runs"]).where("status = 'succeeded'").collect()
    assert sorted(r["step"] for r in runs) == ["baseline", "monitor", "score"]
    assert set(tables.refs) == {"quarantine", "features", "scores", "scores_current",
                                "score_errors", "drift_metrics", "model_quality", "model_comparison",
                                "runs"}  # fmt: skip


def test_scores_carry_the_users_as_of_column_as_as_of_date_and_the_threshold(spark, kept):
    _, tables, model, frame = kept
    scores: pd.DataFrame = io.read_table(spark, tables["scores"]).toPandas()
    scores = scores.sort_values("account_id")
    day2 = frame[frame["snapshot_day"] == D2].sort_values("account_id")
    assert set(scores["as_of_date"]) == {D2}
    expected = model.predict_proba(day2[["x", "y"]])[:, 1]
    assert np.allclose(scores["score"].to_numpy(), expected)
    assert scores["label"].tolist() == [int(p >= 0.7) for p in expected]


def test_monitoring_reads_the_users_table_by_its_as_of_column(spark, kept):
    _, tables, _, _ = kept
    drift = io.read_table(spark, tables["drift_metrics"]).collect()
    assert {r["feature"] for r in drift} >= {"x", "y", "score", "__dataset__"}
    assert {r["date"] for r in drift} == {D2}
