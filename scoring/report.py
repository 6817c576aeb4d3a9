"""The `report` step: gather the run date's monitoring numbers and write one HTML page.

Every read is a small aggregate collected on the driver (drift rows of one date, 20 score
bins, quarantine counts per source and reason, the latest runs); the page itself is built
by `scoring.report_html` from plain data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from scoring import io
from scoring.config import TableRef
from scoring.report_html import SCORE_BINS, ReportData, render_report

HISTORY_ROWS = 30


def run_report(
    spark: SparkSession,
    tables: Mapping[str, TableRef],
    model_name: str,
    baseline_path: Callable[[str], str | None],
    reports_dir: str,
    run_date: date,
) -> str:
    """Write `<reports_dir>/report_<date>.html` and return its path.

    Args:
        tables: `drift_metrics`, `scores`, `runs` and `quarantine` refs (any may be missing).
        baseline_path: model version -> local baseline Parquet, or None when unavailable.
    """
    notes: list[str] = []
    drift = _drift_rows(spark, tables["drift_metrics"], model_name, run_date)
    version = str(drift[0]["model_version"]) if drift else None
    baseline = None
    if version is not None:
        path = baseline_path(version)
        baseline = (
            baseline_histogram(pd.read_parquet(path, columns=["score"])["score"]) if path else None
        )
    if baseline is None:
        notes.append(
            "The training baseline's scores are not available; only the run date is drawn."
        )
    data = ReportData(
        run_date=run_date,
        model_name=model_name,
        model_version=version,
        drift=drift,
        score_current=_score_histogram(spark, tables["scores"], model_name, version, run_date),
        score_baseline=baseline,
        quarantine=_quarantine(spark, tables["quarantine"], run_date),
        runs=_runs(spark, tables["runs"]),
        notes=notes,
    )
    target = Path(reports_dir) / f"report_{run_date.isoformat()}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_report(data), encoding="utf-8")
    return str(target)


def score_bins(scores: DataFrame) -> DataFrame:
    """(bin, n): rows per score bin of width 1/20; a score of exactly 1 joins the last bin."""
    index = F.least(F.floor(F.col("score") * SCORE_BINS), F.lit(SCORE_BINS - 1)).cast("int")
    return (
        scores.where(F.col("score").isNotNull())
        .groupBy(index.alias("bin"))
        .agg(F.count(F.lit(1)).alias("n"))
    )


def baseline_histogram(scores: pd.Series) -> list[int]:
    """The baseline's rows per score bin, the same bins as `score_bins`."""
    values = scores.dropna().to_numpy(dtype=float)
    index = np.minimum(np.floor(values * SCORE_BINS), SCORE_BINS - 1).astype(int)
    return [int(n) for n in np.bincount(index, minlength=SCORE_BINS)[:SCORE_BINS]]


def _drift_rows(spark: SparkSession, ref: TableRef, model: str, day: date) -> list[dict[str, Any]]:
    if not io.table_exists(spark, ref):
        return []
    rows = io.read_table(spark, ref).where(
        (F.col("date") == F.lit(day)) & (F.col("model_name") == model)
    )
    return [r.asDict() for r in rows.collect()]


def _score_histogram(
    spark: SparkSession, ref: TableRef, model: str, version: str | None, day: date
) -> list[int]:
    counts = [0] * SCORE_BINS
    if version is None or not io.table_exists(spark, ref):
        return counts
    scores = io.read_table(spark, ref).where(
        (F.col("as_of_date") == F.lit(day))
        & (F.col("model_name") == model)
        & (F.col("model_version") == version)
    )
    for row in score_bins(scores).collect():
        counts[int(row["bin"])] = int(row["n"])
    return counts


def _quarantine(spark: SparkSession, ref: TableRef, day: date) -> list[dict[str, Any]] | None:
    if not io.table_exists(spark, ref):
        return None
    rows = (
        io.read_table(spark, ref)
        .where(F.col("delivery_date") == F.lit(day))
        .select("source", F.explode_outer("reasons").alias("reason"))
        .groupBy("source", "reason")
        .agg(F.count(F.lit(1)).alias("rows"))
        .orderBy("source", "reason")
    )
    return [r.asDict() for r in rows.collect()]


def _runs(spark: SparkSession, ref: TableRef) -> list[dict[str, Any]]:
    if not io.table_exists(spark, ref):
        return []
    latest = io.read_table(spark, ref).orderBy(F.col("ended_at").desc()).limit(HISTORY_ROWS)
    return [r.asDict() for r in latest.collect()]
