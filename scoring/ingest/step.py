"""The ingest step: one delivery date of every raw source into bronze, bad records to quarantine.

Bronze keeps what a point-in-time view needs: an event source (it has an
`event_time_column`) keeps each key once (the first delivery wins: events are immutable
facts); a dimension keeps every version of a key that was newer than all stored ones when it
arrived (its `version_column`, or the delivery date when it has none), so the features of a
past date can be rebuilt from what was known then (`scoring.features.asof`).

Order, so that a failure never leaves a half-written state:
1. find every source's files and check their structure (folder, files, CSV header,
   Parquet schema);
2. read, validate and deduplicate each source once, into a disk cache, counting with an
   `Observation` on that same pass (no extra count() over the data);
3. check what the counts say: JSON keys present, quarantined share, conservation;
4. only then commit: quarantine (replaceWhere of the delivery date), then one MERGE per
   bronze table. A failure in this phase restores every table to its version before the run.
Rerunning a date is idempotent: its quarantine rows are replaced, and MERGE adds nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime
from functools import reduce
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from scoring.core import io, sql
from scoring.core.contracts import Contract, load_contract
from scoring.core.errors import DataError, UseCaseError
from scoring.core.tables import TableRef, Tables, bronze_name
from scoring.ingest.drops import checked_records, delivery_files
from scoring.ingest.records import DUPLICATE, QUARANTINED, RECORD, STATUS, VALID, conform
from scoring.runs.result import StepResult
from scoring.usecase.spec import Source

log = logging.getLogger(__name__)
LINEAGE = "bronze_lineage"
_NOTHING_MERGED = {"numSourceRows": 0, "numTargetRowsInserted": 0, "numTargetRowsUpdated": 0}


def run_ingest(
    spark: SparkSession,
    tables: Tables,
    sources: Mapping[str, Source],
    *,
    raw_root: str,
    max_quarantine_share: float,
    run_date: date,
    run_id: str,
    started_at: datetime | None = None,
) -> StepResult:
    """Ingest the delivery of `run_date` of every source of a use case.

    Args:
        tables: the use case's tables (`bronze_<source>`, `quarantine`).
        sources: the use case's raw sources, by name.
        raw_root: the folder holding `<source>/<YYYY-MM-DD>/` deliveries.
        max_quarantine_share: fail when a source's quarantined share is above this (0..1).
        run_date: the delivery date to ingest.
        run_id: stamped on every row written and on every commit.
        started_at: the run's start (UTC), stamped on rows; defaults to now.

    Raises:
        UseCaseError: the use case has no raw sources.
        DataError: a folder, file, column or key is missing, or too much is quarantined;
            no table has changed when it is raised.
    """
    if not sources:
        raise UseCaseError(
            f"use case '{tables.usecase}' has no raw sources (it scores an existing features "
            "table): there is nothing to ingest"
        )
    started_at = started_at or datetime.now(UTC)
    contracts = {name: source.contract for name, source in sources.items()}
    files = {s: delivery_files(spark, raw_root, s, c, run_date) for s, c in contracts.items()}
    checked = {s: checked_records(spark, files[s], c) for s, c in contracts.items()}
    try:
        counts = {s: _materialise(checked[s], contracts[s], files[s]) for s in sources}
        for s in sources:
            _check_counts(s, counts[s], contracts[s], files[s], max_quarantine_share)
        stamp = {
            "run_id": run_id,
            "started_at": started_at,
            "run_date": run_date,
            "usecase": tables.usecase,
        }
        merged, versions = _commit(spark, checked, counts, sources, tables, stamp)
    finally:
        for frame in checked.values():
            frame.unpersist()
    return _result(run_id, run_date, files, counts, merged, versions)


def _materialise(checked: DataFrame, contract: Contract, files: list[str]) -> dict[str, Any]:
    """Cache the checked records on disk and count them on that one pass (an Observation)."""
    observation = Observation(f"ingest_{contract.name}")
    metrics: list[Column] = [
        F.count(F.lit(1)).alias("lines"),
        *[F.count_if(F.col(STATUS) == s).alias(s) for s in (VALID, DUPLICATE, QUARANTINED)],
    ]
    if "_keys" in checked.columns:  # JSON lines: per file, how many records carry each key
        for i, file in enumerate(files):
            in_file = F.col("_source_file") == F.lit(file)
            metrics.append(F.count_if(in_file & F.col("_keys").isNotNull()).alias(f"parsed_{i}"))
            for name in _required_keys(contract):
                has_key = in_file & F.array_contains(F.col("_keys"), name)
                metrics.append(F.count_if(has_key).alias(f"has_{i}_{name}"))
    # Disk, not memory: a 10M-line delivery must not depend on executor memory.
    checked.persist(StorageLevel.DISK_ONLY)
    checked.observe(observation, *metrics).write.format("noop").mode("overwrite").save()
    return dict(observation.get)


def _required_keys(contract: Contract) -> list[str]:
    """The JSON keys a file must carry in some record: the non-nullable columns (a JSON
    writer may leave out a key whose value is null)."""
    return [spec.name for spec in contract.columns if not spec.nullable]


def _check_counts(
    source: str,
    counts: Mapping[str, Any],
    contract: Contract,
    files: list[str],
    max_share: float,
) -> None:
    """Raise DataError for a JSON key absent from a whole file, too much quarantine, or lost rows."""
    for i, file in enumerate(files):
        if not counts.get(f"parsed_{i}"):  # CSV, or no well-formed JSON record in the file
            continue
        for name in _required_keys(contract):
            if counts[f"has_{i}_{name}"] == 0:
                raise DataError(
                    f"{file}: no record has required key '{name}' of contract '{source}'"
                )
    lines, quarantined = int(counts["lines"]), int(counts[QUARANTINED])
    accounted = int(counts[VALID]) + int(counts[DUPLICATE]) + quarantined
    if accounted != lines:
        raise DataError(f"{source}: {lines} records read but {accounted} accounted for")
    if lines and quarantined / lines > max_share:
        raise DataError(
            f"{source}: {quarantined} of {lines} records quarantined ({quarantined / lines:.1%}), "
            f"above ingest.max_quarantine_share = {max_share}"
        )


def _commit(
    spark: SparkSession,
    checked: Mapping[str, DataFrame],
    counts: Mapping[str, Mapping[str, Any]],
    sources: Mapping[str, Source],
    tables: Tables,
    stamp: Mapping[str, Any],
) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Write quarantine, then MERGE each bronze table; restore all of them if anything fails."""
    refs = {
        **{bronze_name(s): tables.bronze(s) for s in sources},
        "quarantine": tables["quarantine"],
    }
    before = {name: io.current_version(spark, ref) for name, ref in refs.items()}
    metadata = {
        "run_id": stamp["run_id"],
        "usecase": stamp["usecase"],
        "step": "ingest",
        "delivery_date": stamp["run_date"].isoformat(),
        "source_versions": before,
    }
    try:
        _write_quarantine(spark, checked, tables["quarantine"], stamp, metadata)
        merged = {}
        for name, source in sources.items():
            rows = _bronze_rows(checked[name], source.contract, stamp)
            metrics = _merge_bronze(spark, tables.bronze(name), rows, source, metadata)
            valid = int(counts[name][VALID])
            # No commit means nothing was new: every valid row was already in bronze.
            merged[name] = metrics or dict(_NOTHING_MERGED, numSourceRows=valid)
            _check_merge(name, merged[name], valid)
    except Exception:
        _rollback(spark, refs, before)
        raise
    versions = {name: int(io.current_version(spark, ref) or 0) for name, ref in refs.items()}
    return merged, versions


