"""The `report` step: gather the run date's monitoring numbers and write one HTML page.

Every read is a small aggregate collected on the driver: drift rows of the trend window,
per-date score statistics (count, mean, three quantiles), per-date ingest counts from
`runs`, the run date's retrain runs, the `model_quality` rows of the window, bucket counts of
the flagged features,
ten calibration bins, quarantine counts per source and reason, the latest runs, the
`model_comparison` rows of the window and the latest `promote` runs. The page
itself is built by `scoring.monitor.report_page` from that plain data.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from scoring.core import io
from scoring.core.tables import TableRef, Tables
from scoring.model.tasks import BINARY, MONITORED_OUTPUTS
from scoring.monitor.baseline import TARGET as OUTCOME
from scoring.monitor.binning import (
    BinSpec,
    bucket_counts,
    build_bin_spec,
    collect_counts,
    split_kinds,
)
from scoring.monitor.report_page import (
    SCORE_BINS,
    Calibration,
    Distribution,
    ReportData,
    render_report,
)
from scoring.monitor.verdicts import DATASET
from scoring.usecase.spec import UseCase

HISTORY_ROWS = 30
# The champion-vs-challenger section lists this many latest promotion decisions.
PROMOTION_ROWS = 10
# The trends cover the scored dates of this many days up to the run date.
TREND_DAYS = 90
# PSI trend lines: the features with the highest PSI against the baseline on the run date.
TOP_FEATURES = 5
# Baseline-vs-current charts: at most this many flagged features, the worst first.
MAX_DISTRIBUTIONS = 12
CALIBRATION_BINS = 10
_SEVERITY = {"alert": 2, "warn": 1, "ok": 0}


def run_report(
    spark: SparkSession,
    tables: Tables,
    usecase: UseCase,
    model_name: str,
    baseline_path: Callable[[str], str | None],
    reports_dir: str,
    run_date: date,
    n_bins: int = 10,
) -> str:
    """Write `<reports_dir>/report_<date>.html` and return its path.

    Args:
        tables: the use case's tables (`drift_metrics`, `scores`, `features`, `runs`,
            `quarantine`, `model_quality`; any may be missing: a score-only use case has no
            quarantine, a use case without labels no realized quality).
        baseline_path: model version -> local baseline Parquet, or None when unavailable.
        n_bins: `monitor.n_bins`, the bins of the flagged features' distributions (the
            same cuts as their PSI).
    """
    notes: list[str] = []
    since = run_date - timedelta(days=TREND_DAYS - 1)
    drift_window = _drift_rows(spark, tables["drift_metrics"], usecase.name, model_name, since)
    drift = [r for r in drift_window if r["date"] == run_date]
    version = str(drift[0]["model_version"]) if drift else None
    task = usecase.model.task
    column = MONITORED_OUTPUTS[task][-1]  # score, or prediction
    path = baseline_path(version) if version is not None else None
    baseline = pd.read_parquet(path) if path else None
    values = baseline[column] if baseline is not None and column in baseline else None
    if values is None:
        notes.append("The baseline's outputs are not available; only the run date is drawn.")
    scored = _scored(spark, tables["scores"], model_name, version, run_date)
    monitored = _monitored_versions(drift_window, run_date)
    low, high = output_range(column, values, scored)
    runs = _runs(spark, tables["runs"], usecase.name)
    runs_of_date = _runs(spark, tables["runs"], usecase.name, run_date, ("retrain",))
    killed = [r for r in runs if r["status"] == "killed"]
    if killed:
        notes.append(
            f"{len(killed)} of the latest {len(runs)} runs were killed (they never recorded an "
            "end): " + ", ".join(f"{r['step']} {r['run_date']} ({r['run_id']})" for r in killed)
        )
    flagged = flagged_features(drift)[:MAX_DISTRIBUTIONS]
    # The baseline crosses to Spark (as in the monitor) only when a chart needs its rows.
    wanted = flagged or (task == BINARY and OUTCOME in getattr(baseline, "columns", ()))
    baseline_frame = spark.createDataFrame(baseline) if baseline is not None and wanted else None
    data = ReportData(
        usecase=usecase.name,
        run_date=run_date,
        model_name=model_name,
        model_version=version,
        task=task,
        drift=drift,
        output=column,
        output_range=(low, high),
        output_current=_histogram(scored, column, low, high),
        output_baseline=baseline_histogram(values, low, high) if values is not None else None,
        quarantine=_quarantine(spark, tables, run_date),
        runs=runs,
        notes=notes,
        psi_trend=psi_trend(drift_window, run_date, [*MONITORED_OUTPUTS[task]]),
        output_trend=_output_trend(spark, tables["scores"], model_name, column, monitored),
        ingest_trend=_ingest_trend(spark, tables["runs"], usecase.name, since, run_date),
        quality=_quality(spark, tables, usecase.name, model_name, since, run_date, monitored),
        distributions=_distributions(
            spark, tables, usecase, baseline_frame, scored, flagged, drift, run_date, n_bins
        ),
        calibration=_calibration(baseline_frame, usecase),
        retrains=[r for r in runs_of_date if r["step"] == "retrain" and r["status"] == "succeeded"],
        comparison=_comparison(spark, tables, usecase.name, model_name, since, run_date),
        promotions=promotions(spark, tables["runs"], usecase.name),
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


def flagged_features(drift: Sequence[Mapping[str, Any]]) -> list[str]:
    """Features (and outputs) with a metric at warn or alert, the worst first.

    Worst: the highest status in any comparison, then the highest baseline PSI, then name.
    """
    worst: dict[str, int] = {}
    psi: dict[str, float] = {}
    for r in drift:
        if r["feature"] == DATASET:
            continue
        worst[r["feature"]] = max(worst.get(r["feature"], 0), _SEVERITY[r["status"]])
        if r["metric"] == "psi" and r["comparison"] == "baseline":
            psi[r["feature"]] = float(r["value"])
    hits = [f for f, level in worst.items() if level > 0]
    return sorted(hits, key=lambda f: (-worst[f], -psi.get(f, 0.0), f))


def psi_trend(
    window: Sequence[Mapping[str, Any]], run_date: date, outputs: Sequence[str]
) -> list[dict[str, Any]]:
    """(date, feature, value) of baseline PSI for the top features of the run date."""
    baseline_psi = [
        r
        for r in window
        if r["metric"] == "psi"
        and r["comparison"] == "baseline"
        and r["feature"] not in (DATASET, *outputs)
    ]
    today = sorted(
        (r for r in baseline_psi if r["date"] == run_date),
        key=lambda r: (-float(r["value"]), r["feature"]),
    )
    top = [r["feature"] for r in today[:TOP_FEATURES]]
    return sorted(
        (
            {"date": r["date"], "feature": r["feature"], "value": float(r["value"])}
            for r in baseline_psi
            if r["feature"] in top
        ),
        key=lambda r: (top.index(r["feature"]), r["date"]),
    )


def calibration_bins(
    frame: DataFrame, score: str, outcome: str, positive: str, bins: int
) -> DataFrame:
    """(bin, n, mean_score, outcome_rate) over `bins` equal-width bins of the score in [0, 1].

    An outcome is positive when it equals `positive` (the use case's `model.positive_class`)
    as text, or as a number when that class is one (1, 1.0 and true for "1"); rows whose
    score or outcome is null are left out.
    """
    value = F.col(outcome)
    is_positive = value.cast("string") == F.lit(positive)
    number = _number(positive)
    if number is not None:  # try_cast: a text outcome is no number, not an error (ANSI)
        is_positive = is_positive | (value.try_cast("double") == F.lit(number))
    index = F.least(F.floor(F.col(score) * F.lit(bins)), F.lit(bins - 1)).cast("int")
    return (
        frame.where(F.col(score).isNotNull() & value.isNotNull())
        .groupBy(F.greatest(index, F.lit(0)).alias("bin"))
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.avg(score).alias("mean_score"),
            F.avg(F.coalesce(is_positive, F.lit(False)).cast("double")).alias("outcome_rate"),
        )
        .orderBy("bin")
    )


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _drift_rows(
    spark: SparkSession, ref: TableRef, usecase: str, model: str, since: date
) -> list[dict[str, Any]]:
    """The drift rows of the trend window (about 30 per feature at most: an aggregate)."""
    if not io.table_exists(spark, ref):
        return []
    rows = io.read_table(spark, ref).where(
        (F.col("usecase") == F.lit(usecase))
        & (F.col("date") >= F.lit(since))
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


def _monitored_versions(drift_window: Sequence[Mapping[str, Any]], day: date) -> dict[date, str]:
    """Per date of the window up to `day`, the model version the monitor measured: the
    serving one (a shadow-scored challenger has its own slice of `scores` on the date)."""
    return {r["date"]: str(r["model_version"]) for r in drift_window if r["date"] <= day}


def _output_trend(
    spark: SparkSession, ref: TableRef, model: str, column: str, versions: Mapping[date, str]
) -> list[dict[str, Any]]:
    """Per monitored date of the window: rows, mean and the 10/50/90 % quantiles of the
    output of the version monitored on that date (`versions`), never a shadow's rows."""
    if not versions or not io.table_exists(spark, ref):
        return []
    slices = [
        (F.col("as_of_date") == F.lit(day)) & (F.col("model_version") == F.lit(version))
        for day, version in versions.items()
    ]
    rows = (
        io.read_table(spark, ref)
        .where((F.col("model_name") == F.lit(model)) & reduce(operator.or_, slices))
        .groupBy(F.col("as_of_date").alias("date"))
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.avg(column).alias("mean"),
            F.percentile_approx(column, [0.1, 0.5, 0.9], 1000).alias("q"),
        )
        .orderBy("date")
    )
    return [
        {
            "date": r["date"],
            "rows": int(r["rows"]),
            "mean": r["mean"],
            "p10": r["q"][0] if r["q"] else None,
            "p50": r["q"][1] if r["q"] else None,
            "p90": r["q"][2] if r["q"] else None,
        }
        for r in rows.collect()
    ]


