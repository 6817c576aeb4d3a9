"""The `runs` table: one row per step run, running, failed and killed runs included.

Wrap every step in `record_step`. When the block starts, the run claims its step with a
`running` row (one atomic MERGE): a second run of the same step fails at once with a
ConflictError, before it has read or written anything, while the first is alive. Which runs
exclude each other: two runs of one step and date; for `ingest`, `score`, `quality`,
`compare`, `promote` and `maintain`, two runs of any dates (they write what every date
shares: bronze, scores_current, the realized rows of every earlier date, the registry's
aliases, all).

While the block runs, a daemon thread renews the row's `heartbeat_at` every
`runs.heartbeat_seconds`. When it ends, the row gets the StepResult's counts and table
versions (`succeeded`), or the error (`failed`; the error is then re-raised unchanged).

A process killed mid-step (SIGKILL, the OOM killer, a cancelled job) leaves its row
`running`. The next run of any step of the use case marks it `killed` when its heartbeat is
older than `runs.stale_after_seconds`, or at once when it ran on this host and its process
is gone; then goes on. A run marked killed that was in fact alive (a very long pause)
overwrites the mark with its real end.

Example:
    >>> with record_step(spark, tables["runs"], "claims", "score", day, run_id, None) as rec:
    ...     rec.result = run_score(spark, ...)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from delta.exceptions import DeltaConcurrentModificationException
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from scoring.core import io, sql
from scoring.core.config import RunsSettings
from scoring.core.contracts import load_contract, spark_schema
from scoring.core.errors import ConflictError
from scoring.core.faults import fault_point
from scoring.core.tables import TableRef, Tables, bronze_name
from scoring.runs.result import StepResult

log = logging.getLogger(__name__)
RUNS = load_contract("runs")
RUNS_SCHEMA = spark_schema(RUNS)
RUNNING, SUCCEEDED, FAILED, KILLED = "running", "succeeded", "failed", "killed"
#: Steps whose runs exclude each other whatever their dates (the others: per date).
USECASE_WIDE = frozenset({"ingest", "score", "quality", "compare", "promote", "maintain"})
#: The defaults of conf/base.yaml, for callers without a Config (tests, tools).
DEFAULT_SETTINGS = RunsSettings(heartbeat_seconds=30.0, stale_after_seconds=300.0)
_MAX_ERROR = 2000
#: Attempts of a runs write that Delta refused because another run wrote `runs` meanwhile.
_ATTEMPTS = 8
_T = TypeVar("_T")


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
    settings: RunsSettings = DEFAULT_SETTINGS,
) -> Iterator[StepRecorder]:
    """Claim the step in `runs`, keep the claim alive, record how the block ended.

    Raises:
        ConflictError: a live run of the same step (module docstring) holds it; this run is
            recorded as failed and has done nothing else.
    """
    recorder = StepRecorder()
    # Aware datetimes: PySpark converts them to UTC instants whatever the local time zone.
    started = datetime.now(UTC)

    def row(status: str, result: StepResult | None, error: str | None) -> Row:
        ended = None if status == RUNNING else datetime.now(UTC)
        return run_row(
            usecase, step, run_date, run_id, pipeline_run_id, started, ended, result, error,
            status=status, heartbeat=started if status == RUNNING else None,
        )  # fmt: skip

    try:
        claim(spark, ref, row(RUNNING, None, None), settings)
    except ConflictError as exc:
        _record_failure(spark, ref, row(FAILED, None, f"{type(exc).__name__}: {exc}"), step)
        raise
    fault_point(f"run.claimed.{step}")
    heartbeat = Heartbeat(spark, ref, run_id, step, settings.heartbeat_seconds)
    heartbeat.start()
    try:
        yield recorder
    except BaseException as exc:
        heartbeat.stop()
        _record_failure(spark, ref, row(FAILED, None, f"{type(exc).__name__}: {exc}"), step)
        raise
    heartbeat.stop()
    finish(spark, ref, row(SUCCEEDED, recorder.result, None))


def _record_failure(spark: SparkSession, ref: TableRef, failed: Row, step: str) -> None:
    try:
        finish(spark, ref, failed)
    except Exception:  # the step's own error matters more than a failed record
        log.exception("could not record the failed %s run in %s", step, ref)


def run_row(
    usecase: str,
    step: str,
    run_date: date | None,
    run_id: str,
    pipeline_run_id: str | None,
    started: datetime,
    ended: datetime | None,
    result: StepResult | None,
    error: str | None,
    status: str | None = None,
    heartbeat: datetime | None = None,
) -> Row:
    """One `runs` row; its status is `failed` with an error, else `succeeded`, unless given."""
    return Row(
        run_id=run_id,
        usecase=usecase,
        pipeline_run_id=pipeline_run_id,
        step=step,
        run_date=run_date,
        status=status or (FAILED if error is not None else SUCCEEDED),
        started_at=started,
        ended_at=ended,
        duration_seconds=(ended - started).total_seconds() if ended else None,
        rows_in=result.rows_in if result else None,
        rows_out=result.rows_out if result else None,
        rows_quarantined=result.rows_quarantined if result else None,
        rows_deduplicated=result.rows_deduplicated if result else None,
        table_versions=dict(result.table_versions) if result else None,
        warnings=list(result.warnings) if result else None,
        error=error[:_MAX_ERROR] if error is not None else None,
        heartbeat_at=heartbeat,
        driver=DRIVER,
        details=details_json(result.details) if result and result.details else None,
        models=_models(result),
    )


def details_json(details: Mapping[str, Any]) -> str:
    """A StepResult's details as JSON text (`runs.details`); dates and other values that
    JSON lacks as text."""
    return json.dumps(details, default=str, sort_keys=True)


def _models(result: StepResult | None) -> dict[str, str] | None:
    """The models a score run wrote, by alias (`details.models`); None for other steps."""
    models = result.details.get("models") if result is not None else None
    return {str(k): str(v) for k, v in models.items()} if isinstance(models, Mapping) else None


#: This process, as `runs.driver` names it.
DRIVER = f"{socket.gethostname()}:{os.getpid()}"


def append_run(spark: SparkSession, ref: TableRef, row: Row) -> None:
    """Append one row to `runs`, creating the table on first use (history imports, tests)."""
    io.ensure_table(spark, ref, io.contract_spec(RUNS))
    io.write_delta(_frame(spark, row), ref, "append", _metadata(row))


def claim(spark: SparkSession, ref: TableRef, running: Row, settings: RunsSettings) -> None:
    """Insert the `running` row unless a live run holds the same step (module docstring);
    mark the killed runs of the use case first.

    Raises:
        ConflictError: a live run holds the step; names it.
    """
    io.ensure_table(spark, ref, io.contract_spec(RUNS))

    def attempt() -> bool:
        now = datetime.now(UTC)
        mark_killed(spark, ref, running["usecase"], now, settings, by=running["run_id"])
        holder = _holder(spark, ref, running)
        if holder is not None:
            raise ConflictError(_conflict_message(running, holder, now, settings))
        return _insert_unless_held(spark, ref, running)

    for _ in range(_ATTEMPTS):
        if _retrying(attempt, f"claim of {running['step']} in {ref}"):
            return
    raise ConflictError(
        f"{ref}: could not claim {running['step']} {running['run_date']} after {_ATTEMPTS} "
        "attempts: other runs keep claiming it"
    )


def finish(spark: SparkSession, ref: TableRef, ended: Row) -> None:
    """Write the run's end over its `running` row (inserted when the claim is missing)."""
    io.ensure_table(spark, ref, io.contract_spec(RUNS))

    def attempt() -> bool:
        with io.commit_metadata(spark, _metadata(ended)):
            (
                io.delta_table(spark, ref)
                .alias("t")
                .merge(_frame(spark, ended).alias("s"), "t.run_id = s.run_id AND t.step = s.step")
                .whenMatchedUpdateAll()
                .whenNotMatchedInsertAll()
                .execute()
            )
        return True

    _retrying(attempt, f"end of {ended['step']} in {ref}")


