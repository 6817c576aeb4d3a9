"""The `report` step: gather the run date's monitoring numbers and write one HTML page.

Every read is a small aggregate collected on the driver (drift rows of one date, 20 score
bins, quarantine counts per source and reason, the latest runs); the page itself is built
by `scoring.monitor.report_page` from plain data.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from scoring.core import io
from scoring.core.tables import TableRef, Tables
from scoring.model.tasks import MONITORED_OUTPUTS
from scoring.monitor.report_page import SCORE_BINS, ReportData, render_report
from scoring.usecase.spec import UseCase

HISTORY_ROWS = 30


def run_report(
    spark: SparkSession,
    tables: Tables,
    usecase: UseCase,
    model_name: str,
    baseline_path: Callable[[str], str | None],
    reports_dir: str,
    run_date: date,
) -> str:
    """Write `<reports_dir>/report_<date>.html` and return its path.

    Args:
        tables: the use case's tables (`drift_metrics`, `scores`, `runs`, `quarantine`; any
            may be missing, a score-only use case has no quarantine).
        baseline_path: model version -> local baseline Parquet, or None when unavailable.
    """
    notes: list[str] = []
    drift = _drift_rows(spark, tables["drift_metrics"], usecase.name, model_name, run_date)
    version = str(drift[0]["model_version"]) if drift else None
    column = MONITORED_OUTPUTS[usecase.model.task][-1]  # score, or prediction
    values = None
    if version is not None:
        path = baseline_path(version)
        values = pd.read_parquet(path, columns=[column])[column] if path else None
    if values is None:
        notes.append("The baseline's outputs are not available; only the run date is drawn.")
    scored = _scored(spark, tables["scores"], model_name, version, run_date)
    low, high = output_range(column, values, scored)
    runs = _runs(spark, tables["runs"], usecase.name)
    killed = [r for r in runs if r["status"] == "killed"]
    if killed:
        notes.append(
            f"{len(killed)} of the latest {len(runs)} runs were killed (they never recorded an "
            "end): " + ", ".join(f"{r['step']} {r['run_date']} ({r['run_id']})" for r in killed)
        )
    data = ReportData(
        usecase=usecase.name,
        run_date=run_date,
        model_name=model_name,
        model_version=version,
        drift=drift,
        output=column,
        output_range=(low, high),
        output_current=_histogram(scored, column, low, high),
        output_baseline=baseline_histogram(values, low, high) if values is not None else None,
        quarantine=_quarantine(spark, tables, run_date),
        runs=runs,
        notes=notes,
    )
    target = Path(reports_dir) / f"report_{run_date.isoformat()}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_report(data), encoding="utf-8")
    return str(target)


def output_range(
    column: str, baseline: pd.Series | None, scored: DataFrame | None
) -> tuple[float, float]:
    """The chart's x range: [0, 1] for probabilities; else the baseline's (or the date's) span."""
    if column == "score":
        return 0.0, 1.0
    if baseline is not None and baseline.notna().any():
        low, high = float(baseline.min()), float(baseline.max())
    elif scored is not None:
        row = scored.agg(F.min(column), F.max(column)).first()
        low, high = (float(row[0]), float(row[1])) if row and row[0] is not None else (0.0, 1.0)
    else:
        low, high = 0.0, 1.0
    return (low, high) if high > low else (low - 0.5, low + 0.5)


def value_bins(scored: DataFrame, column: str, low: float, high: float) -> DataFrame:
    """(bin, n): rows per bin of (high - low) / 20; values outside join the first or last bin."""
    position = (F.col(column) - F.lit(low)) / F.lit(high - low) * SCORE_BINS
    index = F.greatest(F.least(F.floor(position), F.lit(SCORE_BINS - 1)), F.lit(0)).cast("int")
    return (
        scored.where(F.col(column).isNotNull())
        .groupBy(index.alias("bin"))
        .agg(F.count(F.lit(1)).alias("n"))
    )


def baseline_histogram(values: pd.Series, low: float, high: float) -> list[int]:
    """The baseline's rows per bin, the same bins as `value_bins`."""
    numbers = values.dropna().to_numpy(dtype=float)
    index = np.clip(np.floor((numbers - low) / (high - low) * SCORE_BINS), 0, SCORE_BINS - 1)
    return [int(n) for n in np.bincount(index.astype(int), minlength=SCORE_BINS)[:SCORE_BINS]]


def _drift_rows(
    spark: SparkSession, ref: TableRef, usecase: str, model: str, day: date
) -> list[dict[str, Any]]:
    if not io.table_exists(spark, ref):
        return []
    rows = io.read_table(spark, ref).where(
        (F.col("usecase") == F.lit(usecase))
        & (F.col("date") == F.lit(day))
        & (F.col("model_name") == F.lit(model))
    )
    return [r.asDict() for r in rows.collect()]


def _scored(
    spark: SparkSession, ref: TableRef, model: str, version: str | None, day: date
) -> DataFrame | None:
    """The date's rows scored by the model version, or None when there are none to read."""
    if version is None or not io.table_exists(spark, ref):
        return None
    return io.read_table(spark, ref).where(
        (F.col("as_of_date") == F.lit(day))
        & (F.col("model_name") == F.lit(model))
        & (F.col("model_version") == F.lit(version))
    )


def _histogram(scored: DataFrame | None, column: str, low: float, high: float) -> list[int]:
    counts = [0] * SCORE_BINS
    if scored is None:
        return counts
    for row in value_bins(scored, column, low, high).collect():
        counts[int(row["bin"])] = int(row["n"])
    return counts


def _quarantine(spark: SparkSession, tables: Tables, day: date) -> list[dict[str, Any]] | None:
    if "quarantine" not in tables or not io.table_exists(spark, tables["quarantine"]):
        return None
    ref = tables["quarantine"]
    rows = (
        io.read_table(spark, ref)
        .where(F.col("delivery_date") == F.lit(day))
        .select("source", F.explode_outer("reasons").alias("reason"))
        .groupBy("source", "reason")
        .agg(F.count(F.lit(1)).alias("rows"))
        .orderBy("source", "reason")
    )
    return [r.asDict() for r in rows.collect()]


def _runs(spark: SparkSession, ref: TableRef, usecase: str) -> list[dict[str, Any]]:
    if not io.table_exists(spark, ref):
        return []
    mine = io.read_table(spark, ref).where(F.col("usecase") == F.lit(usecase))
    latest = mine.orderBy(F.col("started_at").desc()).limit(HISTORY_ROWS)
    return [r.asDict() for r in latest.collect()]
