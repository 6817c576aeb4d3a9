from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import pytest

from scoring.core import io
from scoring.core.contracts import load_contract, spark_schema
from scoring.monitor.report import baseline_histogram, output_range, run_report
from scoring.monitor.report_page import ReportData, render_report
from scoring.runs.history import append_run, run_row
from scoring.runs.steps import usecase_tables
from scoring.usecase import load_usecase
from tests.conftest import CHURN_DIR

DAY = date(2026, 3, 2)


def drift_row(feature, metric, value, status, comparison="baseline"):
    return {
        "usecase": "churn",
        "date": DAY,
        "model_name": "m",
        "model_version": "1",
        "feature": feature,
        "metric": metric,
        "value": value,
        "threshold_warn": 0.1,
        "threshold_alert": 0.25,
        "status": status,
        "comparison": comparison,
        "reference_date": None,
        "run_id": "mon-1",
    }


DRIFT = [
    drift_row("amount_sum_7d", "psi", 0.8, "alert"),
    drift_row("tenure_days", "psi", 0.01, "ok"),
]
RUN = {
    "run_id": "score-1",
    "step": "score",
    "run_date": DAY,
    "status": "failed",
    "started_at": datetime(2026, 3, 2, 0, 50),
    "ended_at": datetime(2026, 3, 2, 1),
    "rows_in": None,
    "rows_out": None,
    "error": "ModelError: no <champion>",
}


def page(**changes: Any) -> str:
    data: dict[str, Any] = {
        "usecase": "churn",
        "run_date": DAY,
        "model_name": "m",
        "model_version": "1",
        "drift": DRIFT,
        "output": "score",
        "output_range": (0.0, 1.0),
        "output_current": [1] * 20,
        "output_baseline": [2] * 20,
        "quarantine": None,
        "runs": [RUN],
    }
    data.update(changes)
    return render_report(ReportData(**data))


def test_the_alerting_feature_is_named_in_the_verdict_and_its_row_marked_alert():
    html = page()
    assert "Verdict: drift alerts: amount_sum_7d" in html
    assert re.search(r"<tr class='alert'><td>baseline</td><td>amount_sum_7d</td><td>psi", html)
    assert re.search(r"<tr class='ok'><td>baseline</td><td>tenure_days</td>", html)


def test_charts_are_embedded_as_png_data_uris():
    assert page().count("src='data:image/png;base64,iVBORw0KGgo") == 2


def test_run_history_rows_are_listed_with_their_error_escaped():
    html = page()
    assert "<tr class='failed'><td>score-1</td><td>score</td><td>2026-03-02</td>" in html
    assert "ModelError: no &lt;champion&gt;" in html


def test_a_missing_quarantine_table_is_noted_on_the_page():
    assert "No quarantine table" in page(quarantine=None)
    assert "<td>customers</td><td>bad_email</td><td>3</td>" in page(
        quarantine=[{"source": "customers", "reason": "bad_email", "rows": 3}]
    )


def test_the_title_names_the_use_case_model_and_date():
    assert "Scoring monitor: churn, m v1 on 2026-03-02" in page()


def test_baseline_scores_fall_in_twenty_bins_with_one_in_the_last():
    counts = baseline_histogram(pd.Series([0.0, 0.04, 0.05, 0.99, 1.0, None]), 0.0, 1.0)
    assert counts == [2, 1] + [0] * 17 + [2]


def test_predictions_fall_in_twenty_bins_of_their_span_and_outliers_in_the_end_bins():
    counts = baseline_histogram(pd.Series([-5.0, 0.0, 4.9, 5.0, 100.0, 150.0]), 0.0, 100.0)
    assert counts == [3, 1] + [0] * 17 + [2]


def test_a_regression_chart_spans_the_baseline_predictions():
    assert output_range("prediction", pd.Series([3.0, 9.0]), None) == (3.0, 9.0)
    assert output_range("score", pd.Series([3.0, 9.0]), None) == (0.0, 1.0)
    assert output_range("prediction", pd.Series([2.0, 2.0]), None) == (1.5, 2.5)


@pytest.mark.slow
def test_the_report_is_rendered_from_the_tables(spark, config, tmp_path):
    churn = load_usecase(CHURN_DIR)
    tables = usecase_tables(config, churn)
    schema = spark_schema(load_contract("drift_metrics"))
    io.write_delta(spark.createDataFrame(DRIFT, schema), tables["drift_metrics"], "overwrite", {})
    scores = spark.createDataFrame(
        [("C1", DAY, 0.12, "m", "1"), ("C2", DAY, 0.97, "m", "1")],
        "customer_id string, as_of_date date, score double, model_name string, model_version string",
    )
    io.write_delta(scores, tables["scores"], "overwrite", {})
    start = datetime(2026, 3, 2, 1, tzinfo=UTC)
    append_run(
        spark,
        tables["runs"],
        run_row("churn", "monitor", DAY, "monitor-7", None, start, start, None, None),
    )
    append_run(
        spark,
        tables["runs"],
        run_row(
            "churn",
            "score",
            DAY,
            "score-3",
            None,
            start,
            start,
            None,
            "killed: gone",
            status="killed",
        ),
    )
    baseline = tmp_path / "b.parquet"
    pd.DataFrame({"score": [0.1, 0.2]}).to_parquet(baseline)
    path = run_report(spark, tables, churn, "m", lambda v: str(baseline), str(tmp_path / "r"), DAY)
    html = (tmp_path / "r" / "report_2026-03-02.html").read_text()
    assert path.endswith("report_2026-03-02.html")
    assert "Verdict: drift alerts: amount_sum_7d" in html
    assert "<td>monitor-7</td>" in html
    assert "<tr class='killed'><td>score-3</td>" in html
    assert (
        "1 of the latest 2 runs were killed (they never recorded an end): score 2026-03-02 (score-3)"
        in html
    )
    assert "No quarantine table" in html
    assert html.count("data:image/png;base64,") == 2
