"""The `monitor` step: drift of every model input and of the score, written to `drift_metrics`.

read  - the scores of the run date for the model (its version: the one that scored the date
        last, unless given), the features of that date, the same for the previous scored
        date, and the model version's training baseline;
math  - bin edges from the baseline, ONE grouped pass per frame (`drift.bucket_counts`), only
        the bucket counts (tiny) collected, metrics and statuses computed from them;
write - `drift_metrics` for (date, model_name) replaced as a whole, so reruns are idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import Any

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from scoring import io
from scoring.baseline import input_features, read_baseline
from scoring.config import MonitorSettings, TableRef
from scoring.contracts import load_contract, spark_schema
from scoring.drift import bucket_counts, build_bin_spec, collect_counts, split_kinds
from scoring.drift_status import Verdict
from scoring.errors import DataError
from scoring.monitor_metrics import comparison_verdicts, thresholds_from
from scoring.steps import StepResult

log = logging.getLogger(__name__)
KEYS = ["customer_id", "as_of_date"]


def run_monitor(
    spark: SparkSession,
    tables: dict[str, TableRef],
    settings: MonitorSettings,
    model_name: str,
    baseline_path: Callable[[str], str],
    run_date: date,
    run_id: str,
    model_version: str | None = None,
) -> StepResult:
    """Compare the run date's scored rows with the baseline and the previous scored date.

    Args:
        tables: `features`, `scores` and `drift_metrics` refs.
        baseline_path: model version -> local path of its baseline Parquet
            (`functools.partial(baseline.download_baseline, tracking, registry, name)`).
        model_version: the version to monitor; by default the one that scored `run_date` last.

    Raises:
        DataError: no scores for the model on `run_date`, or a baseline feature is missing.
    """
    scores = io.read_table(spark, tables["scores"]).where(F.col("model_name") == model_name)
    features = io.read_table(spark, tables["features"])
    version = model_version or _scoring_version(scores, run_date, tables["scores"], model_name)
    path = baseline_path(version)
    baseline = read_baseline(spark, path)
    inputs = input_features(baseline)
    missing = [c for c in inputs if c not in features.columns]
    if missing:
        raise DataError(f"{tables['features']}: baseline feature(s) {missing} are not columns")
    numeric, categorical = split_kinds(baseline, [*inputs, "score"])
    spec = build_bin_spec(
        baseline, numeric, categorical, settings.n_bins, settings.quantile_relative_error
    )
    current = collect_counts(
        bucket_counts(_scored_rows(features, scores, run_date, version, inputs), spec)
    )
    references = {"baseline": collect_counts(bucket_counts(baseline, spec))}
    previous_date = _previous_date(scores, run_date)
    if previous_date is not None:
        previous = _scored_rows(features, scores, previous_date, None, inputs)
        references["previous"] = collect_counts(bucket_counts(previous, spec))
    thresholds = thresholds_from(settings)
    rows = [
        _row(v, name, run_date, model_name, version, previous_date, run_id)
        for name, reference in references.items()
        for v in comparison_verdicts(
            reference, current, numeric, inputs, thresholds, settings.epsilon, name == "previous"
        )
    ]
    return _write(spark, tables, rows, run_date, model_name, version, path, run_id)


def _scoring_version(scores: DataFrame, run_date: date, ref: TableRef, model_name: str) -> str:
    """The model version that scored `run_date` last (a one-row aggregate on the driver)."""
    latest = (
        scores.where(F.col("as_of_date") == F.lit(run_date))
        .groupBy("model_version")
        .agg(F.max("scored_at").alias("at"))
        .orderBy(F.col("at").desc())
        .first()
    )
    if latest is None:
        raise DataError(f"{ref}: no scores of model {model_name} for as_of_date {run_date}")
    return str(latest["model_version"])


def _previous_date(scores: DataFrame, run_date: date) -> date | None:
    """The latest scored date before `run_date` for the model (a one-row aggregate)."""
    row = scores.where(F.col("as_of_date") < F.lit(run_date)).agg(F.max("as_of_date")).first()
    return row[0] if row is not None else None


def _scored_rows(
    features: DataFrame, scores: DataFrame, day: date, version: str | None, inputs: list[str]
) -> DataFrame:
    """The day's feature rows that were scored, with their score (one model version)."""
    day_scores = scores.where(F.col("as_of_date") == F.lit(day))
    if version is None:
        version_of_day = day_scores.groupBy("model_version").agg(F.max("scored_at").alias("at"))
        latest = version_of_day.orderBy(F.col("at").desc()).limit(1).select("model_version")
        day_scores = day_scores.join(latest, on="model_version", how="inner")
    else:
        day_scores = day_scores.where(F.col("model_version") == F.lit(version))
    day_features = features.where(F.col("as_of_date") == F.lit(day)).select(*KEYS, *inputs)
    return day_features.join(day_scores.select(*KEYS, "score"), on=KEYS, how="inner")