def _write_quarantine(
    spark: SparkSession,
    checked: Mapping[str, DataFrame],
    ref: TableRef,
    stamp: Mapping[str, Any],
    metadata: Mapping[str, Any],
) -> None:
    """Replace the delivery date's quarantine rows with this run's (idempotent per date)."""
    contract = load_contract("quarantine")
    io.ensure_table(spark, ref, io.contract_spec(contract))
    frames = [
        checked[source]
        .filter(F.col(STATUS) == QUARANTINED)
        .select(
            F.lit(stamp["run_date"]).alias("delivery_date"),
            F.lit(source).alias("source"),
            F.col("_source_file").alias("source_file"),
            F.col(RECORD).alias("record"),
            F.col("_reasons").alias("reasons"),
            F.lit(stamp["run_id"]).alias("run_id"),
            F.lit(stamp["started_at"]).alias("quarantined_at"),
        )
        for source in checked
    ]
    rows = reduce(DataFrame.unionByName, frames).transform(conform, contract)
    replace = sql.predicate(("delivery_date", stamp["run_date"]))
    io.write_delta(rows, ref, "overwrite", metadata, replace, contract.partition_by)


def _bronze_rows(checked: DataFrame, contract: Contract, stamp: Mapping[str, Any]) -> DataFrame:
    """The valid, deduplicated records with their lineage columns (schemas/bronze_lineage.yaml)."""
    lineage = load_contract(LINEAGE)
    return (
        checked.filter(F.col(STATUS) == VALID)
        .select(
            *contract.column_names,
            F.lit(stamp["run_date"]).alias("_delivery_date"),
            F.col("_source_file"),
            F.lit(stamp["run_id"]).alias("_ingest_run_id"),
            F.lit(stamp["started_at"]).alias("_ingested_at"),
        )
        .transform(conform, bronze_contract(contract, lineage))
    )


