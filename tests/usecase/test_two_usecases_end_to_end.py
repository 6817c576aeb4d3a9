"""A use case nobody on the team wrote, through the CLI, next to the demo in one lakehouse.

`claims_cost` (tests/usecases/claims) differs from the churn demo on every axis: composite
key, Parquet + CSV sources, a dimension without a version column, a DATE event time, SQL
features, a regression model trained and registered by the test itself, and a model that
reaches the engine only through `scoring baseline`. Both run in the same lakehouse and
registry; neither changes the other's tables.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from pyspark.sql import functions as F
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from scoring.cli import run
from scoring.core import io
from scoring.runs.steps import usecase_tables
from scoring.usecase import load_usecase
from tests.conftest import CHURN_DIR, make_config
from tests.usecases.claims_data import DAY1, DAY2, write_claims_drops

pytestmark = pytest.mark.slow
CLAIMS_DIR = Path(__file__).resolve().parents[1] / "usecases" / "claims"
KEY = ["insurer_id", "policy_no"]


def cli(root: Path, usecase: Path, *args: str) -> int:
    return run(
        [
            args[0],
            "--usecase",
            str(usecase),
            "--set",
            f"storage.root={root}",
            "--set",
            "spark.shuffle_partitions=2",
            *args[1:],
        ]
    )


def versions(spark, config, usecase_dir: Path) -> dict[str, int | None]:
    tables = usecase_tables(config, load_usecase(usecase_dir))
    return {name: io.current_version(spark, tables[name]) for name in tables}


def register_regressor(config, features: pd.DataFrame) -> str:
    """Train a claims-cost regressor on the day-1 features, as a team would elsewhere."""
    inputs = ["product", "region", "insured_value", "tenure_days", "claims_365d", "claimed_365d"]
    frame = features[inputs].copy()
    frame["region"] = frame["region"].astype(object).where(frame["region"].notna(), np.nan)
    for column in inputs[2:]:
        frame[column] = frame[column].astype("float64")
    target = 0.002 * frame["insured_value"] + 150.0 * frame["claims_365d"]
    encode = Pipeline(
        [
            ("fill", SimpleImputer(strategy="constant", fill_value="none")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    model = Pipeline(
        [
            (
                "prepare",
                ColumnTransformer(
                    [("text", encode, ["product", "region"])], remainder="passthrough"
                ),
            ),
            ("regress", HistGradientBoostingRegressor(max_iter=30, random_state=1)),
        ]
    ).fit(frame, target)
    mlflow.set_tracking_uri(config.tracking_uri)
    mlflow.set_registry_uri(config.registry_uri)
    mlflow.set_experiment("claims-elsewhere")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(frame, model.predict(frame)),
            serialization_format="skops",
            skops_trusted_types=[
                "numpy.dtype",
                "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
            ],
            registered_model_name="claims_cost_model",
            pip_requirements=["scikit-learn", "skops"],
        )
    client = mlflow.MlflowClient(config.tracking_uri, config.registry_uri)
    client.set_registered_model_alias("claims_cost_model", "serving", info.registered_model_version)
    return str(info.registered_model_version)


@pytest.fixture(scope="module")
def lakehouse(spark, tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("two") / "lakehouse"
    config = make_config(root)
    out: dict[str, Any] = {"root": root, "config": config, "codes": {}}
    codes = out["codes"]
    codes["demo-data"] = cli(
        root,
        CHURN_DIR,
        "generate-demo-data",
        "--customers",
        "150",
        "--days",
        "2",
        "--history-days",
        "60",
        "--start",
        "2026-03-01",
    )
    codes["demo-pipeline"] = cli(
        root, CHURN_DIR, "pipeline", "--run-date", "2026-03-01", "--train-if-missing"
    )
    out["demo_before"] = versions(spark, config, CHURN_DIR)
    out["drops"] = write_claims_drops(Path(config.raw_root("claims_cost")))
    codes["ingest1"] = cli(root, CLAIMS_DIR, "ingest", "--run-date", DAY1.isoformat())
    codes["features1"] = cli(root, CLAIMS_DIR, "features", "--run-date", DAY1.isoformat())
    tables = usecase_tables(config, load_usecase(CLAIMS_DIR))
    day1 = io.read_table(spark, tables["features"]).where(F.col("as_of_date") == DAY1)
    out["version"] = register_regressor(config, day1.toPandas())
    for step, day in [
        ("baseline", DAY1),
        ("score", DAY1),
        ("ingest", DAY2),
        ("features", DAY2),
        ("score", DAY2),
        ("monitor", DAY2),
    ]:
        codes[f"{step}-{day}"] = cli(root, CLAIMS_DIR, step, "--run-date", day.isoformat())
    out["demo_after"] = versions(spark, config, CHURN_DIR)
    out["claims_before"] = versions(spark, config, CLAIMS_DIR)
    codes["demo-score"] = cli(root, CHURN_DIR, "score", "--run-date", "2026-03-01")
    out["claims_after"] = versions(spark, config, CLAIMS_DIR)
    out["tables"] = tables
    return out


def test_every_command_of_both_use_cases_succeeds(lakehouse):
    assert set(lakehouse["codes"].values()) == {0}, lakehouse["codes"]


def test_the_claims_tables_live_in_their_own_folder(lakehouse):
    tables, root = lakehouse["tables"], lakehouse["root"]
    assert {str(tables[n]) for n in tables} == {
        f"{root}/claims_cost/{n}"
        for n in (
            "bronze_policies",
            "bronze_claims",
            "quarantine",
            "features",
            "scores",
            "scores_current",
            "score_errors",
            "drift_metrics",
            "model_quality",
            "model_comparison",
            "runs",
        )
    }


def test_running_claims_changed_no_demo_table_and_the_demo_no_claims_table(lakehouse):
    assert lakehouse["demo_after"] == lakehouse["demo_before"]
    assert lakehouse["claims_after"] == lakehouse["claims_before"]


def test_parquet_and_csv_records_are_all_accounted_for(spark, lakehouse):
    tables = lakehouse["tables"]
    quarantine = io.read_table(spark, tables["quarantine"]).collect()
    assert [(r["source"], r["reasons"]) for r in quarantine] == [
        ("claims", ["bad_type:reported_on"])
    ]
    claims = io.read_table(spark, tables["bronze_claims"])
    assert claims.count() == lakehouse["drops"]["day1"] + lakehouse["drops"]["day2"] - 1
    policies = io.read_table(spark, tables["bronze_policies"])
    # 120 initial policies; day 2 adds a new version of INS01/1001 and the new INS01/5000.
    assert policies.count() == 122
    assert policies.where("insurer_id = 'INS01' AND policy_no = 1001").count() == 2


def test_features_follow_the_sql_with_a_composite_key_and_point_in_time_sources(spark, lakehouse):
    features = io.read_table(spark, lakehouse["tables"]["features"])
    day1 = {
        (r["insurer_id"], r["policy_no"]): r
        for r in features.where(F.col("as_of_date") == DAY1).collect()
    }
    day2 = {
        (r["insurer_id"], r["policy_no"]): r
        for r in features.where(F.col("as_of_date") == DAY2).collect()
    }
    assert len(day1) == 120 and len(day2) == 121
    assert ("INS01", 5000) not in day1  # delivered (and starting) on day 2
    assert (day1[("INS01", 1001)]["region"], day2[("INS01", 1001)]["region"]) == ("south", "north")
    # CL9003 is dated day 1 but was delivered on day 2: day 1's features never saw it.
    claims = io.read_table(spark, lakehouse["tables"]["bronze_claims"])
    mine = claims.where("insurer_id = 'INS01' AND policy_no = 1003").collect()

    def known(as_of: date) -> int:
        return sum(
            r["_delivery_date"] <= as_of and as_of - timedelta(days=365) < r["reported_on"] <= as_of
            for r in mine
        )

    assert "CL9003" in {r["claim_id"] for r in mine}
    assert day1[("INS01", 1003)]["claims_365d"] == known(DAY1)
    assert day2[("INS01", 1003)]["claims_365d"] == known(DAY2)


def test_scores_hold_the_regression_prediction_per_composite_key_and_date(spark, lakehouse):
    scores = io.read_table(spark, lakehouse["tables"]["scores"])
    assert scores.columns[:4] == ["insurer_id", "policy_no", "as_of_date", "prediction"]
    counts = {r["as_of_date"]: r["count"] for r in scores.groupBy("as_of_date").count().collect()}
    assert counts == {DAY1: 120, DAY2: 121}
    assert scores.where(F.col("prediction").isNull()).isEmpty()
    assert {r["model_version"] for r in scores.collect()} == {lakehouse["version"]}
    current = io.read_table(spark, lakehouse["tables"]["scores_current"])
    assert current.count() == 121
    assert current.groupBy(*KEY).count().where("count > 1").isEmpty()


def test_monitoring_of_claims_compares_the_prediction_with_the_recorded_baseline(spark, lakehouse):
    drift = io.read_table(spark, lakehouse["tables"]["drift_metrics"])
    rows = drift.where((F.col("date") == DAY2) & (F.col("comparison") == "baseline")).collect()
    assert {r["usecase"] for r in rows} == {"claims_cost"}
    features = {r["feature"] for r in rows}
    assert {"prediction", "insured_value", "claims_365d", "product", "__dataset__"} <= features
    psi = [r for r in rows if r["metric"] == "psi"]
    assert {(r["threshold_warn"], r["threshold_alert"]) for r in psi} == {(0.2, 0.4)}


def test_each_use_case_has_its_own_runs_and_prometheus_file(spark, lakehouse):
    config = lakehouse["config"]
    runs = io.read_table(spark, lakehouse["tables"]["runs"]).collect()
    assert {r["usecase"] for r in runs} == {"claims_cost"}
    assert [r["step"] for r in sorted(runs, key=lambda r: r["started_at"])] == [
        "ingest",
        "features",
        "baseline",
        "score",
        "ingest",
        "features",
        "score",
        "monitor",
    ]
    prom = Path(config.prometheus_file("claims_cost")).read_text()
    assert 'usecase="claims_cost"' in prom and 'usecase="churn"' not in prom
    assert Path(config.prometheus_file("churn")).is_file()


def test_the_baseline_is_tagged_on_the_registered_version(lakehouse):
    config = lakehouse["config"]
    client = mlflow.MlflowClient(config.tracking_uri, config.registry_uri)
    tags = client.get_model_version("claims_cost_model", lakehouse["version"]).tags
    assert tags["baseline_run_date"] == DAY1.isoformat()
    assert tags["baseline_uri"].endswith("baseline/baseline.parquet")
    assert tags["usecase"] == "claims_cost"
