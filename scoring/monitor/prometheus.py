"""A use case's metrics for Prometheus: a textfile for node_exporter and, when configured, a
push to a Pushgateway.

Batch jobs cannot be scraped while they run, so, following Prometheus' guidance for batch
jobs, the job leaves a `.prom` file that node_exporter exposes (and, on a cluster where no
node_exporter reads the driver's disk, pushes the same metrics to a Pushgateway, grouped by
job `scoring` and the use case): per step the time of the last success (alert when it gets
old), the last ended run's duration, rows and status, the number of runs by status (a
`killed` count that grows means jobs die without a word; `running` shows one in progress),
the drift verdicts of the latest monitored date, and each model's newest quality metrics
with their alert / warn counts. Every sample carries the `usecase`
label; none carries a timestamp. The metrics are rebuilt from the `runs` and `drift_metrics`
tables, so whichever process ran a step, they say the same. `prometheus_client` writes the file to a temporary file in the same
folder and renames it over the old one, so the collector never reads half a file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Gauge,
    generate_latest,
    push_to_gateway,
    write_to_textfile,
)
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from scoring.core import io
from scoring.core.tables import TableRef

log = logging.getLogger(__name__)
ROW_KINDS = ("in", "out", "quarantined", "deduplicated")
PUSH_JOB = "scoring"
PUSH_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class StepStats:
    """What the file says about one step: its last run and its last successful run."""

    step: str
    last_success_timestamp: float | None
    last_run_succeeded: bool
    duration_seconds: float
    rows: dict[str, int | None]
    #: Runs of the step by status (running, succeeded, failed, killed) in the runs table.
    runs: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftCounts:
    """Warn and alert counts of one model and comparison on the latest monitored date."""

    model_name: str
    comparison: str
    alerts: int
    warnings: int
    dataset_drift: bool


@dataclass(frozen=True)
class QualitySample:
    """A model's newest value of one quality metric (kind realized or estimated)."""

    model_name: str
    kind: str
    metric: str
    value: float
    status: str


def registry_of(
    usecase: str,
    steps: Sequence[StepStats],
    drift: Sequence[DriftCounts],
    quality: Sequence[QualitySample] = (),
) -> CollectorRegistry:
    """A registry holding the use case's gauges (and nothing else)."""
    registry = CollectorRegistry()

    def gauge(name: str, documentation: str, labels: Sequence[str]) -> Gauge:
        return Gauge(name, documentation, ["usecase", *labels], registry=registry)

    last_success = gauge(
        "scoring_step_last_success_timestamp_seconds",
        "Unix time the step last succeeded.",
        ["step"],
    )
    last_ok = gauge(
        "scoring_step_last_run_success", "1 if the step's last run succeeded, else 0.", ["step"]
    )
    duration = gauge("scoring_step_duration_seconds", "Duration of the step's last run.", ["step"])
    rows = gauge(
        "scoring_step_rows",
        "Rows of the step's last run, by kind (in, out, ...).",
        ["step", "kind"],
    )
    runs = gauge(
        "scoring_step_runs", "Runs of the step in the runs table, by status.", ["step", "status"]
    )
    for s in steps:
        for status, count in s.runs.items():
            runs.labels(usecase, s.step, status).set(count)
        if s.last_success_timestamp is not None:
            last_success.labels(usecase, s.step).set(s.last_success_timestamp)
        last_ok.labels(usecase, s.step).set(float(s.last_run_succeeded))
        duration.labels(usecase, s.step).set(s.duration_seconds)
        for kind, value in s.rows.items():
            if value is not None:
                rows.labels(usecase, s.step, kind).set(value)
    drift_labels = ["step", "model", "comparison"]
    alerts = gauge(
        "scoring_drift_alerts", "Drift metrics at alert on the latest monitored date.", drift_labels
    )
    warnings = gauge(
        "scoring_drift_warnings",
        "Drift metrics at warn on the latest monitored date.",
        drift_labels,
    )
    dataset = gauge(
        "scoring_dataset_drift",
        "1 if the share of drifted features reached its threshold.",
        drift_labels,
    )
    for d in drift:
        labels = (usecase, "monitor", d.model_name, d.comparison)
        alerts.labels(*labels).set(d.alerts)
        warnings.labels(*labels).set(d.warnings)
        dataset.labels(*labels).set(float(d.dataset_drift))
    _quality_gauges(usecase, quality, gauge)
    return registry


def _quality_gauges(usecase: str, quality: Sequence[QualitySample], gauge: Any) -> None:
    """`scoring_model_quality` per model, kind and metric; alert / warn counts per kind."""
    values = gauge(
        "scoring_model_quality",
        "Newest value of a model quality metric (date of the newest slice that has it).",
        ["step", "model", "kind", "metric"],
    )
    alerts = gauge(
        "scoring_quality_alerts", "Quality metrics at alert among their newest values.",
        ["step", "model", "kind"],
    )  # fmt: skip
    warnings = gauge(
        "scoring_quality_warnings", "Quality metrics at warn among their newest values.",
        ["step", "model", "kind"],
    )  # fmt: skip
    counts: dict[tuple[str, str], list[int]] = {}
    for q in quality:
        values.labels(usecase, "quality", q.model_name, q.kind, q.metric).set(q.value)
        count = counts.setdefault((q.model_name, q.kind), [0, 0])
        count[0] += q.status == "alert"
        count[1] += q.status == "warn"
    for (model, kind), (alert, warn) in sorted(counts.items()):
        alerts.labels(usecase, "quality", model, kind).set(alert)
        warnings.labels(usecase, "quality", model, kind).set(warn)


