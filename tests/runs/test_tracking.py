from __future__ import annotations

from datetime import date

from scoring.runs.result import StepResult
from scoring.runs.tracking import log_pipeline_run, run_metrics, run_params

DAY = date(2026, 3, 2)
RESULTS = [
    StepResult(
        "ingest",
        "i-1",
        DAY,
        rows_in=10,
        rows_out=7,
        rows_quarantined=2,
        rows_deduplicated=1,
        table_versions={"bronze_customers": 3},
    ),
    StepResult(
        "monitor",
        "m-1",
        DAY,
        rows_in=7,
        rows_out=50,
        table_versions={"drift_metrics": 4},
        details={"alerts": 2, "warnings": 0, "drifted_share": {"baseline": 0.25}},
    ),
]


def test_step_counts_and_drift_numbers_become_flat_metrics():
    assert run_metrics(RESULTS) == {
        "ingest.rows_in": 10.0,
        "ingest.rows_out": 7.0,
        "ingest.rows_quarantined": 2.0,
        "ingest.rows_deduplicated": 1.0,
        "monitor.rows_in": 7.0,
        "monitor.rows_out": 50.0,
        "monitor.alerts": 2.0,
        "monitor.warnings": 0.0,
        "monitor.drifted_share.baseline": 0.25,
    }


def test_model_and_table_versions_become_params():
    assert run_params(RESULTS, "churn", "3") == {
        "model_name": "churn",
        "model_version": "3",
        "table_version.bronze_customers": "3",
        "table_version.drift_metrics": "4",
    }


def test_one_mlflow_run_holds_the_pipeline_run(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment_id = MlflowClient(tracking_uri=uri).create_experiment("scoring", str(tmp_path))
    run_id = log_pipeline_run(uri, experiment_id, "pipeline-1", DAY, RESULTS, "churn", "3")
    run = MlflowClient(tracking_uri=uri).get_run(run_id)
    assert run.info.run_name == "pipeline-1"
    assert run.data.params["table_version.drift_metrics"] == "4"
    assert run.data.metrics["monitor.alerts"] == 2.0
    assert run.data.tags["run_date"] == "2026-03-02"
