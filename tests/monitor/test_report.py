from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from scoring.core import io
from scoring.core.contracts import load_contract, spark_schema
from scoring.core.tables import TableRef, Tables
from scoring.monitor.report import (
    baseline_histogram,
    calibration_bins,
    flagged_features,
    output_range,
    psi_trend,
    run_report,
)
from scoring.monitor.report_page import alerts, metric_rows, render_report, verdict
from scoring.runs.history import append_run, run_row
from scoring.runs.result import StepResult
from scoring.runs.steps import usecase_tables
from scoring.usecase import load_usecase
from tests.conftest import CHURN_DIR, ROOT
from tests.monitor.report_data import (
    DAY,
    DAYS,
    DRIFT,
    QUALITY,
    RUN,
    drift_row,
    plain_data,
    rich_data,
)


def page(**changes: Any) -> str:
    return render_report(plain_data(**changes))


def metric_table_rows(html: str) -> list[list[str]]:
    body = re.search(r"<table id=\"metrics\".*?<tbody>(.*?)</tbody>", html, re.S)
    assert body is not None
    return [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in body.group(1).split("</tr>")][
        :-1
    ]


def test_the_alerting_feature_is_named_in_the_verdict_and_its_row_marked_alert():
    html = page()
    assert "Drift alerts: amount_sum_7d." in html
    assert "Drift warnings: segment." in html
    assert re.search(r'<tr class="alert">\s*<td>drift</td><td>2026-03-02</td><td>baseline</td>'
                     r"<td>amount_sum_7d</td><td>psi</td>", html)  # fmt: skip
    assert re.search(r'<tr class="ok">\s*<td>drift</td><td>2026-03-02</td><td>baseline</td>'
                     r"<td>tenure_days</td>", html)  # fmt: skip


def test_the_verdict_comes_first_then_the_alerts_then_the_trends():
    html = page()
    positions = [html.index(s) for s in ('id="verdict"', 'id="alerts"', 'id="trends"')]
    assert positions == sorted(positions)
    assert html.index("<h1>") < positions[0]


def test_the_metric_table_lists_alerts_first_then_warnings():
    statuses = [row[-1] for row in metric_table_rows(page())]
    assert statuses == ["alert", "warn", "ok"]


def test_charts_are_embedded_as_png_data_uris():
    html = page()
    # The output distribution and the PSI bars; no trend without trend data.
    assert html.count('src="data:image/png;base64,iVBORw0KGgo') == 2
    assert "http://" not in html and "https://" not in html


def test_run_history_rows_are_listed_with_their_error_escaped():
    html = page()
    assert '<tr class="failed"><td>score-1</td><td>score</td><td>2026-03-02</td>' in html
    assert "ModelError: no &lt;champion&gt;" in html


def test_text_from_the_tables_is_escaped_everywhere():
    html = page(drift=[drift_row("<script>alert(1)</script>", "psi", 0.9, "alert")])
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_missing_quarantine_table_is_noted_on_the_page():
    assert "No quarantine table" in page(quarantine=None)
    assert "<td>customers</td><td>bad_email</td><td>3</td>" in page(
        quarantine=[{"source": "customers", "reason": "bad_email", "rows": 3}]
    )


def test_the_title_names_the_use_case_model_and_date():
    assert "Scoring monitor: churn, m v1 on 2026-03-02" in page()


def test_without_a_quality_table_the_page_says_there_are_no_quality_metrics_yet():
    html = page(quality=None)
    assert 'id="no-quality"' in html
    assert "No quality metrics yet (no model_quality table: run `scoring quality`)" in html
    assert 'id="chart-quality"' not in html
    assert "No quality metrics for 2026-03-02 yet." in page(quality=[])


def test_alerts_list_drift_quality_failed_runs_and_quarantine_worst_first():
    found = [(a.level, a.kind, a.name) for a in alerts(rich_data())]
    assert found == [
        ("alert", "drift", "amount_sum_7d"),
        ("alert", "quality", "estimated roc_auc"),
        ("alert", "run", "score failed"),
        ("warn", "drift", "segment"),
        ("warn", "quarantine", "customers"),
    ]
    quality = next(a for a in alerts(rich_data()) if a.kind == "quality")
    # 0.80 - 4 * 0.02 on the fifth date
    assert quality.detail == "0.72 (baseline 0.81) for as-of date 2026-03-02"


