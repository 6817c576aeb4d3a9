"""Each source as known at the end of a date D: the point-in-time rule, by construction.

Feature code never sees bronze itself; it gets, per source, the rows a scoring run on D
could have seen:

- every source: rows delivered in a drop dated on or before D (`_delivery_date <= D`),
  and the rows of the source's first delivery, its initial load: the history a client
  sends when onboarding is the earliest knowledge there is, so dates before it (a first
  model's training date) are rebuilt from it;
- an event source (it has `event_time_column`): only events at or before the end of D
  (UTC), whenever they arrived;
- a dimension: per key, the newest version delivered by D (newest `version_column`, then
  the newest delivery, then the newest file name).

So a row delivered after D or an event after D cannot leak into the features of D, and the
features of D rebuilt after later drops are the ones scoring saw on D (for every D from the
first delivery on; before it, they are what the initial load says). Only the contract's
columns are handed on (no lineage columns). Pure functions.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from scoring.usecase.spec import Source

DELIVERY_DATE = "_delivery_date"
SOURCE_FILE = "_source_file"


def end_of_day_exclusive(as_of: date) -> datetime:
    """The first instant after D (UTC): events strictly before it are at or before the end of D."""
    return datetime.combine(as_of + timedelta(days=1), time.min, tzinfo=UTC)


def happened_by(column: Column, type_name: str, as_of: date) -> Column:
    """Whether an event time (a timestamp or a date) is at or before the end of D."""
    if type_name == "date":
        return column <= F.lit(as_of)
    # An aware datetime is an instant, whatever the driver's local time zone is.
    return column < F.lit(end_of_day_exclusive(as_of))


def as_known_at(
    bronze: DataFrame, source: Source, as_of: date, initial_load: date | None
) -> DataFrame:
    """The rows of a source's bronze table a run on `as_of` could have seen (module docstring).

    `initial_load` is the source's first delivery date (`first_delivery`); None when bronze
    is empty.
    """
    contract = source.contract
    known_by = F.col(DELIVERY_DATE) <= F.lit(as_of)
    if initial_load is not None:
        known_by = known_by | (F.col(DELIVERY_DATE) == F.lit(initial_load))
    delivered = bronze.where(known_by)
    if source.is_event:
        event_time = contract.column(str(contract.event_time_column))
        known = delivered.where(happened_by(F.col(event_time.name), event_time.type, as_of))
        return known.select(*contract.column_names)
    return newest_versions(delivered, source).select(*contract.column_names)


def newest_versions(rows: DataFrame, source: Source) -> DataFrame:
    """Per key of a dimension, the newest version among `rows`."""
    contract = source.contract
    order = []
    if contract.version_column:
        order.append(F.col(contract.version_column).desc_nulls_last())
    order += [F.col(DELIVERY_DATE).desc(), F.col(SOURCE_FILE).desc()]
    newest = Window.partitionBy(*contract.keys).orderBy(*order)
    ranked = rows.withColumn("_version_rank", F.row_number().over(newest))
    return ranked.where(F.col("_version_rank") == 1).drop("_version_rank")


def first_delivery(bronze: DataFrame) -> date | None:
    """The source's first delivery date in bronze (one small aggregate on the driver)."""
    row = bronze.agg(F.min(DELIVERY_DATE)).first()
    return row[0] if row is not None else None
