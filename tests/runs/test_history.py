from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import functions as F

from scoring.core import io
from scoring.core.errors import DataError
from scoring.runs.history import record_step
from scoring.runs.result import StepResult
from tests.conftest import churn_tables

DAY = date(2026, 3, 2)


@pytest.mark.slow
def test_every_step_of_a_pipeline_run_is_recorded_including_the_failed_one(spark, config):
    ref = churn_tables(config)["runs"]
    with record_step(spark, ref, "churn", "ingest", DAY, "ingest-1", "pipeline-1") as rec:
        rec.result = StepResult(
            "ingest",
            "ingest-1",
            DAY,
            rows_in=10,
            rows_out=7,
            rows_quarantined=2,
            rows_deduplicated=1,
            table_versions={"bronze_customers": 3},
        )
    with (
        pytest.raises(DataError, match="features: column x missing"),
        record_step(spark, ref, "churn", "features", DAY, "features-1", "pipeline-1"),
    ):
        raise DataError("features: column x missing")
    rows = {
        r["step"]: r
        for r in io.read_table(spark, ref).where(F.col("pipeline_run_id") == "pipeline-1").collect()
    }
    assert set(rows) == {"ingest", "features"}
    assert {r["usecase"] for r in rows.values()} == {"churn"}
    ingest, features = rows["ingest"], rows["features"]
    assert (ingest["status"], ingest["rows_in"], ingest["rows_out"]) == ("succeeded", 10, 7)
    assert (ingest["rows_quarantined"], ingest["rows_deduplicated"]) == (2, 1)
    assert ingest["table_versions"] == {"bronze_customers": 3}
    assert ingest["error"] is None
    assert features["status"] == "failed"
    assert features["error"] == "DataError: features: column x missing"
    assert features["rows_in"] is None
    assert features["ended_at"] >= features["started_at"]
