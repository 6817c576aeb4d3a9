"""Drift verdicts: thresholds per metric (and per feature for PSI) turn values into statuses.

A metric's status is `alert` when |value| >= its alert threshold, `warn` when
|value| >= its warn threshold, else `ok`; a metric without thresholds (`null_rate`,
`row_count`) is always `ok`. The dataset-level row `__dataset__ / drifted_share` is the share
of input features whose PSI is at `alert`, and it alerts when that share reaches
`dataset_drift_share`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

DATASET = "__dataset__"
STATUS_ORDER = ("ok", "warn", "alert")


@dataclass(frozen=True)
class Thresholds:
    """(warn, alert) per metric, PSI overrides per feature, and the dataset drift share."""

    metrics: Mapping[str, tuple[float, float]]
    psi_by_feature: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    dataset_drift_share: float = 0.3


def with_status(metrics: DataFrame, thresholds: Thresholds) -> DataFrame:
    """Add threshold_warn, threshold_alert and status to (feature, metric, value) rows."""
    warn, alert = _threshold(thresholds, 0), _threshold(thresholds, 1)
    magnitude = F.abs(F.col("value"))
    status = (
        F.when(
            F.col("threshold_alert").isNotNull() & (magnitude >= F.col("threshold_alert")),
            F.lit("alert"),
        )
        .when(
            F.col("threshold_warn").isNotNull() & (magnitude >= F.col("threshold_warn")),
            F.lit("warn"),
        )
        .otherwise(F.lit("ok"))
    )
    return (
        metrics.withColumn("threshold_warn", warn)
        .withColumn("threshold_alert", alert)
        .withColumn("status", status)
    )


def dataset_drift(statuses: DataFrame, inputs: Sequence[str], share: float) -> DataFrame:
    """One `__dataset__ / drifted_share` row: the share of `inputs` whose PSI alerts."""
    psi = statuses.where((F.col("metric") == "psi") & F.col("feature").isin(list(inputs) or [""]))
    drifted = F.sum(F.when(F.col("status") == "alert", 1).otherwise(0))
    value = F.try_divide(drifted, F.count(F.lit(1))).cast("double")
    row = psi.agg(value.alias("value")).select(
        F.lit(DATASET).alias("feature"),
        F.lit("drifted_share").alias("metric"),
        F.coalesce(F.col("value"), F.lit(0.0)).alias("value"),
        F.lit(None).cast("double").alias("threshold_warn"),
        F.lit(share).alias("threshold_alert"),
    )
    status = F.when(F.col("value") >= F.col("threshold_alert"), "alert").otherwise("ok")
    return row.withColumn("status", status)


def volume_metrics(reference_rows: DataFrame, current_rows: DataFrame, compare: bool) -> DataFrame:
    """`__dataset__` rows: `row_count` of the current rows and, if `compare`, `row_count_change`.

    `row_count_change` = current / reference - 1 (e.g. -0.5 is half the rows); it is
    only meaningful against a comparable slice (the previous date), not the training set.
    """
    both = reference_rows.select(F.col("rows").alias("ref")).crossJoin(
        current_rows.select(F.col("rows").alias("cur"))
    )
    change = F.try_divide(F.col("cur"), F.col("ref")) - F.lit(1.0)
    pairs = [
        F.struct(F.lit("row_count").alias("metric"), F.col("cur").cast("double").alias("value"))
    ]
    if compare:
        pairs.append(
            F.struct(
                F.lit("row_count_change").alias("metric"), change.cast("double").alias("value")
            )
        )
    rows = both.select(F.explode(F.array(*pairs)).alias("mv"))
    return rows.select(F.lit(DATASET).alias("feature"), "mv.metric", "mv.value").where(
        F.col("value").isNotNull()
    )


def _threshold(thresholds: Thresholds, which: int) -> Column:
    """The warn (0) or alert (1) threshold of each row: the feature's PSI override first."""
    expression: Column | None = None
    for feature, pair in sorted(thresholds.psi_by_feature.items()):
        condition = (F.col("metric") == "psi") & (F.col("feature") == feature)
        expression = _when(expression, condition, pair[which])
    for metric, pair in sorted(thresholds.metrics.items()):
        expression = _when(expression, F.col("metric") == metric, pair[which])
    if expression is None:
        return F.lit(None).cast("double")
    return expression.otherwise(F.lit(None).cast("double"))


def _when(expression: Column | None, condition: Column, value: float) -> Column:
    """Chain one more `when` branch onto a CASE expression (or start one)."""
    if expression is None:
        return F.when(condition, F.lit(float(value)))
    return expression.when(condition, F.lit(float(value)))