def test_the_verdict_paragraph_says_volume_drift_quality_and_quarantine():
    level, text = verdict(rich_data())
    assert level == "alert"
    # 1040 rows on DAY against 1030 the day before: +0.97 %
    assert text.startswith("On 2026-03-02, m v1 scored 1,040 rows (+1% on 2026-03-01).")
    assert "Drift alerts: amount_sum_7d. Drift warnings: segment." in text
    # realized quality lags: its latest as-of date with outcomes is 02-28 (0.79 - 2 * 0.01)
    assert (
        "Quality: estimated roc_auc 0.72 against 0.81 on the baseline (as-of 2026-03-02, "
        "alert); realized roc_auc 0.77 against 0.81 on the baseline (as-of 2026-02-28, ok)."
    ) in text
    assert "4.0% of the rows delivered on 2026-03-02 were quarantined." in text
    assert "1 step run(s) of this date failed or were killed." in text


def test_a_quiet_date_has_an_ok_verdict():
    quiet = rich_data(
        drift=[drift_row("tenure_days", "psi", 0.01, "ok")],
        quality=[r for r in QUALITY if r["status"] == "ok"],
        quarantine=[],
        runs=[],
        ingest_trend=[],
    )
    level, text = verdict(quiet)
    assert level == "ok"
    assert "No drift alert" in text
    assert alerts(quiet) == []


def test_the_rich_page_draws_every_trend_the_flagged_distribution_and_the_calibration():
    html = render_report(rich_data())
    for chart in ("psi-trend", "output-trend", "volume", "quality", "output", "psi"):
        assert f'id="chart-{chart}"' in html
    assert 'data-feature="amount_sum_7d"' in html
    assert 'id="chart-calibration"' in html
    assert "held-out baseline rows: 40 rows" in html
    assert 'id="no-quality"' not in html


def test_a_regression_page_has_no_calibration_curve():
    html = render_report(rich_data(task="regression", calibration=[], quality=[]))
    assert 'id="chart-calibration"' not in html
    assert "or the task is not binary" in html


def test_metric_rows_put_quality_next_to_drift_with_their_baselines():
    rows = metric_rows(DRIFT, [QUALITY[4]])
    assert [(r["source"], r["feature"] or r["metric"], r["status"]) for r in rows] == [
        ("drift", "amount_sum_7d", "alert"),
        ("quality", "roc_auc", "alert"),
        ("drift", "segment", "warn"),
        ("drift", "tenure_days", "ok"),
    ]
    assert rows[1]["baseline"] == 0.81


def test_flagged_features_are_ordered_by_status_then_psi():
    drift = [
        drift_row("a", "psi", 0.12, "warn"),
        drift_row("b", "psi", 0.3, "alert"),
        drift_row("c", "psi", 0.2, "warn"),
        drift_row("c", "ks", 0.01, "ok", "previous"),
        drift_row("d", "null_rate_change", 0.5, "warn", "previous"),
        drift_row("e", "psi", 0.01, "ok"),
        drift_row("__dataset__", "drifted_share", 0.6, "alert"),
    ]
    assert flagged_features(drift) == ["b", "c", "a", "d"]


def test_the_psi_trend_follows_the_run_dates_top_features_over_the_window():
    window = [
        drift_row(f, "psi", v, "ok", day=d)
        for d in DAYS
        for f, v in (("a", 0.01), ("b", 0.05), ("score", 0.9))
    ] + [drift_row("c", "psi", 0.5, "alert", day=DAYS[0])]  # high, but not on the run date
    trend = psi_trend(window, DAY, ["score"])
    assert [r["feature"] for r in trend] == ["b"] * 5 + ["a"] * 5
    assert [r["date"] for r in trend[:5]] == DAYS


def test_calibration_bins_hold_the_mean_score_and_outcome_rate_of_each_bin(spark):
    frame = spark.createDataFrame(
        [(0.05, 0), (0.15, 0), (0.15, 1), (0.95, 1), (1.0, 1), (0.5, None), (None, 1)],
        "score double, __outcome__ int",
    )
    rows = [r.asDict() for r in calibration_bins(frame, "score", "__outcome__", "1", 10).collect()]
    assert rows == [
        {"bin": 0, "n": 1, "mean_score": 0.05, "outcome_rate": 0.0},
        {"bin": 1, "n": 2, "mean_score": 0.15, "outcome_rate": 0.5},
        {"bin": 9, "n": 2, "mean_score": pytest.approx(0.975), "outcome_rate": 1.0},
    ]


def test_calibration_counts_the_positive_class_by_its_text_label(spark):
    frame = spark.createDataFrame(
        [(0.3, "yes"), (0.35, "no"), (0.32, "no"), (0.38, "no")], "score double, __outcome__ string"
    )
    (row,) = calibration_bins(frame, "score", "__outcome__", "yes", 10).collect()
    assert (row["bin"], row["n"], row["outcome_rate"]) == (3, 4, 0.25)


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


