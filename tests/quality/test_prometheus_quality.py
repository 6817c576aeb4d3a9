"""The quality gauges of the Prometheus textfile."""

from __future__ import annotations

from datetime import date, datetime

from scoring.monitor.prometheus import QualitySample, publish, quality_samples, registry_of
from tests.helpers import labels, samples


def test_quality_gauges_carry_model_kind_and_metric_and_count_alerts(tmp_path):
    quality = [
        QualitySample("churn", "realized", "roc_auc", 0.71, "alert"),
        QualitySample("churn", "realized", "brier", 0.2, "warn"),
        QualitySample("churn", "estimated", "roc_auc", 0.78, "ok"),
    ]
    text = publish(registry_of("churn", [], [], quality), "churn", str(tmp_path / "c.prom"), None)
    got = samples(text)
    auc = labels(usecase="churn", step="quality", model="churn", kind="realized", metric="roc_auc")
    assert got[("scoring_model_quality", auc)] == 0.71
    realized = labels(usecase="churn", step="quality", model="churn", kind="realized")
    estimated = labels(usecase="churn", step="quality", model="churn", kind="estimated")
    assert got[("scoring_quality_alerts", realized)] == 1
    assert got[("scoring_quality_warnings", realized)] == 1
    assert got[("scoring_quality_alerts", estimated)] == 0


def test_quality_samples_are_each_metrics_newest_row(spark):
    at = datetime(2026, 3, 3)
    rows = [
        ("churn", date(2026, 3, 1), "1", "realized", "roc_auc", 0.8, "ok", at),
        ("churn", date(2026, 3, 2), "1", "realized", "roc_auc", 0.7, "alert", at),
        ("churn", date(2026, 3, 1), "1", "realized", "coverage", 0.9, "ok", at),
    ]
    frame = spark.createDataFrame(
        rows,
        "model_name string, date date, model_version string, kind string, metric string, "
        "value double, status string, computed_at timestamp",
    )
    assert quality_samples(frame) == [
        QualitySample("churn", "realized", "coverage", 0.9, "ok"),
        QualitySample("churn", "realized", "roc_auc", 0.7, "alert"),
    ]