def _ingest_trend(
    spark: SparkSession, runs_ref: TableRef, usecase: str, since: date, day: date
) -> list[dict[str, Any]]:
    """Per delivery date of the window: rows read and quarantined by its latest ingest run."""
    if not io.table_exists(spark, runs_ref):
        return []
    ingests = (
        io.read_table(spark, runs_ref)
        .where(
            (F.col("usecase") == F.lit(usecase))
            & (F.col("step") == F.lit("ingest"))
            & (F.col("status") == F.lit("succeeded"))
            & F.col("run_date").between(F.lit(since), F.lit(day))
        )
        .groupBy("run_date")
        .agg(F.max_by(F.struct("rows_in", "rows_quarantined"), F.col("started_at")).alias("r"))
        .orderBy("run_date")
    )
    return [
        {
            "date": r["run_date"],
            "rows_in": r["r"]["rows_in"],
            "rows_quarantined": r["r"]["rows_quarantined"],
        }
        for r in ingests.collect()
    ]


def _quality(
    spark: SparkSession,
    tables: Tables,
    usecase: str,
    model: str,
    since: date,
    day: date,
    monitored: Mapping[date, str],
) -> list[dict[str, Any]] | None:
    """The model_quality rows of the window (None: no such table yet), one per (date, kind,
    metric): the monitored (serving) version's on a date the monitor measured (`monitored`;
    a shadow-scored challenger's rows are the comparison section's), else the latest
    computed, should two model versions have scored a date."""
    if "model_quality" not in tables or not io.table_exists(spark, tables["model_quality"]):
        return None
    rows = (
        io.read_table(spark, tables["model_quality"])
        .where(
            (F.col("usecase") == F.lit(usecase))
            & (F.col("model_name") == F.lit(model))
            & F.col("date").between(F.lit(since), F.lit(day))
        )
        .collect()  # the table is itself an aggregate: ~20 rows per date and kind
    )
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        r = row.asDict()
        if r["date"] in monitored and str(r["model_version"]) != monitored[r["date"]]:
            continue
        key = (r["date"], r["kind"], r["metric"])
        if key not in latest or r["computed_at"] > latest[key]["computed_at"]:
            latest[key] = r
    return sorted(latest.values(), key=lambda r: (r["date"], r["kind"], r["metric"]))


