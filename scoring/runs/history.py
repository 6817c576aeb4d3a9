"""The `runs` table: one row per step run, failed runs included.

Wrap every step in `record_step`; the row is appended when the block ends, with the
StepResult's counts and table versions when it succeeds, or the error when it raises (the
error is then re-raised unchanged).

Example:
    >>> with record_step(spark, tables["runs"], "claims", "score", day, run_id, None) as rec:
    ...     rec.result = run_score(spark, ...)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime

from pyspark.sql import Row, SparkSession

from scoring.core import io
from scoring.core.contracts import load_contract, spark_schema
from scoring.core.tables import TableRef
from scoring.runs.result import StepResult

log = logging.getLogger(__name__)
RUNS = load_contract("runs")
RUNS_SCHEMA = spark_schema(RUNS)
_MAX_ERROR = 2000


@dataclass
class StepRecorder:
    """What the wrapped block hands back: set `result` to the step's StepResult."""

    result: StepResult | None = None


@contextmanager
def record_step(
    spark: SparkSession,
    ref: TableRef,
    usecase: str,
    step: str,
    run_date: date | None,
    run_id: str,
    pipeline_run_id: str | None = None,
) -> Iterator[StepRecorder]:
    """Append this step run's row to `runs` when the block ends, succeeded or failed."""
    recorder = StepRecorder()
    # Aware datetimes: PySpark converts them to UTC instants whatever the local time zone.
    started = datetime.now(UTC)
    try:
        yield recorder
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        row = run_row(
            usecase,
            step,
            run_date,
            run_id,
            pipeline_run_id,
            started,
            datetime.now(UTC),
            None,
            error,
        )
        try:
            append_run(spark, ref, row)
        except Exception:  # the step's own error matters more than a failed record
            log.exception("could not record the failed %s run in %s", step, ref)
        raise
    ended = datetime.now(UTC)
    row = run_row(
        usecase, step, run_date, run_id, pipeline_run_id, started, ended, recorder.result, None
    )
    append_run(spark, ref, row)


def run_row(
    usecase: str,
    step: str,
    run_date: date | None,
    run_id: str,
    pipeline_run_id: str | None,
    started: datetime,
    ended: datetime,
    result: StepResult | None,
    error: str | None,
) -> Row:
    """One `runs` row: `failed` with the error when there is one, else `succeeded`."""
    return Row(
        run_id=run_id,
        usecase=usecase,
        pipeline_run_id=pipeline_run_id,
        step=step,
        run_date=run_date,
        status="failed" if error is not None else "succeeded",
        started_at=started,
        ended_at=ended,
        duration_seconds=(ended - started).total_seconds(),
        rows_in=result.rows_in if result else None,
        rows_out=result.rows_out if result else None,
        rows_quarantined=result.rows_quarantined if result else None,
        rows_deduplicated=result.rows_deduplicated if result else None,
        table_versions=dict(result.table_versions) if result else None,
        warnings=list(result.warnings) if result else None,
        error=error[:_MAX_ERROR] if error is not None else None,
    )


def append_run(spark: SparkSession, ref: TableRef, row: Row) -> None:
    """Append one row to `runs`, creating the table on first use."""
    io.ensure_table(spark, ref, io.contract_spec(RUNS))
    frame = spark.createDataFrame([row], RUNS_SCHEMA)
    metadata = {
        "run_id": row["run_id"],
        "usecase": row["usecase"],
        "step": "record_run",
        "recorded_step": row["step"],
    }
    io.write_delta(frame, ref, "append", metadata)