QUALITY_DDL = (
    "usecase string, date date, model_name string, model_version string, kind string, "
    "metric string, value double, baseline_value double, threshold_warn double, "
    "threshold_alert double, status string, rows long, labelled_rows long, run_id string, "
    "computed_at timestamp"
)


@pytest.mark.slow
def test_the_report_is_rendered_from_the_tables(spark, config, tmp_path):
    churn = load_usecase(CHURN_DIR)
    base = usecase_tables(config, churn)
    tables = Tables(
        base.usecase,
        {**base.refs, "model_quality": TableRef("model_quality", str(tmp_path / "quality"))},
    )
    schema = spark_schema(load_contract("drift_metrics"))
    drift = [*DRIFT, replace_day(drift_row("amount_sum_7d", "psi", 0.05, "ok"), DAYS[3])]
    io.write_delta(spark.createDataFrame(drift, schema), tables["drift_metrics"], "overwrite", {})
    scores = spark.createDataFrame(
        [
            ("C1", DAY, 0.12, "m", "1"),
            ("C2", DAY, 0.97, "m", "1"),
            ("C3", DAY, 0.55, "m", "1"),
            ("C1", DAYS[3], 0.2, "m", "1"),
        ],
        "customer_id string, as_of_date date, score double, model_name string, model_version string",
    )
    io.write_delta(scores, tables["scores"], "overwrite", {})
    as_of = churn.features.as_of_column
    features = spark.createDataFrame(
        [("C1", DAY, 900.0), ("C2", DAY, 950.0), ("C3", DAY, 5.0), ("C1", DAYS[3], 1.0)],
        f"customer_id string, {as_of} date, amount_sum_7d double",
    )
    io.write_delta(features, tables["features"], "overwrite", {})
    quality = [
        ("churn", DAY, "m", "1", "estimated", "roc_auc", 0.7, 0.81, 0.77, 0.73, "alert", 3, 3,
         "q-1", datetime(2026, 3, 2, 3)),
        ("churn", DAY, "m", "1", "estimated", "roc_auc", 0.79, 0.81, 0.77, 0.73, "ok", 3, 3,
         "q-0", datetime(2026, 3, 2, 2)),  # an older computation of the same metric
    ]  # fmt: skip
    io.write_delta(
        spark.createDataFrame(quality, QUALITY_DDL), tables["model_quality"], "overwrite", {}
    )
    start = datetime(2026, 3, 2, 1, tzinfo=UTC)
    ingest = StepResult("ingest", "ingest-1", DAY, rows_in=200, rows_quarantined=5)
    append_run(
        spark, tables["runs"], run_row("churn", "ingest", DAY, "ingest-1", None, start, start,
                                       ingest, None),
    )  # fmt: skip
    append_run(
        spark,
        tables["runs"],
        run_row("churn", "monitor", DAY, "monitor-7", None, start, start, None, None),
    )
    append_run(
        spark,
        tables["runs"],
        run_row("churn", "score", DAY, "score-3", None, start, start, None, "killed: gone",
                status="killed"),
    )  # fmt: skip
    baseline = tmp_path / "b.parquet"
    pd.DataFrame(
        {
            "customer_id": [f"B{i}" for i in range(10)],
            "amount_sum_7d": [float(i) for i in range(10)],
            "score": [0.05, 0.05, 0.05, 0.05, 0.05, 0.95, 0.95, 0.95, 0.95, 0.95],
            "__outcome__": [0, 0, 0, 0, 1, 1, 1, 1, 1, 0],
        }
    ).to_parquet(baseline)
    path = run_report(
        spark, tables, churn, "m", lambda v: str(baseline), str(tmp_path / "r"), DAY, n_bins=2
    )
    html = (tmp_path / "r" / "report_2026-03-02.html").read_text()
    assert path.endswith("report_2026-03-02.html")
    assert "Drift alerts: amount_sum_7d." in html
    # three rows on DAY, one on the date before
    assert "scored 3 rows (+200% on 2026-03-01)" in html
    # the latest computation of the estimated AUC, not the older one
    assert "estimated roc_auc 0.7 against 0.81 on the baseline (as-of 2026-03-02, alert)" in html
    assert "2.5% of the rows delivered on 2026-03-02 were quarantined." in html  # 5 of 200
    assert "<td>monitor-7</td>" in html
    assert '<tr class="killed"><td>score-3</td>' in html
    assert (
        "1 of the latest 3 runs were killed (they never recorded an end): score 2026-03-02 (score-3)"
        in html
    )
    assert "No quarantine table" in html
    # amount_sum_7d cut at the baseline's median (4.0): 5 and 5 of the baseline rows 0..9;
    # the date's 900, 950 and 5.0 all above
    assert (
        'data-feature="amount_sum_7d" data-buckets="≤ 4|&gt; 4" data-baseline="5,5" '
        'data-current="0,3"'
    ) in html
    # the calibration of the 10 held-out rows: 5 in bin 0 (1 positive), 5 in bin 9 (4)
    assert "held-out baseline rows: 10 rows" in html
    assert (
        "<tr><td>held-out baseline rows</td><td>0.050</td><td>0.200</td><td>5</td></tr>\n"
        "<tr><td>held-out baseline rows</td><td>0.950</td><td>0.800</td><td>5</td></tr>"
    ) in html
    for chart in ("psi-trend", "output-trend", "volume", "quality", "calibration"):
        assert f'id="chart-{chart}"' in html


