"""The `monitor` step: drift of every model input and of the score, written to `drift_metrics`.

read  - the scores of the run date for the model (its version: the one that scored the date
        last, unless given), the features of that date, the same for the previous scored
        date, and the model version's training baseline;
math  - bin edges from the baseline, ONE grouped pass per frame (`scoring.monitor.binning.bucket_counts`), only
        the bucket counts (tiny) collected, metrics and statuses computed from them;
write - `drift_metrics` for (date, model_name) replaced as a whole, so reruns are idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from scoring.core import io, sql
from scoring.core.config import MonitorSettings
from scoring.core.contracts import load_contract, spark_schema
from scoring.core.errors import DataError
from scoring.core.tables import TableRef, Tables
from scoring.model.tasks import MONITORED_OUTPUTS
from scoring.monitor.baseline import input_features, read_baseline
from scoring.monitor.binning import bucket_counts, build_bin_spec, collect_counts, split_kinds
from scoring.monitor.verdicts import DATASET, Verdict, comparison_verdicts, thresholds_from
from scoring.runs.result import StepResult
from scoring.usecase.spec import AS_OF_DATE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MonitorRequest:
    """Which model's scores to monitor, and how the use case's tables are keyed."""

    model_name: str
    entity: tuple[str, ...]
    task: str
    as_of_column: str = AS_OF_DATE
    model_version: str | None = None  # None: the version that scored the date last


def run_monitor(
    spark: SparkSession,
    tables: Tables,
    settings: MonitorSettings,
    request: MonitorRequest,
    baseline_path: Callable[[str], str],
    run_date: date,
    run_id: str,
) -> StepResult:
    """Compare the run date's scored rows with the baseline and the previous scored date.

    Args:
        baseline_path: model version -> local path of its baseline Parquet
            (`functools.partial(baseline.download_baseline, tracking, registry, name)`).

    Raises:
        DataError: no scores for the model on `run_date`, or a baseline feature is missing.
    """
    pinned = {name: io.required_version(spark, tables[name]) for name in ("features", "scores")}
    scores = io.read_table(spark, tables["scores"], pinned["scores"]).where(
        F.col("model_name") == F.lit(request.model_name)
    )
    features = io.read_table(spark, tables["features"], pinned["features"]).withColumnRenamed(
        request.as_of_column, AS_OF_DATE
    )
    version = request.model_version or _scoring_version(
        scores, run_date, tables["scores"], request.model_name
    )
    path = baseline_path(version)
    outputs = list(MONITORED_OUTPUTS[request.task])
    baseline = read_baseline(spark, path, outputs)
    inputs = input_features(baseline, request.entity, request.task)
    missing = [c for c in inputs if c not in features.columns]
    if missing:
        raise DataError(f"{tables['features']}: baseline feature(s) {missing} are not columns")
    numeric, categorical = split_kinds(baseline, [*inputs, *outputs])
    spec = build_bin_spec(
        baseline, numeric, categorical, settings.n_bins, settings.quantile_relative_error
    )
    keys = [*request.entity, AS_OF_DATE]
    current = collect_counts(
        bucket_counts(
            _scored_rows(features, scores, run_date, version, inputs, keys, outputs), spec
        )
    )
    references = {"baseline": collect_counts(bucket_counts(baseline, spec))}
    previous_date = _previous_date(scores, run_date)
    if previous_date is not None:
        previous = _scored_rows(features, scores, previous_date, None, inputs, keys, outputs)
        references["previous"] = collect_counts(bucket_counts(previous, spec))
    thresholds = thresholds_from(settings)
    context = _Context(tables.usecase, run_date, request.model_name, version, previous_date, run_id)
    rows = [
        context.row(v, name)
        for name, reference in references.items()
        for v in comparison_verdicts(
            reference, current, numeric, inputs, thresholds, settings.epsilon, name == "previous"
        )
    ]
    return _write(spark, tables, rows, context, path, pinned)


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
    row = scores.where(F.col(AS_OF_DATE) < F.lit(run_date)).agg(F.max(AS_OF_DATE)).first()
    return row[0] if row is not None else None


def _scored_rows(
    features: DataFrame,
    scores: DataFrame,
    day: date,
    version: str | None,
    inputs: list[str],
    keys: list[str],
    outputs: list[str],
) -> DataFrame:
    """The day's feature rows that were scored, with their outputs (one model version)."""
    day_scores = scores.where(F.col(AS_OF_DATE) == F.lit(day))
    if version is None:
        version_of_day = day_scores.groupBy("model_version").agg(F.max("scored_at").alias("at"))
        latest = version_of_day.orderBy(F.col("at").desc()).limit(1).select("model_version")
        day_scores = day_scores.join(latest, on="model_version", how="inner")
    else:
        day_scores = day_scores.where(F.col("model_version") == F.lit(version))
    day_features = features.where(F.col(AS_OF_DATE) == F.lit(day)).select(*keys, *inputs)
    return day_features.join(day_scores.select(*keys, *outputs), on=keys, how="inner")


