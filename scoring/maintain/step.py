"""The maintain step: retention properties, OPTIMIZE and VACUUM of every table of a use case
(or the ones asked for), then archival of processed raw drops.

`plan_maintenance` checks the request (tables, `--retain-hours` against the time-travel
floor) before anything is done or recorded; `run_maintain` does the work inside the
recorded step. A dry run changes nothing: it reports the file counts, the files VACUUM would
delete and the drops archival would move or delete.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from pyspark.sql import SparkSession

from scoring.core.config import IngestSettings, RetentionSettings
from scoring.core.tables import Tables
from scoring.maintain.archive import ArchiveOutcome, archive_drops
from scoring.maintain.tables import TableOutcome, TablePlan, maintain_table, plan_tables
from scoring.runs.result import StepResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MaintainRequest:
    """What `scoring maintain` was asked to do; checked by `plan_maintenance`."""

    tables: Sequence[str] | None = None  # None: every table of the use case
    retain_hours: float | None = None  # None: each table's configured deleted-file retention
    dry_run: bool = False


@dataclass(frozen=True)
class MaintenancePlan:
    """A checked request: the tables with their VACUUM retention, and the archival."""

    tables: tuple[TablePlan, ...]
    archive: bool  # archival runs only when no table subset was asked for
    dry_run: bool


def plan_maintenance(
    tables: Tables, retention: RetentionSettings, request: MaintainRequest
) -> MaintenancePlan:
    """Check the request; raises ConfigError (one line, nothing done) when it is refused."""
    plans = plan_tables(tables, retention, request.tables, request.retain_hours)
    return MaintenancePlan(tuple(plans), archive=not request.tables, dry_run=request.dry_run)


def run_maintain(
    spark: SparkSession,
    tables: Tables,
    plan: MaintenancePlan,
    raw_root: str,
    sources: Sequence[str],
    ingest: IngestSettings,
    run_date: date,
    run_id: str,
) -> StepResult:
    """Maintain the planned tables, then archive raw drops; the result's details hold one
    TableOutcome per existing table and the ArchiveOutcome."""
    outcomes: list[TableOutcome] = []
    for table in plan.tables:
        outcome = maintain_table(spark, table, run_id, plan.dry_run)
        if outcome is not None:
            log.info("maintain%s: %s", " (dry run)" if plan.dry_run else "", outcome.summary())
            outcomes.append(outcome)
    archived = ArchiveOutcome("keep")
    if plan.archive:
        archived = archive_drops(
            spark,
            raw_root,
            sources,
            tables["runs"],
            tables.usecase,
            ingest.raw_archive,
            ingest.raw_archive_after_days,
            run_date,
            plan.dry_run,
        )
        log.info("maintain%s: %s", " (dry run)" if plan.dry_run else "", archived.summary())
    warnings = tuple(f"{folder}: already archived; left in place" for folder in archived.skipped)
    return StepResult(
        step="maintain",
        run_id=run_id,
        run_date=run_date,
        table_versions={o.table: o.version for o in outcomes if o.version is not None},
        details={"tables": tuple(outcomes), "archive": archived, "dry_run": plan.dry_run},
        warnings=warnings,
    )
