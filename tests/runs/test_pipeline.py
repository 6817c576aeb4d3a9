"""The whole chain on the demo data: every step recorded, a failed one too."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from scoring.core import io
from scoring.core.errors import DataError, RegistryNotFoundError
from scoring.runs import steps as runner
from scoring.runs.pipeline import PipelineOptions, run_pipeline
from scoring.usecase import import_module, load_usecase
from tests.conftest import CHURN_DIR, churn_tables, make_config
from tests.helpers import labels, samples

pytestmark = pytest.mark.slow

CHURN = load_usecase(CHURN_DIR)
DAY = date(2026, 3, 1)
DRIFTED_DAY = date(2026, 3, 2)  # the demo's second and last delivery drifts
MISSING_DAY = date(2026, 3, 3)  # the demo below delivers two days only


@pytest.fixture(scope="module")
def lakehouse(spark, tmp_path_factory):
    """A demo lakehouse after a pipeline run refused for want of a model (P0), successful
    runs of DAY (P1, told to train a first model) and of the drifted day (P3), then a failed
    run (P2)."""
    root = tmp_path_factory.mktemp("pipeline") / "lakehouse"
    config = make_config(root)
    import_module(CHURN, "generator").generate_demo_data(
        Path(config.raw_root("churn")),
        customers=250,
        days=2,
        seed=5,
        start=DAY,
        history_days=60,
        drift_day=1,
    )
    with pytest.raises(RegistryNotFoundError) as refused:
        run_pipeline(spark, config, CHURN, DAY, "P0")
    untouched = sorted(p.name for p in root.iterdir()), (root / "mlflow.db").exists()
    results = run_pipeline(spark, config, CHURN, DAY, "P1", PipelineOptions(train_if_missing=True))
    run_pipeline(spark, config, CHURN, DRIFTED_DAY, "P3", PipelineOptions(report=True))
    with pytest.raises(DataError) as failure:
        run_pipeline(spark, config, CHURN, MISSING_DAY, "P2")
    return config, results, failure.value, (str(refused.value), untouched)


def runs_of(spark, config, pipeline_run_id):
    runs = io.read_table(spark, churn_tables(config)["runs"])
    return runs.where(F.col("pipeline_run_id") == pipeline_run_id).orderBy("started_at").collect()


def test_without_a_model_and_not_told_to_train_the_pipeline_stops_before_any_step(lakehouse):
    *_, (error, (folders, registry_exists)) = lakehouse
    assert error.startswith("model URI 'models:/scoring_churn@champion': registry not found at ")
    assert error.endswith(
        "train a first model with `scoring pipeline --train-if-missing` (on D - 30 days) or "
        "`scoring train --run-date D`, or register a version, point alias 'champion' at it "
        "and record its baseline"
    )
    assert (folders, registry_exists) == (["churn"], False)  # the raw drops only


def test_a_first_run_told_to_trains_on_d_minus_30_then_scores_and_monitors_d(spark, lakehouse):
    _, results, *_ = lakehouse
    assert [(r.step, r.run_date) for r in results] == [
        ("ingest", DAY),
        ("features", DAY),
        ("features", date(2026, 1, 30)),
        ("train", date(2026, 1, 30)),
        ("score", DAY),
        ("monitor", DAY),
        ("quality", DAY),  # the demo declares labels: (its outcomes arrive 30 days later)
    ]


def test_the_runs_table_records_every_step_of_the_pipeline_run(spark, lakehouse):
    config, results, *_ = lakehouse
    rows = runs_of(spark, config, "P1")
    assert [(r["step"], r["status"]) for r in rows] == [(r.step, "succeeded") for r in results]
    assert [r["run_id"] for r in rows] == [r.run_id for r in results]


def test_a_failed_step_is_recorded_with_its_error_and_stops_the_run(spark, lakehouse):
    config, _, error, _ = lakehouse
    rows = runs_of(spark, config, "P2")
    assert [(r["step"], r["status"]) for r in rows] == [("ingest", "failed")]
    assert str(MISSING_DAY) in rows[0]["error"] and str(MISSING_DAY) in str(error)
    features = io.read_table(spark, churn_tables(config)["features"])
    assert features.where(F.col("as_of_date") == F.lit(MISSING_DAY)).isEmpty()


def test_every_featured_customer_of_d_is_scored_once(spark, lakehouse):
    config, *_ = lakehouse
    featured = io.read_table(spark, churn_tables(config)["features"]).where(
        F.col("as_of_date") == DAY
    )
    scores = io.read_table(spark, churn_tables(config)["scores"]).where(F.col("as_of_date") == DAY)
    assert scores.count() == featured.count() > 200
    assert scores.select("customer_id").distinct().count() == scores.count()
    assert scores.where(~F.col("score").between(0.0, 1.0)).isEmpty()


def test_drift_metrics_cover_the_score_and_every_model_input(spark, lakehouse):
    config, *_ = lakehouse
    drift = io.read_table(spark, churn_tables(config)["drift_metrics"]).where(F.col("date") == DAY)
    features = {r["feature"] for r in drift.select("feature").distinct().collect()}
    assert {"score", "amount_sum_30d", "segment", "country", "__dataset__"} <= features


def psi_status(spark, config, day, comparison, feature):
    drift = io.read_table(spark, churn_tables(config)["drift_metrics"])
    (row,) = drift.where(
        (F.col("date") == day)
        & (F.col("comparison") == comparison)
        & (F.col("feature") == feature)
        & (F.col("metric") == "psi")
    ).collect()
    return row["status"]


def test_the_demo_drifted_day_alerts_and_the_report_flags_it(spark, lakehouse):
    config, *_ = lakehouse
    # The drift re-files 60 % of the private customers as smb on the drifted day only. The
    # baseline is the ~50 held-out customers of 250 (training.holdout_share): sampling noise
    # alone may reach warn on the plain day, never alert.
    assert psi_status(spark, config, DAY, "baseline", "segment") in ("ok", "warn")
    assert psi_status(spark, config, DRIFTED_DAY, "previous", "segment") == "alert"
    assert psi_status(spark, config, DRIFTED_DAY, "baseline", "segment") == "alert"
    page = Path(runner.write_report(spark, config, CHURN, DRIFTED_DAY)).read_text()
    verdict = page.split('<p id="verdict"', 1)[1].split("</p>", 1)[0]
    assert 'data-level="alert"' in verdict
    assert "Drift alerts: " in verdict and "segment" in verdict.split("Drift alerts: ", 1)[1]
    # the flagged segment's baseline-vs-date distribution is drawn
    assert 'class="distribution" data-feature="segment"' in page


def test_prometheus_textfile_and_mlflow_run_are_written(spark, lakehouse):
    from mlflow import MlflowClient

    config, *_ = lakehouse
    text = Path(config.prometheus_file("churn")).read_text()
    last_ok = {k[1]: v for k, v in samples(text).items() if k[0] == "scoring_step_last_run_success"}
    assert last_ok[labels(usecase="churn", step="score")] == 1
    assert last_ok[labels(usecase="churn", step="ingest")] == 0  # P2 failed
    client = MlflowClient(tracking_uri=config.tracking_uri)
    experiment = client.get_experiment_by_name(config.experiment("churn"))
    assert experiment is not None
    names = {r.info.run_name: r.info.status for r in client.search_runs([experiment.experiment_id])}
    assert names["P1"] == "FINISHED"
    assert names["P2"] == "FAILED"


def test_the_mlflow_run_of_a_date_holds_its_drift_metrics_and_report(spark, lakehouse):
    from mlflow import MlflowClient

    config, *_ = lakehouse
    client = MlflowClient(tracking_uri=config.tracking_uri)
    experiment = client.get_experiment_by_name(config.experiment("churn"))
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id], "attributes.run_name = 'P3'")
    assert run.data.metrics["drift.baseline.segment.psi"] > 0.25
    assert run.data.tags["usecase"] == "churn"
    artifacts = {
        a.path
        for folder in ("drift", "report")
        for a in client.list_artifacts(run.info.run_id, folder)
    }
    assert artifacts == {"drift/drift_metrics.json", "report/report_2026-03-02.html"}


def test_the_report_is_a_recorded_step_of_the_pipeline(spark, lakehouse):
    config, *_ = lakehouse
    assert [r["step"] for r in runs_of(spark, config, "P3")][-3:] == [
        "monitor",
        "quality",
        "report",
    ]


def test_retraining_is_off_by_default_even_on_the_drifted_day(spark, lakehouse):
    config, *_ = lakehouse
    assert config.retrain.on == ()  # conf/base.yaml; the demo's usecase.yaml is not merged here
    assert "retrain" not in {r["step"] for r in runs_of(spark, config, "P3")}
    assert psi_status(spark, config, DRIFTED_DAY, "baseline", "segment") == "alert"