def _comparison(
    spark: SparkSession, tables: Tables, usecase: str, model: str, since: date, day: date
) -> list[dict[str, Any]] | None:
    """The model_comparison rows of the window (None: no such table); an aggregate of about
    twenty rows per date and challenger."""
    if "model_comparison" not in tables or not io.table_exists(spark, tables["model_comparison"]):
        return None
    rows = io.read_table(spark, tables["model_comparison"]).where(
        (F.col("usecase") == F.lit(usecase))
        & (F.col("model_name") == F.lit(model))
        & F.col("date").between(F.lit(since), F.lit(day))
    )
    return [r.asDict() for r in rows.collect()]


def promotions(spark: SparkSession, ref: TableRef, usecase: str) -> list[dict[str, Any]]:
    """The latest `promote` runs, newest first: their decision from `details`, or the
    refusal (`error`) of a failed one."""
    if not io.table_exists(spark, ref):
        return []
    mine = io.read_table(spark, ref).where(
        (F.col("usecase") == F.lit(usecase)) & (F.col("step") == F.lit("promote"))
    )
    if "details" not in mine.columns:  # a runs table of an older release, never promoted
        return []
    latest = mine.orderBy(F.col("started_at").desc()).limit(PROMOTION_ROWS).collect()
    out = []
    for r in latest:
        details = json.loads(r["details"]) if r["details"] else {}
        why = details.get("reason") or ""
        if r["error"]:
            why = r["error"]
        elif details.get("decision") == "forced":
            failed = [
                c["rule"] for c in details.get("evidence", {}).get("checks", ()) if not c["passed"]
            ]
            why = f"forced past: {', '.join(failed) or 'nothing'}" + (f"; {why}" if why else "")
        out.append(
            {"run_id": r["run_id"], "run_date": r["run_date"], "status": r["status"], "why": why}
            | {
                k: details.get(k)
                for k in ("decision", "alias", "version", "previous_version", "requested_by")
            }
        )
    return out