def publish(registry: CollectorRegistry, usecase: str, path: str, pushgateway: str | None) -> str:
    """Write the textfile (atomically, readable by node_exporter's user) and push to the
    Pushgateway when one is configured; return the text. A push that fails is logged, not
    raised: the metrics are in the file and the tables, and the step itself succeeded."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(target), registry)
    os.chmod(target, 0o644)  # node_exporter usually runs as another user
    if pushgateway:
        try:
            push_to_gateway(pushgateway, job=PUSH_JOB, grouping_key={"usecase": usecase},
                            registry=registry, timeout=PUSH_TIMEOUT_SECONDS)  # fmt: skip
        except OSError as exc:
            log.error("could not push the metrics of %s to %s: %s", usecase, pushgateway, exc)
    return generate_latest(registry).decode("utf-8")


def write_prometheus(
    spark: SparkSession,
    usecase: str,
    runs: TableRef,
    drift: TableRef,
    path: str,
    pushgateway: str | None = None,
    quality: TableRef | None = None,
) -> str:
    """Rebuild a use case's metrics from its `runs`, `drift_metrics` and `model_quality`,
    write the textfile and push them (`publish`); returns the text."""
    mine = F.col("usecase") == F.lit(usecase)  # tables given by name may be shared
    steps = (
        step_stats(io.read_table(spark, runs).where(mine)) if io.table_exists(spark, runs) else []
    )
    counts = (
        drift_counts(io.read_table(spark, drift).where(mine))
        if io.table_exists(spark, drift)
        else []
    )
    samples = (
        quality_samples(io.read_table(spark, quality).where(mine))
        if quality is not None and io.table_exists(spark, quality)
        else []
    )
    return publish(registry_of(usecase, steps, counts, samples), usecase, path, pushgateway)


def quality_samples(quality: DataFrame) -> list[QualitySample]:
    """Each model's newest row per kind and metric (one row per model, kind and metric
    reaches the driver: tiny)."""
    newest = Window.partitionBy("model_name", "kind", "metric").orderBy(
        F.col("date").desc(), F.col("computed_at").desc(), F.col("model_version").desc()
    )
    rows = (
        quality.withColumn("rank", F.row_number().over(newest))
        .where(F.col("rank") == 1)
        .orderBy("model_name", "kind", "metric")
        .collect()
    )
    return [
        QualitySample(r["model_name"], r["kind"], r["metric"], float(r["value"]), r["status"])
        for r in rows
    ]


def step_stats(runs: DataFrame) -> list[StepStats]:
    """Each step's last ended run, last success and runs by status (one row per step and
    status reaches the driver: tiny)."""
    ended = runs.where(F.col("status") != F.lit("running"))
    newest = Window.partitionBy("step").orderBy(F.col("ended_at").desc(), F.col("run_id").desc())
    last = ended.withColumn("rank", F.row_number().over(newest)).where(F.col("rank") == 1)
    success = (
        runs.where(F.col("status") == "succeeded")
        .groupBy("step")
        .agg(F.max("ended_at").alias("last_success"))
    )
    joined = last.join(success, on="step", how="left").orderBy("step").collect()
    by_status: dict[str, dict[str, int]] = {}
    for r in runs.groupBy("step", "status").count().collect():
        by_status.setdefault(r["step"], {})[r["status"]] = int(r["count"])
    return [
        StepStats(
            step=r["step"],
            last_success_timestamp=_epoch(r["last_success"]),
            last_run_succeeded=r["status"] == "succeeded",
            duration_seconds=float(r["duration_seconds"] or 0.0),
            rows={k: r[f"rows_{k}"] for k in ROW_KINDS},
            runs=by_status.get(r["step"], {}),
        )
        for r in joined
    ]


def drift_counts(drift: DataFrame) -> list[DriftCounts]:
    """Warn / alert counts per model and comparison on each model's latest date (tiny)."""
    latest = Window.partitionBy("model_name").orderBy(F.col("date").desc())
    on_latest = drift.withColumn("rank", F.dense_rank().over(latest)).where(F.col("rank") == 1)
    rows = (
        on_latest.groupBy("model_name", "comparison")
        .agg(
            F.sum(F.when(F.col("status") == "alert", 1).otherwise(0)).alias("alerts"),
            F.sum(F.when(F.col("status") == "warn", 1).otherwise(0)).alias("warnings"),
            F.max(F.when(F.col("metric") == "drifted_share", F.col("status") == "alert")).alias(
                "dataset_drift"
            ),
        )
        .orderBy("model_name", "comparison")
        .collect()
    )
    return [
        DriftCounts(
            r["model_name"],
            r["comparison"],
            int(r["alerts"]),
            int(r["warnings"]),
            bool(r["dataset_drift"]),
        )
        for r in rows
    ]


def _epoch(moment: datetime | None) -> float | None:
    """Seconds since the epoch of a timestamp PySpark returned (naive, in local time)."""
    return moment.timestamp() if moment is not None else None
