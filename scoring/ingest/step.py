"""The ingest step: one delivery date of every raw source into bronze, bad records to quarantine.

Order, so that a failure never leaves a half-written state:
1. find every source's files and check them (folder, names, where they point, their first
   bytes, CSV header, Parquet schema: `scoring.ingest.drops`, `scoring.ingest.reading`);
2. read, validate and deduplicate each source once, compare its valid records with what
   bronze stores (`scoring.ingest.bronze`), into a disk cache, counting with an
   `Observation` on that same pass (no extra count() over the data);
3. check what the counts say: JSON keys present, quarantined share, conservation;
4. only then commit: quarantine (replaceWhere of the delivery date), then one MERGE per
   bronze table. A failure in this phase restores every table it committed to, to its version
   before the run (never over another run's commit: see `_rollback`).
Rerunning a date is idempotent: its quarantine rows are replaced, and what bronze stores
already is not sent to the MERGE again.

Every record read ends as exactly one of: inserted or updated (a correction) in bronze, a
duplicate within the drop, already in bronze, or quarantined; the run checks that they add
up before it commits.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import reduce
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from scoring.core import io, sql
from scoring.core.config import IngestSettings
from scoring.core.contracts import Contract, load_contract
from scoring.core.errors import DataError, UseCaseError
from scoring.core.faults import fault_point
from scoring.core.tables import TableRef, Tables, bronze_name
from scoring.ingest.bronze import (
    CORRECTION,
    STORED,
    STORED_RECORD,
    against_stored,
    bronze_contract,
    merge_bronze,
    stored_records,
)
from scoring.ingest.drops import Delivery, delivers, find_delivery
from scoring.ingest.reading import checked_records
from scoring.ingest.records import (
    DUPLICATE,
    KEYS,
    QUARANTINED,
    REASONS,
    RECORD,
    RECORD_BASE64,
    SOURCE_FILE,
    STATUS,
    VALID,
    conform,
)
from scoring.runs.result import StepResult
from scoring.usecase.spec import Source

log = logging.getLogger(__name__)
_STATUSES = (VALID, CORRECTION, DUPLICATE, STORED, QUARANTINED)


@dataclass(frozen=True)
class Stamp:
    """What every row and commit of one ingest run carries."""

    run_id: str
    usecase: str
    run_date: date
    started_at: datetime


def run_ingest(
    spark: SparkSession,
    tables: Tables,
    sources: Mapping[str, Source],
    *,
    raw_root: str,
    settings: IngestSettings,
    run_date: date,
    run_id: str,
    started_at: datetime | None = None,
) -> StepResult:
    """Ingest the delivery of `run_date` of every source of a use case.

    Args:
        tables: the use case's tables (`bronze_<source>`, `quarantine`).
        sources: the use case's raw sources, by name.
        raw_root: the folder holding `<source>/<YYYY-MM-DD>/` deliveries.
        settings: the `ingest` section (quarantine share, unexpected files, tolerance).
        run_date: the delivery date to ingest.
        run_id: stamped on every row written and on every commit.
        started_at: the run's start (UTC), stamped on rows; defaults to now.

    Raises:
        UseCaseError: the use case has no raw sources.
        DataError: a folder, file, column or key is missing or wrong, or too much is
            quarantined; no table has changed when it is raised.
    """
    if not sources:
        raise UseCaseError(
            f"use case '{tables.usecase}' has no raw sources (it scores an existing features "
            "table): there is nothing to ingest"
        )
    stamp = Stamp(run_id, tables.usecase, run_date, started_at or datetime.now(UTC))
    skipped = [
        n for n, s in sources.items() if not delivers(spark, raw_root, n, s.contract, run_date)
    ]
    for name in skipped:
        log.info("%s: no delivery on %s (an occasional source); nothing to ingest", name, run_date)
    if len(skipped) == len(sources):
        raise DataError(
            f"no source of use case '{tables.usecase}' delivered anything on {run_date}: "
            f"every source ({', '.join(sorted(sources))}) is occasional and its folder is missing"
        )
    sources = {name: s for name, s in sources.items() if name not in skipped}
    deliveries = {
        name: find_delivery(spark, raw_root, name, s.contract, run_date, settings.unexpected_files)
        for name, s in sources.items()
    }
    latest = _latest_time(run_date, settings.future_tolerance_hours)
    checked = {
        name: against_stored(
            checked_records(spark, deliveries[name].files, s.contract, latest),
            stored_records(spark, tables.bronze(name), s, run_date),
            s,
        )
        for name, s in sources.items()
    }
    try:
        counts = {
            name: _materialise(checked[name], s.contract, deliveries[name])
            for name, s in sources.items()
        }
        for name, s in sources.items():
            _check_counts(name, counts[name], s.contract, deliveries[name], settings)
        merged, versions = _commit(spark, checked, counts, sources, tables, stamp)
    finally:
        for frame in checked.values():
            frame.unpersist()
    return _result(stamp, deliveries, counts, merged, versions)


def _latest_time(run_date: date, tolerance_hours: float) -> datetime:
    """The last instant a record of the delivery of `run_date` may be dated."""
    end_of_day = datetime.combine(run_date + timedelta(days=1), time.min, tzinfo=UTC)
    return end_of_day + timedelta(hours=tolerance_hours)


def _materialise(checked: DataFrame, contract: Contract, delivery: Delivery) -> dict[str, Any]:
    """Cache the checked records on disk and count them on that one pass (an Observation)."""
    observation = Observation(f"ingest_{contract.name}")
    metrics: list[Column] = [
        F.count(F.lit(1)).alias("lines"),
        *[F.count_if(F.col(STATUS) == s).alias(s) for s in _STATUSES],
    ]
    if KEYS in checked.columns:  # JSON lines: per file, how many records carry each key
        for i, file in enumerate(delivery.files):
            in_file = F.col(SOURCE_FILE) == F.lit(file)
            metrics.append(F.count_if(in_file & F.col(KEYS).isNotNull()).alias(f"parsed_{i}"))
            for name in _required_keys(contract):
                has_key = in_file & F.array_contains(F.col(KEYS), name)
                metrics.append(F.count_if(has_key).alias(f"has_{i}_{name}"))
    # Disk, not memory: a 10M-line delivery must not depend on executor memory.
    checked.persist(StorageLevel.DISK_ONLY)
    checked.observe(observation, *metrics).write.format("noop").mode("overwrite").save()
    return dict(observation.get)


def _required_keys(contract: Contract) -> list[str]:
    """The JSON keys a file must carry in some record: the non-nullable columns (a JSON
    writer may leave out a key whose value is null)."""
    return [spec.delivered for spec in contract.columns if not spec.nullable]


def _check_counts(
    source: str,
    counts: Mapping[str, Any],
    contract: Contract,
    delivery: Delivery,
    settings: IngestSettings,
) -> None:
    """Raise DataError for a JSON key absent from a whole file, too much quarantine, or lost rows."""
    for i, file in enumerate(delivery.files):
        if not counts.get(f"parsed_{i}"):  # CSV, or no well-formed JSON record in the file
            continue
        for name in _required_keys(contract):
            if counts[f"has_{i}_{name}"] == 0:
                raise DataError(
                    f"{file}: no record has required key '{name}' of contract '{source}'"
                )
    lines, quarantined = int(counts["lines"]), int(counts[QUARANTINED])
    accounted = sum(int(counts[s]) for s in _STATUSES)
    if accounted != lines:
        raise DataError(f"{source}: {lines} records read but {accounted} accounted for")
    share = settings.max_quarantine_share
    if lines and quarantined / lines > share:
        raise DataError(
            f"{source}: {quarantined} of {lines} records quarantined ({quarantined / lines:.1%}), "
            f"above ingest.max_quarantine_share = {share}"
        )


def _commit(
    spark: SparkSession,
    checked: Mapping[str, DataFrame],
    counts: Mapping[str, Mapping[str, Any]],
    sources: Mapping[str, Source],
    tables: Tables,
    stamp: Stamp,
) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Write quarantine, then MERGE each bronze table; restore all of them if anything fails."""
    refs = {
        **{bronze_name(s): tables.bronze(s) for s in sources},
        "quarantine": tables["quarantine"],
    }
    before = {name: io.current_version(spark, ref) for name, ref in refs.items()}
    metadata = {
        "run_id": stamp.run_id,
        "usecase": stamp.usecase,
        "step": "ingest",
        "delivery_date": stamp.run_date.isoformat(),
        "source_versions": before,
    }
    try:
        _write_quarantine(spark, checked, tables["quarantine"], stamp, metadata)
        fault_point("ingest.quarantined")
        merged = {}
        for name, source in sources.items():
            rows = _bronze_rows(checked[name], source.contract, stamp)
            metrics = merge_bronze(spark, tables.bronze(name), rows, source, metadata)
            sent = int(counts[name][VALID]) + int(counts[name][CORRECTION])
            # No commit means nothing was new: every row sent was already in bronze.
            merged[name] = metrics or {
                "numSourceRows": sent,
                "numTargetRowsInserted": 0,
                "numTargetRowsUpdated": 0,
            }
            _check_merge(name, merged[name], sent)
            fault_point(f"ingest.merged.{name}")
    except Exception:
        _rollback(spark, refs, before, stamp.run_id)
        raise
    versions = {
        name: _own_version(spark, ref, stamp.run_id, before[name]) for name, ref in refs.items()
    }
    return merged, versions