@dataclass(frozen=True)
class _Context:
    """What every drift_metrics row of a run shares."""

    usecase: str
    run_date: date
    model_name: str
    version: str
    previous_date: date | None
    run_id: str

    def row(self, verdict: Verdict, comparison: str) -> Row:
        """One drift_metrics row, in contract order."""
        return Row(
            usecase=self.usecase,
            date=self.run_date,
            model_name=self.model_name,
            model_version=self.version,
            feature=verdict.feature,
            metric=verdict.metric,
            value=float(verdict.value),
            threshold_warn=verdict.threshold_warn,
            threshold_alert=verdict.threshold_alert,
            status=verdict.status,
            comparison=comparison,
            reference_date=self.previous_date if comparison == "previous" else None,
            run_id=self.run_id,
        )


def _write(
    spark: SparkSession,
    tables: Tables,
    rows: list[Row],
    context: _Context,
    baseline: str,
    pinned: dict[str, int],
) -> StepResult:
    """Replace the (date, model) slice of drift_metrics, log the verdicts, return the result."""
    contract = load_contract("drift_metrics")
    schema = spark_schema(contract)
    ref = tables["drift_metrics"]
    io.ensure_table(spark, ref, io.contract_spec(contract))
    metadata = {
        "run_id": context.run_id,
        "usecase": context.usecase,
        "step": "monitor",
        "model_name": context.model_name,
        "model_version": context.version,
        "baseline": baseline,
        "source_versions": pinned,
    }
    where = sql.predicate(("date", context.run_date), ("model_name", context.model_name))
    frame = spark.createDataFrame(rows, schema)
    io.write_delta(frame, ref, "overwrite", metadata, replace_where=where)
    summary = _log_verdicts(rows, context.run_date, context.model_name, context.version)
    return StepResult(
        step="monitor",
        run_id=context.run_id,
        run_date=context.run_date,
        rows_in=_current_rows(rows),
        rows_out=len(rows),
        table_versions={
            "drift_metrics": io.require_own_commit(spark, ref, context.run_id)["version"]
        },
        details={
            "model_name": context.model_name,
            "model_version": context.version,
            "source_versions": pinned,
            **summary,
        },
    )


def _current_rows(rows: list[Row]) -> int | None:
    """The number of scored rows monitored (the `row_count` metric)."""
    counts = [r["value"] for r in rows if r["metric"] == "row_count"]
    return int(counts[0]) if counts else None


def _log_verdicts(rows: list[Row], run_date: date, model: str, version: str) -> dict[str, Any]:
    """Log one line per comparison and status (the features and their metrics) and return
    the counts and the alerting features that the CLI, MLflow and Prometheus use."""
    for comparison in sorted({r["comparison"] for r in rows}):
        for status, level in (("alert", logging.ERROR), ("warn", logging.WARNING)):
            hits = [r for r in rows if r["comparison"] == comparison and r["status"] == status]
            if hits:
                log.log(
                    level,
                    "drift %s vs %s on %s (%s v%s): %s",
                    status,
                    comparison,
                    run_date,
                    model,
                    version,
                    describe_hits(hits),
                )
    drifted = {r["comparison"]: r["value"] for r in rows if r["metric"] == "drifted_share"}
    return {
        "alerts": sum(r["status"] == "alert" for r in rows),
        "warnings": sum(r["status"] == "warn" for r in rows),
        "dataset_drift": any(
            r["status"] == "alert" for r in rows if r["metric"] == "drifted_share"
        ),
        "drifted_share": drifted,
        "alerted_features": _features(rows, "alert"),
        "warned_features": _features(rows, "warn"),
    }


def describe_hits(rows: list[Row]) -> str:
    """`segment (psi 0.530, js_distance 0.303), amount_sum_7d (psi 0.116)`: by feature."""
    metrics: dict[str, list[str]] = {}
    for row in rows:
        metrics.setdefault(row["feature"], []).append(f"{row['metric']} {row['value']:.3g}")
    return ", ".join(f"{feature} ({', '.join(m)})" for feature, m in sorted(metrics.items()))


def _features(rows: list[Row], status: str) -> list[str]:
    """The features (not the dataset row) with a metric at `status`, in any comparison."""
    return sorted({r["feature"] for r in rows if r["status"] == status and r["feature"] != DATASET})
