"""The report's score trend follows the monitored (serving) version of each date, so a
challenger shadow-scored on the same dates never doubles the volume or moves the quantiles."""

from __future__ import annotations

from datetime import date, datetime

from scoring.core.tables import TableRef, Tables
from scoring.monitor.report import _monitored_versions, _output_trend, _quality

D1, D2 = date(2026, 3, 5), date(2026, 3, 6)


def test_the_trend_counts_only_the_monitored_version_of_each_date(spark, tmp_path):
    rows = [
        *[(D1, "m", "1", 0.2)] * 3,
        *[(D1, "m", "2", 0.9)] * 3,  # the challenger's slice of the same date
        *[(D2, "m", "1", 0.4)] * 2,
        *[(D2, "m", "2", 0.9)] * 2,
        (D2, "other", "1", 0.9),
    ]
    frame = spark.createDataFrame(
        rows, "as_of_date date, model_name string, model_version string, score double"
    )
    frame.write.format("delta").save(str(tmp_path / "scores"))
    drift = [
        {"date": D1, "model_version": 1},
        {"date": D2, "model_version": 1},
        {"date": date(2026, 3, 7), "model_version": 3},  # after the report's date
    ]
    versions = _monitored_versions(drift, D2)
    assert versions == {D1: "1", D2: "1"}
    trend = _output_trend(
        spark, TableRef("scores", path=str(tmp_path / "scores")), "m", "score", versions
    )
    assert [(r["date"], r["rows"], round(r["mean"], 9)) for r in trend] == [
        (D1, 3, 0.2),
        (D2, 2, 0.4),
    ]


def test_the_quality_rows_are_the_monitored_versions_even_when_a_shadows_are_newer(spark, tmp_path):
    early, late = datetime(2026, 4, 4, 9), datetime(2026, 4, 4, 10)
    rows = [
        ("u", D1, "m", "1", "realized", "roc_auc", 0.775, early),
        ("u", D1, "m", "2", "realized", "roc_auc", 0.772, late),  # the challenger, newer
        ("u", D2, "m", "1", "estimated", "roc_auc", 0.93, early),
        ("u", D2, "m", "2", "estimated", "roc_auc", 0.84, late),
        ("u", date(2026, 3, 4), "m", "1", "realized", "roc_auc", 0.78, early),
        ("u", date(2026, 3, 4), "m", "2", "realized", "roc_auc", 0.70, late),  # not monitored
    ]
    schema = (
        "usecase string, date date, model_name string, model_version string, kind string, "
        "metric string, value double, computed_at timestamp"
    )
    spark.createDataFrame(rows, schema).write.format("delta").save(str(tmp_path / "mq"))
    tables = Tables("u", {"model_quality": TableRef("model_quality", path=str(tmp_path / "mq"))})
    found = _quality(spark, tables, "u", "m", date(2026, 3, 1), D2, {D1: "1", D2: "1"})
    assert found is not None
    assert [(r["date"], r["kind"], r["value"]) for r in found] == [
        (date(2026, 3, 4), "realized", 0.70),  # no monitored version: the latest computed
        (D1, "realized", 0.775),
        (D2, "estimated", 0.93),
    ]
