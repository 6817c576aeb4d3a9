from __future__ import annotations

from datetime import date

from scoring.runs.result import StepResult
from scoring.runs.summary import summary_table, verdict

D1, D2 = date(2026, 3, 4), date(2026, 3, 5)


def monitor(day, alerted=(), warned=(), dataset=False) -> StepResult:
    details = {
        "alerted_features": list(alerted),
        "warned_features": list(warned),
        "dataset_drift": dataset,
        "alerts": len(alerted),
    }
    return StepResult("monitor", "m", day, rows_in=10, rows_out=40, details=details, seconds=2.0)


REPORT = StepResult(
    "report", "r", D2, details={"path": "/lake/churn/reports/report_2026-03-05.html"}
)


def test_the_summary_has_one_aligned_line_per_step():
    ingest = StepResult(
        "ingest", "i", D1, 15939, 15782, 157, 0, {"bronze_customers": 1}, seconds=26.13
    )
    lines = summary_table([ingest, monitor(D1)]).splitlines()
    assert lines[0].split() == [
        "date",
        "step",
        "seconds",
        "rows",
        "in",
        "rows",
        "out",
        "quarantined",
        "tables",
        "written",
    ]
    assert lines[1].split() == [
        "2026-03-04",
        "ingest",
        "26.1",
        "15,939",
        "15,782",
        "157",
        "bronze_customers",
        "v1",
    ]
    assert lines[2].split() == ["2026-03-04", "monitor", "2.0", "10", "40"]
    # Numbers are right-aligned under their header.
    end = lines[0].index("seconds") + len("seconds")
    assert lines[1][:end].endswith("26.1") and lines[2][:end].endswith("2.0")


def test_an_alert_on_any_date_is_the_verdict_naming_features_dates_and_report():
    results = [
        monitor(D1, warned=["amount_sum_7d"]),
        monitor(D2, ["segment"], ["amount_sum_7d"], True),
        REPORT,
    ]
    assert verdict(results) == (
        "verdict: ALERT: drift alert on 2026-03-05 (segment, the share of drifted features); "
        "report: /lake/churn/reports/report_2026-03-05.html"
    )


def test_warnings_without_alerts_are_a_warn_verdict():
    assert verdict([monitor(D1), monitor(D2, warned=["tenure_days"])]) == (
        "verdict: warn: drift warnings on 2026-03-05 (tenure_days)"
    )


def test_no_warning_is_ok_and_a_failure_wins():
    assert verdict([monitor(D1), monitor(D2)]) == (
        "verdict: ok: no drift warning or alert on 2 date(s)"
    )
    assert verdict([monitor(D1)], "DataError: no drop") == "verdict: FAILED: DataError: no drop"