def _row(
    verdict: Verdict,
    comparison: str,
    run_date: date,
    model_name: str,
    version: str,
    previous_date: date | None,
    run_id: str,
) -> Row:
    """One drift_metrics row, in contract order."""
    return Row(
        date=run_date,
        model_name=model_name,
        model_version=version,
        feature=verdict.feature,
        metric=verdict.metric,
        value=float(verdict.value),
        threshold_warn=verdict.threshold_warn,
        threshold_alert=verdict.threshold_alert,
        status=verdict.status,
        comparison=comparison,
        reference_date=previous_date if comparison == "previous" else None,
        run_id=run_id,
    )


def _write(
    spark: SparkSession,
    tables: dict[str, TableRef],
    rows: list[Row],
    run_date: date,
    model_name: str,
    version: str,
    baseline: str,
    run_id: str,
) -> StepResult:
    """Replace the (date, model) slice of drift_metrics, log the verdicts, return the result."""
    schema = spark_schema(load_contract("drift_metrics"))
    ref = tables["drift_metrics"]
    io.ensure_table(spark, ref, schema, partition_by=("date",))
    metadata = {
        "run_id": run_id,
        "step": "monitor",
        "model_name": model_name,
        "model_version": version,
        "baseline": baseline,
        "source_versions": {
            name: io.current_version(spark, tables[name]) for name in ("features", "scores")
        },
    }
    where = f"date = DATE'{run_date.isoformat()}' AND model_name = '{model_name}'"
    frame = spark.createDataFrame(rows, schema)
    io.write_delta(frame, ref, "overwrite", metadata, replace_where=where)
    summary = _log_verdicts(rows, run_date, model_name, version)
    return StepResult(
        step="monitor",
        run_id=run_id,
        run_date=run_date,
        rows_in=_current_rows(rows),
        rows_out=len(rows),
        table_versions={"drift_metrics": io.last_commit(spark, ref)["version"]},
        details={"model_name": model_name, "model_version": version, **summary},
    )


def _current_rows(rows: list[Row]) -> int | None:
    """The number of scored rows monitored (the `row_count` metric)."""
    counts = [r["value"] for r in rows if r["metric"] == "row_count"]
    return int(counts[0]) if counts else None


def _log_verdicts(rows: list[Row], run_date: date, model: str, version: str) -> dict[str, Any]:
    """Log each warn / alert row and return the counts the CLI and Prometheus use."""
    for row in rows:
        if row["status"] == "ok":
            continue
        level = logging.ERROR if row["status"] == "alert" else logging.WARNING
        log.log(
            level,
            "drift %s: %s %s=%.4f (warn %s, alert %s) vs %s, model %s v%s, date %s",
            row["status"],
            row["feature"],
            row["metric"],
            row["value"],
            row["threshold_warn"],
            row["threshold_alert"],
            row["comparison"],
            model,
            version,
            run_date,
        )
    drifted = {r["comparison"]: r["value"] for r in rows if r["metric"] == "drifted_share"}
    return {
        "alerts": sum(r["status"] == "alert" for r in rows),
        "warnings": sum(r["status"] == "warn" for r in rows),
        "dataset_drift": any(
            r["status"] == "alert" for r in rows if r["metric"] == "drifted_share"
        ),
        "drifted_share": drifted,
    }
