"""A Prometheus textfile for node_exporter's textfile collector, written atomically.

Batch jobs cannot be scraped while they run, so, following Prometheus' guidance for batch
jobs, the job leaves a `.prom` file that node_exporter exposes: per step the time of the
last success (alert when it gets old), the last run's duration, rows and status, and the
drift verdicts of the latest monitored date. Samples carry no timestamps. The file is
rebuilt from the `runs` and `drift_metrics` tables, so whichever process ran a step, the
file says the same; it is written to a temporary file in the same folder and renamed over
the old one, so the collector never reads half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from scoring.core import io
from scoring.core.tables import TableRef

ROW_KINDS = ("in", "out", "quarantined", "deduplicated")


@dataclass(frozen=True)
class StepStats:
    """What the file says about one step: its last run and its last successful run."""

    step: str
    last_success_timestamp: float | None
    last_run_succeeded: bool
    duration_seconds: float
    rows: dict[str, int | None]


@dataclass(frozen=True)
class DriftCounts:
    """Warn and alert counts of one model and comparison on the latest monitored date."""

    model_name: str
    comparison: str
    alerts: int
    warnings: int
    dataset_drift: bool


def render(usecase: str, steps: Sequence[StepStats], drift: Sequence[DriftCounts]) -> str:
    """The text exposition format: HELP and TYPE once per metric, then its samples; every
    sample is labelled with the use case."""
    families: list[tuple[str, str, list[tuple[str, float]]]] = [
        (
            "scoring_step_last_success_timestamp_seconds",
            "Unix time the step last succeeded.",
            [
                (_labels(usecase=usecase, step=s.step), s.last_success_timestamp)
                for s in steps
                if s.last_success_timestamp is not None
            ],
        ),
        (
            "scoring_step_last_run_success",
            "1 if the step's last run succeeded, else 0.",
            [(_labels(usecase=usecase, step=s.step), float(s.last_run_succeeded)) for s in steps],
        ),
        (
            "scoring_step_duration_seconds",
            "Duration of the step's last run.",
            [(_labels(usecase=usecase, step=s.step), s.duration_seconds) for s in steps],
        ),
        (
            "scoring_step_rows",
            "Rows of the step's last run, by kind (in, out, ...).",
            [
                (_labels(usecase=usecase, step=s.step, kind=k), float(v))
                for s in steps
                for k, v in s.rows.items()
                if v is not None
            ],
        ),
        (
            "scoring_drift_alerts",
            "Drift metrics at alert on the latest monitored date.",
            [(_drift_labels(usecase, d), float(d.alerts)) for d in drift],
        ),
        (
            "scoring_drift_warnings",
            "Drift metrics at warn on the latest monitored date.",
            [(_drift_labels(usecase, d), float(d.warnings)) for d in drift],
        ),
        (
            "scoring_dataset_drift",
            "1 if the share of drifted features reached its threshold.",
            [(_drift_labels(usecase, d), float(d.dataset_drift)) for d in drift],
        ),
    ]
    lines: list[str] = []
    for name, help_text, samples in families:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        lines += [f"{name}{{{labels}}} {_number(value)}" for labels, value in samples]
    return "\n".join(lines) + "\n"


def write_atomically(path: str, text: str) -> None:
    """Write `text` to `path` via a temporary file in the same folder and os.replace."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)  # node_exporter usually runs as another user
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_prometheus(
    spark: SparkSession, usecase: str, runs: TableRef, drift: TableRef, path: str
) -> str:
    """Rebuild a use case's textfile from its `runs` and `drift_metrics`; returns its text."""
    mine = F.col("usecase") == F.lit(usecase)  # tables given by name may be shared
    steps = (
        step_stats(io.read_table(spark, runs).where(mine)) if io.table_exists(spark, runs) else []
    )
    counts = (
        drift_counts(io.read_table(spark, drift).where(mine))
        if io.table_exists(spark, drift)
        else []
    )
    text = render(usecase, steps, counts)
    write_atomically(path, text)
    return text


def step_stats(runs: DataFrame) -> list[StepStats]:
    """Each step's last run and last success (collects one row per step: tiny)."""
    newest = Window.partitionBy("step").orderBy(F.col("ended_at").desc(), F.col("run_id").desc())
    last = runs.withColumn("rank", F.row_number().over(newest)).where(F.col("rank") == 1)
    success = (
        runs.where(F.col("status") == "succeeded")
        .groupBy("step")
        .agg(F.max("ended_at").alias("last_success"))
    )
    joined = last.join(success, on="step", how="left").orderBy("step").collect()
    return [
        StepStats(
            step=r["step"],
            last_success_timestamp=_epoch(r["last_success"]),
            last_run_succeeded=r["status"] == "succeeded",
            duration_seconds=float(r["duration_seconds"]),
            rows={k: r[f"rows_{k}"] for k in ROW_KINDS},
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


def _drift_labels(usecase: str, counts: DriftCounts) -> str:
    return _labels(
        usecase=usecase, step="monitor", model=counts.model_name, comparison=counts.comparison
    )


def _labels(**labels: str) -> str:
    """`k="v",...` with backslash, quote and newline escaped as the format requires."""
    escape = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})
    return ",".join(f'{k}="{v.translate(escape)}"' for k, v in labels.items())


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


def _epoch(moment: datetime | None) -> float | None:
    """Seconds since the epoch of a timestamp PySpark returned (naive, in local time)."""
    return moment.timestamp() if moment is not None else None
