"""Pure pieces of the scored tables: lineage columns, the rerun slice, the newest-row rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from scoring.contracts import load_contract, spark_schema

# Delta collects min/max/null-count statistics only for the columns that skip files (the
# default is the first 32 columns, and string statistics are most of what a write costs beyond
# Parquet: bench/RESULTS.md, finding 11). `scores`: customer_id (history lookups, Z-order),
# model_name / model_version (a run's files hold one version, so a challenger's rows skip
# the champion's files). `scores_current`: customer_id (the decision systems' lookups; after a
# MERGE every file holds a mix of dates and versions, so nothing else would skip a file).
# numRecords is always kept. Add columns with ALTER TABLE ... SET TBLPROPERTIES if queries
# filter on others (e.g. run_id).
SCORES_PROPERTIES = {
    "delta.enableChangeDataFeed": "true",
    "delta.dataSkippingStatsColumns": "customer_id,model_name,model_version",
}
CURRENT_PROPERTIES = {"delta.dataSkippingStatsColumns": "customer_id"}

# Parquet keeps its own min/max per row group and page for every column, comparing every
# value; for strings that was a sixth of the JVM's time in a scoring write (bench/RESULTS.md,
# finding 12). The scoring writes leave it out for the string columns of `scores` (the same
# columns in `scores_current`): customer_id arrives in no particular order, so its ranges
# span every row group, and the lineage strings are one value per run, which Delta's
# statistics and Parquet's dictionary filter already skip on. Numbers and dates keep theirs.
# OPTIMIZE / ZORDER rewrite files outside the scoring run, with Parquet's defaults.
SCORES_STRING_COLUMNS = ("customer_id", "model_name", "model_version", "model_run_id", "run_id")
PARQUET_STRING_STATS_OFF = {
    f"parquet.column.statistics.enabled#{name}": "false" for name in SCORES_STRING_COLUMNS
}

# scores_current keeps a customer's row from the newest as_of_date; on a tie, the newest run.
NEWER_SCORE = (
    "s.as_of_date > t.as_of_date OR (s.as_of_date = t.as_of_date AND s.scored_at >= t.scored_at)"
)


@dataclass(frozen=True)
class Lineage:
    """What every score row of a run carries besides the score itself."""

    model_name: str
    model_version: str
    model_run_id: str | None
    feature_table_version: int
    run_id: str
    scored_at: datetime


def with_lineage(scored: DataFrame, lineage: Lineage) -> DataFrame:
    """Add the lineage columns and select the `scores` contract's columns, in order."""
    schema = spark_schema(load_contract("scores"))
    stamped = scored.select(
        "customer_id",
        "as_of_date",
        "score",
        "label",
        F.lit(lineage.model_name).alias("model_name"),
        F.lit(lineage.model_version).alias("model_version"),
        F.lit(lineage.model_run_id).cast("string").alias("model_run_id"),
        F.lit(lineage.feature_table_version).cast("bigint").alias("feature_table_version"),
        F.lit(lineage.run_id).alias("run_id"),
        F.lit(lineage.scored_at).cast("timestamp").alias("scored_at"),
    )
    return stamped.select(*(F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields))


def slice_predicate(as_of_date: date, model_name: str, model_version: str) -> str:
    """The SQL predicate of one run's slice of `scores`: a date scored by one model version."""
    return (
        f"as_of_date = DATE'{as_of_date.isoformat()}' AND model_name = {_sql_string(model_name)}"
        f" AND model_version = {_sql_string(model_version)}"
    )


def _sql_string(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
