from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from scoring.monitor.prometheus import (
    DriftCounts,
    StepStats,
    render,
    write_atomically,
    write_prometheus,
)
from scoring.runs.history import append_run, run_row
from scoring.runs.result import StepResult
from tests.conftest import churn_tables

SCORE = StepStats(
    step="score",
    last_success_timestamp=1772409600.0,
    last_run_succeeded=True,
    duration_seconds=12.5,
    rows={"in": 100, "out": 100, "quarantined": None, "deduplicated": None},
)
DRIFT = DriftCounts("churn", "baseline", alerts=2, warnings=1, dataset_drift=True)


def test_the_textfile_has_help_and_type_once_per_gauge_and_use_case_and_step_labels():
    assert render("churn", [SCORE], [DRIFT]) == (
        "# HELP scoring_step_last_success_timestamp_seconds Unix time the step last succeeded.\n"
        "# TYPE scoring_step_last_success_timestamp_seconds gauge\n"
        'scoring_step_last_success_timestamp_seconds{usecase="churn",step="score"} 1772409600\n'
        "# HELP scoring_step_last_run_success 1 if the step's last run succeeded, else 0.\n"
        "# TYPE scoring_step_last_run_success gauge\n"
        'scoring_step_last_run_success{usecase="churn",step="score"} 1\n'
        "# HELP scoring_step_duration_seconds Duration of the step's last run.\n"
        "# TYPE scoring_step_duration_seconds gauge\n"
        'scoring_step_duration_seconds{usecase="churn",step="score"} 12.5\n'
        "# HELP scoring_step_rows Rows of the step's last run, by kind (in, out, ...).\n"
        "# TYPE scoring_step_rows gauge\n"
        'scoring_step_rows{usecase="churn",step="score",kind="in"} 100\n'
        'scoring_step_rows{usecase="churn",step="score",kind="out"} 100\n'
        "# HELP scoring_drift_alerts Drift metrics at alert on the latest monitored date.\n"
        "# TYPE scoring_drift_alerts gauge\n"
        'scoring_drift_alerts{usecase="churn",step="monitor",model="churn",comparison="baseline"} 2\n'
        "# HELP scoring_drift_warnings Drift metrics at warn on the latest monitored date.\n"
        "# TYPE scoring_drift_warnings gauge\n"
        'scoring_drift_warnings{usecase="churn",step="monitor",model="churn",comparison="baseline"} 1\n'
        "# HELP scoring_dataset_drift 1 if the share of drifted features reached its threshold.\n"
        "# TYPE scoring_dataset_drift gauge\n"
        'scoring_dataset_drift{usecase="churn",step="monitor",model="churn",comparison="baseline"} 1\n'
    )


def test_a_step_that_never_succeeded_has_no_last_success_sample():
    failed = StepStats("ingest", None, False, 3.0, {"in": None})
    text = render("churn", [failed], [])
    assert 'scoring_step_last_success_timestamp_seconds{usecase="churn",step="ingest"}' not in text
    assert 'scoring_step_last_run_success{usecase="churn",step="ingest"} 0' in text


def test_the_file_is_replaced_whole_and_no_temporary_file_is_left(tmp_path):
    target = tmp_path / "metrics" / "scoring.prom"
    write_atomically(str(target), "old 1\n")
    write_atomically(str(target), "new 2\n")
    assert target.read_text() == "new 2\n"
    assert [p.name for p in target.parent.iterdir()] == ["scoring.prom"]


@pytest.mark.slow
def test_the_textfile_is_rebuilt_from_the_runs_table(spark, config, tmp_path):
    tables = churn_tables(config)
    ref = tables["runs"]
    start = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    end = datetime(2026, 3, 2, 1, 0, 30, tzinfo=UTC)
    result = StepResult("score", "score-1", date(2026, 3, 2), rows_in=5, rows_out=5)
    append_run(
        spark,
        ref,
        run_row("churn", "score", date(2026, 3, 2), "score-1", "p", start, end, result, None),
    )
    drift = tables["drift_metrics"]
    text = write_prometheus(spark, "churn", ref, drift, str(tmp_path / "s.prom"))
    assert (
        'scoring_step_last_success_timestamp_seconds{usecase="churn",step="score"} 1772413230\n'
        in text
    )
    assert 'scoring_step_duration_seconds{usecase="churn",step="score"} 30\n' in text
    assert 'scoring_step_rows{usecase="churn",step="score",kind="out"} 5\n' in text
    assert (tmp_path / "s.prom").read_text() == text


@pytest.mark.slow
def test_a_runs_table_shared_by_two_use_cases_feeds_each_file_only_its_own_rows(
    spark, config, tmp_path
):
    ref = churn_tables(config)["runs"]
    start = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    for usecase, step in (("churn", "score"), ("claims", "ingest")):
        result = StepResult(step, f"{step}-1", date(2026, 3, 2), rows_in=1)
        row = run_row(usecase, step, date(2026, 3, 2), f"{step}-1", None, start, start, result, None)
        append_run(spark, ref, row)
    drift = churn_tables(config)["drift_metrics"]
    text = write_prometheus(spark, "claims", ref, drift, str(tmp_path / "claims.prom"))
    assert 'step="ingest"' in text and 'step="score"' not in text
