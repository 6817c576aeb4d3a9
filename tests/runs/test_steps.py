"""Every step says when it starts and when it ends, in one line each, also when it fails."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from scoring.core.errors import DataError
from scoring.runs.result import StepResult
from scoring.runs.steps import StepRun

DAY = date(2026, 3, 2)


@pytest.mark.slow
def test_a_step_logs_its_start_and_its_end_with_counts_tables_and_seconds(
    spark, config, churn, caplog
):
    caplog.set_level(logging.INFO, logger="scoring.runs.steps")
    run = StepRun(spark, config, churn, DAY)
    result = run.recorded(
        "ingest",
        lambda rid: StepResult("ingest", rid, DAY, 10, 7, 2, 1, {"bronze_customers": 3}),
        "ingest-1",
    )
    messages = [r.getMessage() for r in caplog.records if r.name == "scoring.runs.steps"]
    assert messages[0] == "ingest 2026-03-02 (churn): started"
    assert messages[1].startswith(
        "ingest 2026-03-02 (churn): done: 10 rows in, 7 out, 2 quarantined, 1 deduplicated; "
        "wrote bronze_customers v3; "
    )
    assert messages[1].endswith(" s") and result.seconds is not None


@pytest.mark.slow
def test_a_failing_step_logs_one_error_line_and_raises_unchanged(spark, config, churn, caplog):
    run = StepRun(spark, config, churn, DAY)

    def fails(rid: str) -> StepResult:
        raise DataError("drop missing")

    with pytest.raises(DataError, match=r"^drop missing$"):
        run.recorded("features", fails, "features-1")
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.getMessage().startswith("features 2026-03-02 (churn): failed after ")
    assert error.getMessage().endswith(" s: DataError: drop missing")
