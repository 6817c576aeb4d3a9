"""The report's score trend follows the monitored (serving) version of each date, so a
challenger shadow-scored on the same dates never doubles the volume or moves the quantiles."""

from __future__ import annotations

from datetime import date

from scoring.core.tables import TableRef
from scoring.monitor.report import _monitored_versions, _output_trend

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
