"""Hand-made report inputs: a date whose drift, quality, quarantine and runs all need a look."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from scoring.monitor.report_page import Calibration, Distribution, ReportData

DAY = date(2026, 3, 2)
DAYS = [DAY - timedelta(days=i) for i in range(4, -1, -1)]


def drift_row(feature, metric, value, status, comparison="baseline", day=DAY):
    return {
        "usecase": "churn",
        "date": day,
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
    drift_row("segment", "psi", 0.15, "warn"),
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
    "warnings": None,
}


def quality_row(day, kind, metric, value, status="ok", baseline=0.81):
    return {
        "date": day,
        "kind": kind,
        "metric": metric,
        "value": value,
        "baseline_value": baseline,
        "threshold_warn": 0.77,
        "threshold_alert": 0.73,
        "status": status,
        "computed_at": datetime(2026, 3, 2, 2),
    }


# Estimated ROC AUC falls to an alert on DAY; outcomes arrived for the first three dates.
QUALITY = [
    *(
        quality_row(d, "estimated", "roc_auc", 0.80 - 0.02 * i, "alert" if d == DAY else "ok")
        for i, d in enumerate(DAYS)
    ),
    *(quality_row(d, "realized", "roc_auc", 0.79 - 0.01 * i) for i, d in enumerate(DAYS[:3])),
    quality_row(DAY, "realized", "coverage", 0.0, baseline=None),
]


def plain_data(**changes: Any) -> ReportData:
    """A date's report data with drift and runs only: no trends, quality or quarantine."""
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
    return ReportData(**data)


def rich_data(**changes: Any) -> ReportData:
    data: dict[str, Any] = {
        "quarantine": [{"source": "customers", "reason": "bad_email", "rows": 3}],
        "task": "binary",
        "psi_trend": [
            {"date": d, "feature": f, "value": v * (i + 1)}
            for i, d in enumerate(DAYS)
            for f, v in (("amount_sum_7d", 0.15), ("tenure_days", 0.002))
        ],
        "output_trend": [
            {"date": d, "rows": 1000 + 10 * i, "mean": 0.3, "p10": 0.05, "p50": 0.2, "p90": 0.7}
            for i, d in enumerate(DAYS)
        ],
        "ingest_trend": [
            {"date": d, "rows_in": 1000, "rows_quarantined": 10 * i} for i, d in enumerate(DAYS)
        ],
        "quality": QUALITY,
        "distributions": [
            Distribution("amount_sum_7d", "alert", 0.8, ["≤ 1", "> 1"], [50, 50], [10, 90])
        ],
        "calibration": [Calibration("held-out baseline rows", [10, 30], [0.2, 0.7], [0.1, 0.8])],
    }
    data.update(changes)
    return plain_data(**data)
