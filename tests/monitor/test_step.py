from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from pyspark.sql import functions as F
from pyspark.sql import types as T

from scoring.cli import run
from scoring.core import io
from scoring.core.errors import DataError
from scoring.monitor.step import MonitorRequest, run_monitor
from scoring.runs.steps import usecase_tables
from scoring.usecase import load_usecase
from tests.helpers import labels, samples
from tests.usecase.factory import usecase_doc, write_usecase

DAY1, DAY2 = date(2026, 3, 1), date(2026, 3, 2)
FEATURES = T.StructType(
    [
        T.StructField("customer_id", T.StringType(), False),
        T.StructField("as_of_date", T.DateType(), False),
        T.StructField("x", T.DoubleType(), True),
        T.StructField("y", T.IntegerType(), True),
        T.StructField("country", T.StringType(), True),
    ]
)
SCORES = T.StructType(
    [
        T.StructField("customer_id", T.StringType(), False),
        T.StructField("as_of_date", T.DateType(), False),
        T.StructField("score", T.DoubleType(), False),
        T.StructField("model_name", T.StringType(), False),
        T.StructField("model_version", T.StringType(), False),
        T.StructField("scored_at", T.TimestampType(), False),
    ]
)
N = 40


def write_baseline(folder: Path) -> str:
    """Training rows: x and y spread over 0..39, two countries, scores spread over [0, 1)."""
    frame = pd.DataFrame(
        {
            "x": [float(i) for i in range(N)],
            "y": list(range(N)),
            "country": ["DE" if i % 2 else "FR" for i in range(N)],
            "score": [i / N for i in range(N)],
            "label": [i % 2 for i in range(N)],
        }
    )
    path = folder / "baseline.parquet"
    frame.to_parquet(path)
    return str(path)


def day_rows(day: date, x_shift: float):
    features = [
        (f"C{i:07d}", day, float(i) + x_shift, i, "DE" if i % 2 else "FR") for i in range(N)
    ]
    scores = [(f"C{i:07d}", day, i / N, "m", "1", datetime(2026, 3, 3, 1, 0)) for i in range(N)]
    return features, scores


def score_only(folder: Path, features: Path) -> Path:
    """A use case that scores (and monitors) a features table the user keeps themselves."""
    doc = usecase_doc(
        name="kept",
        entity=["customer_id"],
        sources=None,
        train=None,
        features={"table": str(features)},
        model={"name": "m", "task": "binary"},
    )
    return write_usecase(folder, doc)


@pytest.fixture
def tables(spark, config, tmp_path):
    usecase = load_usecase(score_only(tmp_path / "uc", tmp_path / "features"))
    refs = usecase_tables(config, usecase)
    f1, s1 = day_rows(DAY1, 0.0)
    f2, s2 = day_rows(DAY2, 100.0)  # x moves beyond every baseline bin on day 2
    meta = {"run_id": "test"}
    io.write_delta(spark.createDataFrame(f1 + f2, FEATURES), refs["features"], "overwrite", meta)
    io.write_delta(spark.createDataFrame(s1 + s2, SCORES), refs["scores"], "overwrite", meta)
    return refs


def monitor(spark, config, tables, baseline, day=DAY2, run_id="monitor-1"):
    request = MonitorRequest("m", ("customer_id",), "binary")
    return run_monitor(spark, tables, config.monitor, request, lambda v: baseline, day, run_id)


def statuses(spark, ref, comparison):
    rows = (
        io.read_table(spark, ref)
        .where((F.col("comparison") == comparison) & (F.col("metric") == "psi"))
        .collect()
    )
    return {r["feature"]: r["status"] for r in rows}


@pytest.mark.slow
def test_a_shifted_feature_alerts_and_unshifted_ones_do_not(spark, config, tables, tmp_path):
    result = monitor(spark, config, tables, write_baseline(tmp_path))
    assert statuses(spark, tables["drift_metrics"], "baseline") == {
        "x": "alert",
        "y": "ok",
        "country": "ok",
        "score": "ok",
    }
    assert statuses(spark, tables["drift_metrics"], "previous")["x"] == "alert"
    assert result.details["dataset_drift"] is True  # 1 of 3 inputs >= 0.3
    assert result.rows_in == N
    assert result.table_versions == {"drift_metrics": 1}
    assert result.details["source_versions"] == {"features": 0, "scores": 0}


@pytest.mark.slow
def test_rerunning_a_date_replaces_its_rows(spark, config, tables, tmp_path):
    baseline = write_baseline(tmp_path)
    first = monitor(spark, config, tables, baseline, run_id="monitor-1")
    monitor(spark, config, tables, baseline, run_id="monitor-2")
    rows = io.read_table(spark, tables["drift_metrics"]).select("run_id").collect()
    assert first.rows_out == len(rows)
    assert {r["run_id"] for r in rows} == {"monitor-2"}


def test_a_date_without_scores_is_an_error_naming_the_table(spark, config, tables, tmp_path):
    with pytest.raises(DataError, match="no scores of model m for as_of_date 2026-03-09"):
        monitor(spark, config, tables, write_baseline(tmp_path), day=date(2026, 3, 9))


def register_baseline(config, tmp_path):
    client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.registry_uri)
    experiment = client.create_experiment("e", artifact_location=config.artifact_root)
    run = client.create_run(experiment)
    client.log_artifact(run.info.run_id, write_baseline(tmp_path), "baseline")
    artifact = f"{run.info.artifact_uri}/baseline/baseline.parquet"
    client.create_registered_model("m")
    client.create_model_version(
        "m", f"{run.info.artifact_uri}/baseline", run.info.run_id, tags={"baseline_uri": artifact}
    )


@pytest.mark.slow
def test_monitor_command_writes_metrics_runs_and_prom_then_fails_on_alert(
    spark, config, tables, tmp_path
):
    register_baseline(config, tmp_path)
    argv = [
        "monitor",
        "--usecase",
        str(tmp_path / "uc"),
        "--run-date",
        "2026-03-02",
        "--fail-on-alert",
        "--set",
        f"storage.root={config.storage.root}",
        "--set",
        "spark.shuffle_partitions=2",
    ]
    assert run(argv) == 3
    runs = io.read_table(spark, tables["runs"]).collect()
    assert [(r["usecase"], r["step"], r["status"]) for r in runs] == [
        ("kept", "monitor", "succeeded")
    ]
    alerts = io.read_table(spark, tables["drift_metrics"]).where(F.col("status") == "alert")
    assert alerts.where(F.col("feature") == "x").limit(1).collect()
    prom = samples((tmp_path / "lakehouse" / "metrics" / "kept.prom").read_text())
    assert prom[("scoring_step_last_run_success", labels(usecase="kept", step="monitor"))] == 1
    drift = labels(usecase="kept", step="monitor", model="m", comparison="baseline")
    assert prom[("scoring_dataset_drift", drift)] == 1
    client = MlflowClient(config.tracking_uri, config.registry_uri)
    experiment = client.get_experiment_by_name("scoring-kept")
    assert experiment is not None
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.data.metrics["drift.baseline.x.psi"] > 0.25
    assert logged.info.run_name.startswith("monitor-")