def bronze_contract(raw: Contract, lineage: Contract) -> Contract:
    """The contract of bronze_<source>: the raw source's columns, then the lineage columns."""
    from dataclasses import replace

    return replace(raw, name=f"bronze_{raw.name}", columns=(*raw.columns, *lineage.columns))


def stored_match(source: Source) -> str:
    """The MERGE condition under which a delivered row is already represented in bronze.

    An event matches a stored row with its key (first delivery wins). A dimension row
    matches a stored version of its key at least as new (its `version_column`, or the
    delivery date without one): only a newer version is inserted, next to the older ones.
    """
    contract = source.contract
    keys = sql.join_condition(contract.keys)
    if source.is_event:
        return keys
    version = sql.identifier(contract.version_column or "_delivery_date")
    return f"{keys} AND t.{version} >= s.{version}"


def _merge_bronze(
    spark: SparkSession,
    ref: TableRef,
    rows: DataFrame,
    source: Source,
    metadata: Mapping[str, Any],
) -> dict[str, int] | None:
    """MERGE one source's rows into its bronze table (created from the contracts if absent)."""
    io.ensure_table(
        spark, ref, io.contract_spec(bronze_contract(source.contract, load_contract(LINEAGE)))
    )
    return io.merge_insert_new(spark, ref, rows, stored_match(source), metadata)


def _check_merge(source: str, merged: Mapping[str, int], valid: int) -> None:
    """The MERGE must have seen exactly the valid rows the Observation counted, and written
    no more than it saw; otherwise rows were lost or invented between the two."""
    inserted, updated = merged["numTargetRowsInserted"], merged["numTargetRowsUpdated"]
    if merged["numSourceRows"] != valid or inserted + updated > valid:
        raise DataError(
            f"{source}: conservation broken: {valid} valid records counted, MERGE saw {merged}"
        )


def _rollback(
    spark: SparkSession, refs: Mapping[str, TableRef], before: Mapping[str, int | None]
) -> None:
    """Restore every table that existed before the run and has moved since."""
    for name, ref in refs.items():
        version = before[name]
        if version is not None and io.current_version(spark, ref) != version:
            log.warning("ingest failed: restoring %s to version %s", name, version)
            io.restore(spark, ref, version)


def _result(
    run_id: str,
    run_date: date,
    files: Mapping[str, list[str]],
    counts: Mapping[str, Mapping[str, Any]],
    merged: Mapping[str, Mapping[str, int]],
    versions: Mapping[str, int],
) -> StepResult:
    """The StepResult, with per-source accounting: lines = accepted + duplicates + quarantined."""
    details: dict[str, dict[str, Any]] = {}
    totals = dict.fromkeys(("lines", "accepted", "quarantined", "deduplicated"), 0)
    for source in counts:
        m, c = merged[source], counts[source]
        accepted = m["numTargetRowsInserted"] + m["numTargetRowsUpdated"]
        details[source] = {
            "files": list(files[source]),
            "lines": int(c["lines"]),
            "inserted": m["numTargetRowsInserted"],
            "updated": m["numTargetRowsUpdated"],
            "duplicates_in_drop": int(c[DUPLICATE]),
            "already_in_bronze": m["numSourceRows"] - accepted,
            "quarantined": int(c[QUARANTINED]),
        }
        totals["lines"] += int(c["lines"])
        totals["accepted"] += accepted
        totals["quarantined"] += int(c[QUARANTINED])
        totals["deduplicated"] += int(c[DUPLICATE]) + m["numSourceRows"] - accepted
    return StepResult(
        step="ingest",
        run_id=run_id,
        run_date=run_date,
        rows_in=totals["lines"],
        rows_out=totals["accepted"],
        rows_quarantined=totals["quarantined"],
        rows_deduplicated=totals["deduplicated"],
        table_versions=versions,
        details=details,
    )
