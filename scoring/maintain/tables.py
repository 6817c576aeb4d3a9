"""OPTIMIZE and VACUUM of a use case's tables within their configured retention.

Each table keeps its history for its `storage.retention` days (set as
`delta.logRetentionDuration` and `delta.deletedFileRetentionDuration`); VACUUM deletes only
files that commits removed longer ago than the table's deleted-file retention, and never
with less than `storage.retention.min_time_travel_days`, the window replay and pinned
lineage time-travel into. A request for less is refused before anything is done.

Example:
    >>> plan = plan_tables(tables, retention, ["scores"], retain_hours=None)  # doctest: +SKIP
    >>> [maintain_table(spark, t, "maintain-1", dry_run=False) for t in plan]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession

from scoring.core import io
from scoring.core.config import RetentionSettings
from scoring.core.errors import ConfigError, ConflictError
from scoring.core.tables import TableRef, Tables

log = logging.getLogger(__name__)
#: Attempts of an OPTIMIZE that Delta refused because another writer committed meanwhile
#: (the `runs` table is written by this very run's heartbeat).
_ATTEMPTS = 3


@dataclass(frozen=True)
class TablePlan:
    """One table to maintain and the VACUUM retention it gets, in hours."""

    ref: TableRef
    retain_hours: float


@dataclass(frozen=True)
class TableOutcome:
    """What maintenance did to one table (or, in a dry run, would do)."""

    table: str
    location: str
    files_before: int
    files_compacted: int  # files OPTIMIZE replaced ...
    files_added: int  # ... by this many
    files_vacuumed: int  # files VACUUM deleted (dry run: would delete)
    retain_hours: float
    version: int | None  # the table's version after this run's last commit; None if none

    def summary(self) -> str:
        """One line for people."""
        return (
            f"{self.table}: {self.files_before} files, {self.files_compacted} compacted into "
            f"{self.files_added}, {self.files_vacuumed} vacuumed (retain "
            f"{self.retain_hours:g} h)"
        )


def plan_tables(
    tables: Tables,
    retention: RetentionSettings,
    selected: Sequence[str] | None,
    retain_hours: float | None,
) -> list[TablePlan]:
    """The tables to maintain, `runs` last (this run writes it while it works), each with
    its VACUUM retention: `retain_hours` when given, else its configured deleted-file days.

    Only the engine's own tables (those the configuration gives retention properties); a
    score-only use case's features table belongs to whoever writes it.

    Raises:
        ConfigError: a selected table is not one of the use case's, or `retain_hours` is
            below the time-travel floor or below a selected table's configured retention.
    """
    owned = [name for name in tables if tables[name].properties]
    if selected:
        unknown = sorted(set(selected) - set(owned))
        if unknown:
            raise ConfigError(
                f"--tables: '{unknown[0]}' is not a table of use case '{tables.usecase}' "
                f"that the engine maintains (known: {owned})"
            )
        owned = [name for name in owned if name in selected]
    owned.sort(key=lambda name: name == "runs")
    floor_hours = retention.min_time_travel_days * 24
    if retain_hours is not None and retain_hours < floor_hours:
        raise ConfigError(
            f"--retain-hours {retain_hours:g} is below the time-travel floor of {floor_hours} h "
            f"(storage.retention.min_time_travel_days = {retention.min_time_travel_days}): "
            "replay and pinned lineage need those versions; refused, nothing done"
        )
    plans = []
    for name in owned:
        configured = retention.for_table(name).deleted_file_days * 24
        if retain_hours is not None and retain_hours < configured:
            raise ConfigError(
                f"--retain-hours {retain_hours:g} is below table {name}'s deleted-file "
                f"retention of {configured} h ({retention.key(name)}.deleted_file_days); "
                "shorten that setting instead; refused, nothing done"
            )
        plans.append(TablePlan(tables[name], retain_hours or float(configured)))
    return plans


def maintain_table(
    spark: SparkSession, plan: TablePlan, run_id: str, dry_run: bool
) -> TableOutcome | None:
    """Set the table's retention properties, OPTIMIZE it and VACUUM it; None when the table
    does not exist yet. A dry run changes nothing: it counts the files VACUUM would delete.

    Raises:
        ConflictError: Delta refused a commit because another writer kept committing.
    """
    ref = plan.ref
    if not io.table_exists(spark, ref):
        log.info("maintain: %s does not exist yet; skipped", ref)
        return None
    before = io.current_version(spark, ref)
    files_before = _file_count(spark, ref)
    hours = plan.retain_hours
    if dry_run:
        would_delete = _vacuum_dry_run(spark, ref, hours)
        return TableOutcome(
            str(ref.logical), str(ref), files_before, 0, 0, would_delete, hours, None
        )
    with io.commit_metadata(spark, {"run_id": run_id, "step": "maintain"}):
        io.set_properties(spark, ref, dict(ref.properties))
        _optimize(spark, ref)
        with io.named_conflicts(ref, "VACUUM"):
            io.delta_table(spark, ref).vacuum(hours)
    commits = _own_commits(spark, ref, run_id, before)
    optimize = commits.get("OPTIMIZE", {})
    vacuum_end = commits.get("VACUUM END", {})
    return TableOutcome(
        str(ref.logical),
        str(ref),
        files_before,
        int(optimize.get("numRemovedFiles", 0)),
        int(optimize.get("numAddedFiles", 0)),
        int(vacuum_end.get("numDeletedFiles", 0)),
        hours,
        max((int(m["_version"]) for m in commits.values()), default=None),
    )


def _optimize(spark: SparkSession, ref: TableRef) -> None:
    """OPTIMIZE (bin-packing compaction), retried when another writer committed meanwhile."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with io.named_conflicts(ref, "OPTIMIZE"):
                io.delta_table(spark, ref).optimize().executeCompaction()
            return
        except ConflictError:
            if attempt == _ATTEMPTS:
                raise
            log.warning("maintain: OPTIMIZE of %s met a concurrent commit; retrying", ref)


def _vacuum_dry_run(spark: SparkSession, ref: TableRef, hours: float) -> int:
    """How many files VACUUM with `hours` would delete. The table may still carry a longer
    deleted-file retention than the configured one (the real run sets it first), which
    Delta's safety check would hold against `hours`; a dry run deletes nothing, so the
    check is off for it alone."""
    check = "spark.databricks.delta.retentionDurationCheck.enabled"
    previous = spark.conf.get(check, None)
    spark.conf.set(check, "false")
    try:
        vacuum = f"VACUUM {io.sql_name(ref)} RETAIN {hours:g} HOURS DRY RUN"
        # The paths VACUUM would delete, counted: one number reaches the driver.
        return spark.sql(vacuum).count()
    finally:
        if previous is None:
            spark.conf.unset(check)
        else:
            spark.conf.set(check, previous)


def _file_count(spark: SparkSession, ref: TableRef) -> int:
    """The number of data files of the table's current version (from the Delta log)."""
    detail = io.delta_table(spark, ref).detail().select("numFiles").first()
    return int(detail["numFiles"]) if detail is not None else 0


def _own_commits(
    spark: SparkSession, ref: TableRef, run_id: str, after: int | None
) -> dict[str, dict[str, Any]]:
    """This run's commits to the table after version `after`, by operation (the newest of
    each): its operationMetrics, plus `_version`."""
    return {
        str(c["operation"]): {**c["operationMetrics"], "_version": c["version"]}
        for c in io.own_commits(spark, ref, run_id, after)
    }