def mark_killed(
    spark: SparkSession,
    ref: TableRef,
    usecase: str,
    now: datetime,
    settings: RunsSettings,
    by: str,
) -> list[str]:
    """Mark `killed` the use case's running rows that no live process holds; return their
    run ids. A few rows of a small table reach the driver (the running ones)."""
    running = (
        io.read_table(spark, ref)
        .where((F.col("usecase") == F.lit(usecase)) & (F.col("status") == F.lit(RUNNING)))
        .select("run_id", "step", "started_at", "heartbeat_at", "driver")
        .collect()
    )
    dead = [r for r in running if _why_dead(r, now, settings) is not None]
    for r in dead:
        why = _why_dead(r, now, settings)
        log.warning("run %s (%s) never ended: marking it killed (%s)", r["run_id"], r["step"], why)
        table = io.delta_table(spark, ref)
        condition = sql.predicate(("run_id", r["run_id"]), ("step", r["step"]), ("status", RUNNING))
        last = r["heartbeat_at"] or r["started_at"]
        with io.commit_metadata(spark, {"marked_by": by, "step": "mark_killed"}):
            table.update(
                condition,
                {
                    "status": F.lit(KILLED),
                    "ended_at": F.lit(last),
                    "duration_seconds": F.lit((last - r["started_at"]).total_seconds()),
                    "error": F.lit(f"killed: {why}; marked by run {by}"),
                },
            )
    return [r["run_id"] for r in dead]