def _own_version(spark: SparkSession, ref: TableRef, run_id: str, before: int | None) -> int:
    """The version this run committed to the table, or, when it committed nothing (every row
    already stored), the version it read."""
    commit = io.own_commit(spark, ref, run_id, after=before)
    if commit is not None:
        return int(commit["version"])
    return int(before if before is not None else io.current_version(spark, ref) or 0)


def _write_quarantine(
    spark: SparkSession,
    checked: Mapping[str, DataFrame],
    ref: TableRef,
    stamp: Stamp,
    metadata: Mapping[str, Any],
) -> None:
    """Replace the delivery date's quarantine rows with this run's (idempotent per date)."""
    contract = load_contract("quarantine")
    io.ensure_table(spark, ref, io.contract_spec(contract))
    frames = [
        frame.filter(F.col(STATUS) == QUARANTINED).select(
            F.lit(stamp.run_date).alias("delivery_date"),
            F.lit(source).alias("source"),
            F.col(SOURCE_FILE).alias("source_file"),
            F.col(RECORD).alias("record"),
            F.col(RECORD_BASE64).alias("record_base64"),
            F.col(REASONS).alias("reasons"),
            F.col(STORED_RECORD).alias("stored_record"),
            F.lit(stamp.run_id).alias("run_id"),
            F.lit(stamp.started_at).alias("quarantined_at"),
        )
        for source, frame in checked.items()
    ]
    rows = reduce(DataFrame.unionByName, frames).transform(conform, contract)
    # Only this step's sources: `scoring quality` keeps its own rows (`quality:<source>`).
    replace = (
        sql.predicate(("delivery_date", stamp.run_date))
        + " AND "
        + sql.is_in("source", list(checked))
    )
    io.write_delta(rows, ref, "overwrite", metadata, replace, contract.partition_by)


