"""A shadow-scored challenger's quality rows are judged, but only the serving version's
alerts are the run's (they fail `--fail-on-alert` and trigger `retrain.on: [quality]`)."""

from __future__ import annotations

from datetime import date

from scoring.quality.step import _summarize

DAY = date(2026, 3, 5)


def _row(version: str, metric: str, status: str) -> dict:
    return {"date": DAY, "kind": "realized", "labelled_rows": 100, "model_version": version,
            "metric": metric, "value": 0.7, "baseline_value": 0.8, "status": status}  # fmt: skip


ROWS = [
    _row("1", "roc_auc", "warn"),
    _row("1", "brier", "ok"),
    _row("2", "roc_auc", "alert"),  # the challenger
    _row("2", "brier", "alert"),
]


def test_only_the_serving_versions_alerts_count_and_a_shadows_are_apart():
    summary = _summarize(ROWS, DAY, "m", serving="1")
    assert (summary["alerts"], summary["warnings"], summary["shadow_alerts"]) == (0, 1, 2)
    assert summary["alerted_metrics"] == []


def test_without_a_serving_version_every_versions_alerts_count():
    summary = _summarize(ROWS, DAY, "m")
    assert (summary["alerts"], summary["warnings"], summary["shadow_alerts"]) == (2, 1, 0)
    assert summary["alerted_metrics"] == [
        "realized brier 2026-03-05",
        "realized roc_auc 2026-03-05",
    ]
