"""Bronze: what a source's delivered records are against what is stored, and the MERGE.

Bronze keeps what a point-in-time view needs: an event source (it has an
`event_time_column`) keeps each key once; a dimension keeps every version of a key that was
newer than all stored ones when it arrived (its `version_column`, or the delivery date when
it has none), so the features of a past date can be rebuilt from what was known then
(`scoring.features.asof`).

A valid delivered record is compared with the stored record of its key (an event), of its
key and version (a dimension with a version column) or with its key's newest version
delivered on or before the run's date (a dimension without one, whose version is its
delivery date):

- nothing stored: new, inserted by the MERGE (a dimension's version older than a stored
  one is then skipped by the MERGE's condition: `already_in_bronze`);
- the same content: `stored`, already in bronze, not sent to the MERGE;
- other content, for a dimension without a version column whose stored version came on an
  earlier date: a new version, inserted;
- other content otherwise (the same key and version, or a rerun of the same delivery date):
  a correction the MERGE applies when the contract says `corrections: apply`, else a
  `conflict_with_stored`: quarantined with the stored record beside it, and the stored
  record kept. Never silent, never a coin toss.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from scoring.core import io, sql
from scoring.core.contracts import Contract, load_contract
from scoring.core.tables import TableRef
from scoring.ingest.records import (
    QUARANTINED,
    REASONS,
    STATUS,
    VALID,
    content_hash,
)
from scoring.usecase.spec import Source

LINEAGE = "bronze_lineage"
DELIVERY_DATE = "_delivery_date"
#: Statuses a valid record can get against bronze (besides staying VALID: new).
STORED, CORRECTION = "stored", "correction"
CONFLICT_WITH_STORED = "conflict_with_stored"
STORED_RECORD = "_stored_record"
_STORED_HASH = "_stored_hash"
_SAME_DAY = "_stored_same_day"
_PREFIX = "_stored_"


def bronze_contract(raw: Contract) -> Contract:
    """The contract of bronze_<source>: the raw source's columns, then the lineage columns."""
    lineage = load_contract(LINEAGE)
    return replace(raw, name=f"bronze_{raw.name}", columns=(*raw.columns, *lineage.columns))


def match_columns(source: Source) -> list[str]:
    """The columns a delivered record is matched on against bronze (module docstring)."""
    contract = source.contract
    if source.is_event or not contract.version_column:
        return list(contract.keys)
    return [*contract.keys, contract.version_column]


def _dated_versions(source: Source) -> bool:
    """Whether a source's versions are its delivery dates (a dimension without a version
    column)."""
    return not source.is_event and not source.contract.version_column


def stored_side(bronze: DataFrame, source: Source, day: date) -> DataFrame:
    """Per match, the stored record: its content hash, its text (as JSON) and its delivery
    date, columns prefixed so they never clash with the delivered ones. For a source whose
    versions are delivery dates, the newest version delivered on or before `day`."""
    contract = source.contract
    if _dated_versions(source):
        newest = Window.partitionBy(*contract.keys).orderBy(
            F.col(DELIVERY_DATE).desc(), F.col("_source_file").desc()
        )
        bronze = (
            bronze.where(F.col(DELIVERY_DATE) <= F.lit(day))
            .withColumn("_rank", F.row_number().over(newest))
            .where("_rank = 1")
        )
    return bronze.select(
        *[F.col(c).alias(_PREFIX + c) for c in match_columns(source)],
        content_hash(contract).alias(_STORED_HASH),
        F.to_json(F.struct(*[F.col(c) for c in contract.column_names])).alias(STORED_RECORD),
        (F.col(DELIVERY_DATE) == F.lit(day)).alias(_SAME_DAY),
    )


def against_stored(checked: DataFrame, stored: DataFrame | None, source: Source) -> DataFrame:
    """Re-mark the valid delivered records against bronze (module docstring); adds
    `_stored_record` (the stored version's JSON, for a conflict's quarantine row)."""
    if stored is None:
        return checked.withColumn(STORED_RECORD, F.lit(None).cast("string"))
    on = [F.col(c).eqNullSafe(F.col(_PREFIX + c)) for c in match_columns(source)]
    joined = checked.join(stored, on=_all(on), how="left")
    found = F.col(_STORED_HASH).isNotNull() & (F.col(STATUS) == VALID)
    same = F.col(_STORED_HASH) == content_hash(source.contract)
    differs = found & ~same
    if _dated_versions(source):
        differs = differs & F.col(_SAME_DAY)
    apply = source.contract.corrections == "apply"
    status = (
        F.when(found & same, F.lit(STORED))
        .when(differs, F.lit(CORRECTION if apply else QUARANTINED))
        .otherwise(F.col(STATUS))
    )
    reasons = F.when(differs & F.lit(not apply), F.array(F.lit(CONFLICT_WITH_STORED)))
    return joined.select(
        *[c for c in checked.columns if c not in (STATUS, REASONS)],
        status.alias(STATUS),
        reasons.otherwise(F.col(REASONS)).alias(REASONS),
        F.when(differs, F.col(STORED_RECORD)).alias(STORED_RECORD),
    )


def stored_records(
    spark: SparkSession, ref: TableRef, source: Source, day: date
) -> DataFrame | None:
    """The stored side of a source's bronze table at its current version, for the delivery
    of `day`; None before the first ingest."""
    if not io.table_exists(spark, ref):
        return None
    return stored_side(io.read_table(spark, ref), source, day)


def merge_condition(source: Source) -> str:
    """The MERGE condition under which a delivered row is already represented in bronze.

    An event matches a stored row with its key. A dimension row matches a stored version of
    its key at least as new (its `version_column`, or the delivery date without one): only a
    newer version is inserted, next to the older ones; a correction updates its match.
    """
    contract = source.contract
    keys = sql.join_condition(contract.keys)
    if source.is_event:
        return keys
    version = sql.identifier(contract.version_column or DELIVERY_DATE)
    return f"{keys} AND t.{version} >= s.{version}"


def merge_bronze(
    spark: SparkSession,
    ref: TableRef,
    rows: DataFrame,
    source: Source,
    metadata: dict[str, Any],
) -> dict[str, int] | None:
    """MERGE the new and corrected rows into bronze (created from the contracts if absent).

    `rows` has bronze's columns and `_correction` (a correction updates the row it matches;
    a new row is inserted when nothing matches). Returns the commit's metrics (see
    `io.merge_rows`).
    """
    contract = bronze_contract(source.contract)
    io.ensure_table(spark, ref, io.contract_spec(contract))
    columns = {sql.identifier(c): f"s.{sql.identifier(c)}" for c in contract.column_names}
    return io.merge_rows(
        spark, ref, rows, merge_condition(source), columns, correction_condition(source), metadata
    )


def correction_condition(source: Source) -> str:
    """The MERGE's update condition: a correction replaces the stored row of its own key and
    version only (the MERGE condition also matches a dimension's newer versions)."""
    if source.is_event:
        return "s._correction"
    version = sql.identifier(source.contract.version_column or DELIVERY_DATE)
    return f"s._correction AND t.{version} = s.{version}"


def _all(conditions: list[Column]) -> Column:
    result = conditions[0]
    for condition in conditions[1:]:
        result = result & condition
    return result
