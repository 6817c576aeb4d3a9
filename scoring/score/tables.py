"""The scored tables of a use case: their schema, lineage columns, the rerun slice, the newest-row rule.

`scores` and `scores_current` have the same columns: the entity key (typed as in the
features), `as_of_date`, the task's outputs (`scoring.model.tasks`), `reasons` when reason
codes are on (`scoring.model.reasons`) and the lineage columns of `schemas/scores.yaml`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from scoring.core import io, sql
from scoring.core.contracts import column_comments, load_contract, spark_schema
from scoring.model.reasons import REASONS, reasons_field
from scoring.model.tasks import output_fields, outputs_contract

# scores_current keeps an entity's row from the newest as_of_date; on a tie, the newest run.
NEWER_SCORE = (
    "s.as_of_date > t.as_of_date OR (s.as_of_date = t.as_of_date AND s.scored_at >= t.scored_at)"
)


REASONS_COMMENT = (
    "The inputs that pushed this row's model output most: feature, its value as text, its "
    "contribution on the model's raw scale (docs/scoring.md, Reason codes); null when off."
)


@dataclass(frozen=True)
class Lineage:
    """What every score row of a run carries besides the model's outputs (and, recorded in
    the run's commits only, the fingerprint of the use case's code)."""

    model_name: str
    model_version: str
    model_run_id: str | None
    feature_table_version: int
    run_id: str
    scored_at: datetime
    usecase_code: str | None = None


@dataclass(frozen=True)
class ScoresLayout:
    """The columns of a use case's scored tables: entity fields, the model's task and
    whether rows carry reason codes (an existing table gets the column added)."""

    entity: tuple[T.StructField, ...]
    task: str
    reasons: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        """The entity key columns."""
        return tuple(f.name for f in self.entity)

    @property
    def schema(self) -> T.StructType:
        """Entity, `as_of_date`, outputs, reasons (when on), lineage: the contract of `scores`
        and `scores_current`."""
        engine = list(spark_schema(load_contract("scores")).fields)
        entity = [T.StructField(f.name, f.dataType, False) for f in self.entity]
        outputs = [*output_fields(self.task), *([reasons_field()] if self.reasons else [])]
        return T.StructType([*entity, engine[0], *outputs, *engine[1:]])

    @property
    def comments(self) -> dict[str, str]:
        """Column descriptions: the entity's (from the features table), outputs, lineage."""
        comments = column_comments(outputs_contract(self.task), load_contract("scores"))
        if self.reasons:
            comments[REASONS] = REASONS_COMMENT
        for key in self.entity:
            comment = key.metadata.get("comment")
            if comment:
                comments[key.name] = comment
        return comments

    def table_spec(self, current: bool) -> io.TableSpec:
        """`scores` (partitioned by date, Change Data Feed) or `scores_current`."""
        description = load_contract("scores").description
        if current:
            return io.TableSpec(
                self.schema,
                (),
                self.current_properties,
                description + " The newest row per entity, for decision systems.",
                self.comments,
            )
        return io.TableSpec(
            self.schema, ("as_of_date",), self.scores_properties, description, self.comments
        )

    @property
    def scores_properties(self) -> dict[str, str]:
        """`scores`: Change Data Feed on; Delta statistics on the columns that skip files.

        Delta collects min/max/null-count statistics only for the entity key (history
        lookups, Z-order) and model_name / model_version (a run's files hold one version, so
        a challenger's rows skip the champion's files); the default is the first 32 columns,
        and string statistics are most of what a write costs beyond Parquet
        (bench/RESULTS.md, finding 11). numRecords is always kept.
        """
        columns = [*self.keys, "model_name", "model_version"]
        return {
            "delta.enableChangeDataFeed": "true",
            "delta.dataSkippingStatsColumns": _column_list(columns),
        }

    @property
    def current_properties(self) -> dict[str, str]:
        """`scores_current`: Change Data Feed on (decision systems read the changes);
        statistics on the entity key only (after a MERGE every file holds a mix of dates and
        versions, so nothing else would skip a file)."""
        return {
            "delta.enableChangeDataFeed": "true",
            "delta.dataSkippingStatsColumns": _column_list(self.keys),
        }

    @property
    def parquet_string_stats_off(self) -> dict[str, str]:
        """Parquet settings that leave out row-group min/max of every string column.

        Parquet compares every value for its own statistics; for strings that was a sixth
        of the JVM's time in a scoring write (bench/RESULTS.md, finding 12). Entity strings
        arrive in no particular order, so their ranges span every row group, and the lineage
        strings are one value per run, which Delta's statistics and Parquet's dictionary
        filter already skip on. Numbers and dates keep theirs; OPTIMIZE / ZORDER rewrite
        files outside the scoring run, with Parquet's defaults.
        """
        strings = [f.name for f in self.schema.fields if isinstance(f.dataType, T.StringType)]
        return {f"parquet.column.statistics.enabled#{name}": "false" for name in strings}


def with_lineage(scored: DataFrame, lineage: Lineage, layout: ScoresLayout) -> DataFrame:
    """Add the lineage columns and select the scored table's columns, in order, typed."""
    values = {
        "model_name": F.lit(lineage.model_name),
        "model_version": F.lit(lineage.model_version),
        "model_run_id": F.lit(lineage.model_run_id),
        "feature_table_version": F.lit(lineage.feature_table_version),
        "run_id": F.lit(lineage.run_id),
        "scored_at": F.lit(lineage.scored_at),
    }
    return scored.select(
        *(values.get(f.name, F.col(f.name)).cast(f.dataType).alias(f.name) for f in layout.schema)
    )


def slice_predicate(as_of_date: date, model_name: str, model_version: str) -> str:
    """The SQL predicate of one run's slice of `scores`: a date scored by one model version."""
    return sql.predicate(
        ("as_of_date", as_of_date), ("model_name", model_name), ("model_version", model_version)
    )


def _column_list(columns: Sequence[str]) -> str:
    """A Delta column-list property: plain names as they are, others back-quoted."""
    return ",".join(c if re.fullmatch(r"[A-Za-z_]\w*", c) else sql.identifier(c) for c in columns)