def _bronze_rows(checked: DataFrame, contract: Contract, stamp: Stamp) -> DataFrame:
    """The new and corrected records with their lineage columns (schemas/bronze_lineage.yaml)
    and `_correction` (whether the MERGE updates the row it matches)."""
    bronze = bronze_contract(contract)
    rows = checked.filter(F.col(STATUS).isin(VALID, CORRECTION)).select(
        *contract.column_names,
        F.lit(stamp.run_date).alias("_delivery_date"),
        F.col(SOURCE_FILE),
        F.lit(stamp.run_id).alias("_ingest_run_id"),
        F.lit(stamp.started_at).alias("_ingested_at"),
        (F.col(STATUS) == CORRECTION).alias("_correction"),
    )
    return rows.select(
        *[F.col(c.name).cast(c.spark_type).alias(c.name) for c in bronze.columns], "_correction"
    )


def _check_merge(source: str, merged: Mapping[str, int], sent: int) -> None:
    """The MERGE must have seen exactly the rows the Observation counted as new or corrected,
    and written no more than it saw; otherwise rows were lost or invented between the two."""
    inserted, updated = merged["numTargetRowsInserted"], merged["numTargetRowsUpdated"]
    if merged["numSourceRows"] != sent or inserted + updated > sent:
        raise DataError(
            f"{source}: conservation broken: {sent} new or corrected records counted, "
            f"MERGE saw {merged}"
        )


def _rollback(
    spark: SparkSession,
    refs: Mapping[str, TableRef],
    before: Mapping[str, int | None],
    run_id: str,
) -> None:
    """Undo this run's commits: restore each table it committed to, to its version before the
    run; but never over another run's commit (a RESTORE would erase it): such a table is
    left as it is and named in the log (its slice is settled by rerunning the date)."""
    for name, ref in refs.items():
        io.undo_own_commits(spark, ref, before[name], run_id, "ingest")


def _result(
    stamp: Stamp,
    deliveries: Mapping[str, Delivery],
    counts: Mapping[str, Mapping[str, Any]],
    merged: Mapping[str, Mapping[str, int]],
    versions: Mapping[str, int],
) -> StepResult:
    """The StepResult, with per-source accounting:
    lines = inserted + updated + duplicates_in_drop + already_in_bronze + quarantined."""
    details: dict[str, dict[str, Any]] = {}
    totals = dict.fromkeys(("lines", "accepted", "quarantined", "deduplicated"), 0)
    for source, c in counts.items():
        m = merged[source]
        accepted = m["numTargetRowsInserted"] + m["numTargetRowsUpdated"]
        already = int(c[STORED]) + m["numSourceRows"] - accepted
        details[source] = {
            "files": list(deliveries[source].files),
            "lines": int(c["lines"]),
            "inserted": m["numTargetRowsInserted"],
            "updated": m["numTargetRowsUpdated"],
            "duplicates_in_drop": int(c[DUPLICATE]),
            "already_in_bronze": already,
            "quarantined": int(c[QUARANTINED]),
        }
        totals["lines"] += int(c["lines"])
        totals["accepted"] += accepted
        totals["quarantined"] += int(c[QUARANTINED])
        totals["deduplicated"] += int(c[DUPLICATE]) + already
    warnings = tuple(
        f"{file}: no contract takes this file; not read (ingest.unexpected_files: warn)"
        for d in deliveries.values()
        for file in d.ignored
    )
    for warning in warnings:
        log.warning("%s", warning)
    return StepResult(
        step="ingest",
        run_id=stamp.run_id,
        run_date=stamp.run_date,
        rows_in=totals["lines"],
        rows_out=totals["accepted"],
        rows_quarantined=totals["quarantined"],
        rows_deduplicated=totals["deduplicated"],
        table_versions=versions,
        details=details,
        warnings=warnings,
    )