def _why_dead(row: Row, now: datetime, settings: RunsSettings) -> str | None:
    """Why a running row's process is gone, or None when it may be alive."""
    host, _, pid = (row["driver"] or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
        return f"its process {row['driver']} is gone"
    last = row["heartbeat_at"] or row["started_at"]
    silent = (now - _aware(last)).total_seconds()
    if silent > settings.stale_after_seconds:
        return (
            f"no heartbeat for {silent:.0f} s (runs.stale_after_seconds = "
            f"{settings.stale_after_seconds:g})"
        )
    return None


def _alive(pid: int) -> bool:
    """Whether a process of this host has that pid (signal 0 checks without signalling)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def _aware(moment: datetime) -> datetime:
    """Spark hands timestamps back naive, in the session time zone (UTC for our sessions)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _scope(row: Row, alias: str = "t") -> str:
    """The SQL condition of the runs a `running` row excludes (module docstring)."""
    parts = [
        f"{alias}.usecase = {sql.literal(row['usecase'])}",
        f"{alias}.step = {sql.literal(row['step'])}",
        f"{alias}.status = {sql.literal(RUNNING)}",
    ]
    if row["step"] not in USECASE_WIDE:
        parts.append(
            f"{alias}.run_date IS NULL"
            if row["run_date"] is None
            else f"{alias}.run_date = {sql.literal(row['run_date'])}"
        )
    return " AND ".join(parts)


def _holder(spark: SparkSession, ref: TableRef, running: Row) -> Row | None:
    """The live run holding the step, if any (one row at most reaches the driver)."""
    table = io.read_table(spark, ref).alias("t")
    return table.where(_scope(running)).orderBy(F.col("started_at")).first()


def _insert_unless_held(spark: SparkSession, ref: TableRef, running: Row) -> bool:
    """One MERGE inserting the `running` row when nothing holds the step; whether it did.

    Atomic: of two runs claiming at once, Delta refuses the second commit (the first added
    a file the second read), and the second attempt finds the first run's row.
    """
    condition = f"{_scope(running, 't')} AND s.usecase = t.usecase"
    with io.commit_metadata(spark, _metadata(running)):
        metrics = (
            io.delta_table(spark, ref)
            .alias("t")
            .merge(_frame(spark, running).alias("s"), condition)
            .whenNotMatchedInsertAll()
            .execute()
            .first()
        )
    return metrics is not None and int(metrics["num_inserted_rows"]) == 1


def _retrying(attempt: Callable[[], _T], what: str) -> _T:
    """Run `attempt`, again after a short pause when Delta refused its commit because
    another run wrote `runs` meanwhile."""
    for number in range(1, _ATTEMPTS + 1):
        try:
            return attempt()
        except DeltaConcurrentModificationException as exc:
            if number == _ATTEMPTS:
                raise ConflictError(f"{what}: refused {_ATTEMPTS} times ({exc})") from exc
            log.debug("%s: concurrent write to runs, attempt %d again", what, number)
            time.sleep(0.2 * number)
    raise AssertionError("unreachable")


def _conflict_message(running: Row, holder: Row, now: datetime, settings: RunsSettings) -> str:
    last = holder["heartbeat_at"] or holder["started_at"]
    scope = "" if running["step"] in USECASE_WIDE else f" {running['run_date']}"
    return (
        f"{running['step']}{scope} of use case {running['usecase']} is already running: run "
        f"{holder['run_id']} on {holder['driver']}, started {_aware(holder['started_at']):%Y-%m-%dT%H:%M:%SZ}, "
        f"alive {(now - _aware(last)).total_seconds():.0f} s ago; retry when it has ended (a "
        f"killed run counts as ended after runs.stale_after_seconds = "
        f"{settings.stale_after_seconds:g} s without a heartbeat)"
    )


def _frame(spark: SparkSession, row: Row) -> DataFrame:
    return spark.createDataFrame([row], RUNS_SCHEMA)


def _metadata(row: Row) -> dict[str, Any]:
    return {
        "run_id": row["run_id"],
        "usecase": row["usecase"],
        "step": "record_run",
        "recorded_step": row["step"],
        "status": row["status"],
    }


class Heartbeat:
    """A daemon thread renewing a running row's `heartbeat_at` until stopped.

    A renewal that fails (another run wrote `runs` at that moment, storage hiccup) is
    logged and tried again at the next beat: the claim stays alive while the process is.
    """

    def __init__(
        self, spark: SparkSession, ref: TableRef, run_id: str, step: str, seconds: float
    ) -> None:
        self._spark, self._ref, self._seconds = spark, ref, seconds
        self._condition = sql.predicate(("run_id", run_id), ("step", step), ("status", RUNNING))
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{run_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self._seconds):
            try:
                io.delta_table(self._spark, self._ref).update(
                    self._condition, {"heartbeat_at": F.lit(datetime.now(UTC))}
                )
            except Exception as exc:  # a missed beat is retried at the next one
                log.warning("heartbeat of %s not renewed: %s", self._ref, exc)


def succeeded_versions(
    spark: SparkSession, ref: TableRef, usecase: str, step: str
) -> Mapping[str, int] | None:
    """The table versions the newest succeeded run of `step` recorded, or None when no run
    of it succeeded (or there is no runs table). Readers that pin these see every table as
    a successful run left it, never half a run (a killed ingest's first MERGE)."""
    if not io.table_exists(spark, ref):
        return None
    newest = (
        io.read_table(spark, ref)
        .where(
            (F.col("usecase") == F.lit(usecase))
            & (F.col("step") == F.lit(step))
            & (F.col("status") == F.lit(SUCCEEDED))
        )
        .orderBy(F.col("ended_at").desc(), F.col("run_id").desc())
        .select("table_versions")
        .first()
    )
    if newest is None:
        return None
    return dict(newest["table_versions"] or {})


def bronze_versions(
    spark: SparkSession, tables: Tables, usecase: str, sources: Iterable[str]
) -> dict[str, int | None]:
    """Per source, the version of its bronze table that readers pin: the one the newest
    succeeded ingest recorded, so a killed or failing ingest's commits stay unseen until a
    run succeeds. A table that no succeeded ingest recorded (ingested before the runs table
    existed, or written by other means) is read at its current version; None: no table."""
    recorded = succeeded_versions(spark, tables["runs"], usecase, "ingest") or {}
    versions: dict[str, int | None] = {}
    for source in sources:
        version = recorded.get(bronze_name(source))
        versions[source] = (
            int(version)
            if version is not None
            else io.current_version(spark, tables.bronze(source))
        )
    return versions