def _distributions(
    spark: SparkSession,
    tables: Tables,
    usecase: UseCase,
    baseline: DataFrame | None,
    scored: DataFrame | None,
    flagged: Sequence[str],
    drift: Sequence[Mapping[str, Any]],
    day: date,
    n_bins: int,
) -> list[Distribution]:
    """Baseline vs run date shares per bucket of each flagged feature (the PSI's buckets)."""
    if baseline is None or scored is None or not flagged:
        return []
    outputs = [c for c in flagged if c in scored.columns]
    inputs = [c for c in flagged if c not in outputs]
    if inputs and not io.table_exists(spark, tables["features"]):
        inputs = []
    keys = [*usecase.entity, "as_of_date"]
    current = scored.select(*keys, *outputs)
    if inputs:
        features = (
            io.read_table(spark, tables["features"])
            .withColumnRenamed(usecase.features.as_of_column, "as_of_date")
            .where(F.col("as_of_date") == F.lit(day))
        )
        inputs = [c for c in inputs if c in features.columns]
        current = current.join(features.select(*keys, *inputs), on=keys, how="inner")
    drawn = [c for c in flagged if c in (*inputs, *outputs) and c in baseline.columns]
    if not drawn:
        return []
    numeric, categorical = split_kinds(baseline, drawn)
    spec = build_bin_spec(baseline, numeric, categorical, n_bins)
    reference = collect_counts(bucket_counts(baseline, spec))
    today = collect_counts(bucket_counts(current, spec))
    status = {f: "ok" for f in drawn}
    psi: dict[str, float | None] = dict.fromkeys(drawn)
    for r in drift:
        if r["feature"] in status and _SEVERITY[r["status"]] > _SEVERITY[status[r["feature"]]]:
            status[r["feature"]] = r["status"]
        if r["feature"] in psi and r["metric"] == "psi" and r["comparison"] == "baseline":
            psi[r["feature"]] = float(r["value"])
    return [
        _distribution(f, spec, reference.get(f, {}), today.get(f, {}), status[f], psi[f])
        for f in drawn
    ]


def _distribution(
    feature: str,
    spec: BinSpec,
    reference: Mapping[str, int],
    current: Mapping[str, int],
    status: str,
    psi: float | None,
) -> Distribution:
    """One feature's buckets in order, labelled by their range or category."""
    buckets = sorted({*reference, *current})
    if feature in spec.numeric:
        edges = spec.numeric[feature]
        labels = [_range_label(b, edges) for b in buckets]
    else:
        labels = list(buckets)
    return Distribution(
        feature=feature,
        status=status,
        psi=psi,
        buckets=labels,
        baseline=[reference.get(b, 0) for b in buckets],
        current=[current.get(b, 0) for b in buckets],
    )


def _range_label(bucket: str, edges: Sequence[float]) -> str:
    if not bucket.isdigit():
        return bucket
    i = int(bucket)
    if not edges:
        return "all"
    if i == 0:
        return f"≤ {edges[0]:.3g}"
    if i >= len(edges):
        return f"> {edges[-1]:.3g}"
    return f"({edges[i - 1]:.3g}, {edges[i]:.3g}]"


def _calibration(baseline: DataFrame | None, usecase: UseCase) -> list[Calibration]:
    """The held-out baseline rows' calibration (binary with `__outcome__` only)."""
    if usecase.model.task != BINARY or baseline is None or OUTCOME not in baseline.columns:
        return []
    positive = usecase.model.positive_class
    rows = calibration_bins(baseline, "score", OUTCOME, positive, CALIBRATION_BINS).collect()
    return [
        Calibration(
            name="held-out baseline rows",
            n=[int(r["n"]) for r in rows],
            mean_score=[float(r["mean_score"]) for r in rows],
            outcome_rate=[float(r["outcome_rate"]) for r in rows],
        )
    ]


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


def _runs(
    spark: SparkSession,
    ref: TableRef,
    usecase: str,
    run_date: date | None = None,
    steps: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The latest runs of the use case (of one date and steps, when given)."""
    if not io.table_exists(spark, ref):
        return []
    mine = io.read_table(spark, ref).where(F.col("usecase") == F.lit(usecase))
    if run_date is not None:
        mine = mine.where(F.col("run_date") == F.lit(run_date))
    if steps:
        mine = mine.where(F.col("step").isin(*steps))
    latest = mine.orderBy(F.col("started_at").desc()).limit(HISTORY_ROWS)
    return [r.asDict() for r in latest.collect()]