def replace_day(row: dict[str, Any], day: Any) -> dict[str, Any]:
    return {**row, "date": day}


def test_a_retrain_of_the_date_is_said_in_the_verdict_and_its_note_listed_in_the_runs():
    note = (
        "retrained challenger v2 on the features of 2026-01-31 because 3 drift alert(s) on "
        "2026-03-02 (segment); held out: roc_auc 0.8100 (serving v1: 0.8300); not promoted"
    )
    retrain = {
        **RUN,
        "run_id": "retrain-1",
        "step": "retrain",
        "status": "succeeded",
        "error": None,
        "warnings": [note],
    }
    data = plain_data(runs=[retrain], retrains=[retrain])
    level, text = verdict(data)
    assert text.endswith(f" R{note[1:]}.")
    assert level == "alert"  # the drift's level; a retrain is no alert itself
    assert all(a.kind != "run" for a in alerts(data))
    html = render_report(data)
    row = html.split('<tr class="succeeded"><td>retrain-1</td>', 1)[1].split("</tr>", 1)[0]
    assert f"<td>{note}</td>" in row
    quiet = plain_data(runs=[retrain])  # another date's retrain run: listed, not in the verdict
    assert "Retrained" not in verdict(quiet)[1]


def test_report_data_defaults_leave_the_new_sections_empty():
    data = replace(rich_data(), psi_trend=(), output_trend=(), ingest_trend=(), quality=None)
    html = render_report(data)
    assert 'id="chart-psi-trend"' not in html
    assert 'id="chart-volume"' not in html


@pytest.mark.slow
def test_a_regression_use_case_with_a_composite_key_gets_its_flagged_distribution(
    spark, config, tmp_path
):
    claims = load_usecase(ROOT / "tests" / "usecases" / "claims")
    tables = usecase_tables(config, claims)
    drift = [
        {**drift_row("product", "psi", 0.9, "alert"), "usecase": claims.name},
        {**drift_row("prediction", "psi", 0.01, "ok"), "usecase": claims.name},
    ]
    schema = spark_schema(load_contract("drift_metrics"))
    io.write_delta(spark.createDataFrame(drift, schema), tables["drift_metrics"], "overwrite", {})
    scores = spark.createDataFrame(
        [("A", 1, DAY, 120.0, "m", "1"), ("B", 2, DAY, 80.0, "m", "1")],
        "insurer_id string, policy_no bigint, as_of_date date, prediction double, "
        "model_name string, model_version string",
    )
    io.write_delta(scores, tables["scores"], "overwrite", {})
    # (B, 1) shares its policy number with the scored (A, 1) but was not scored itself
    features = spark.createDataFrame(
        [("A", 1, DAY, "home"), ("B", 1, DAY, "auto"), ("B", 2, DAY, "travel")],
        f"insurer_id string, policy_no bigint, {claims.features.as_of_column} date, product string",
    )
    io.write_delta(features, tables["features"], "overwrite", {})
    baseline = tmp_path / "b.parquet"
    pd.DataFrame(
        {
            "insurer_id": ["A", "B", "C", "D"],
            "policy_no": [1, 2, 3, 4],
            "product": ["auto", "auto", "home", "travel"],
            "prediction": [50.0, 100.0, 150.0, 200.0],
        }
    ).to_parquet(baseline)
    run_report(spark, tables, claims, "m", lambda v: str(baseline), str(tmp_path / "r"), DAY)
    html = (tmp_path / "r" / "report_2026-03-02.html").read_text()
    assert (
        'data-feature="product" data-buckets="auto|home|travel" data-baseline="2,1,1" '
        'data-current="0,1,1"'
    ) in html
    assert "Drift alerts: product." in html
    assert "scored 2 rows." in html
    assert "or the task is not binary" in html
