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
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from scoring.core import io, sql
from scoring.core.contracts import column_comments, load_contract, spark_schema
from scoring.core.tables import TableRef
from scoring.model.reasons import REASONS, reasons_field
from scoring.model.registry import ResolvedModel
from scoring.model.tasks import output_fields, outputs_contract
from scoring.score.udf import MODEL

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
        lookups, Z-order) and model_name / model_version (a run of one model writes files of
        one version, so other versions' rows skip them; a champion + challenger pass writes
        both into the same files); the default is the first 32 columns,
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


def with_lineage(
    scored: DataFrame, lineage: Lineage | Sequence[Lineage], layout: ScoresLayout
) -> DataFrame:
    """Add the lineage columns and select the scored table's columns, in order, typed.

    With several lineages (one pass, several models), each row's model columns are those of
    the lineage at its position `MODEL` (`scoring.score.udf.score_frame`); the rest is the
    run's, the same for every model.
    """
    lineages = [lineage] if isinstance(lineage, Lineage) else list(lineage)
    first = lineages[0]
    values = {
        "model_name": _per_model([m.model_name for m in lineages]),
        "model_version": _per_model([m.model_version for m in lineages]),
        "model_run_id": _per_model([m.model_run_id for m in lineages]),
        "feature_table_version": F.lit(first.feature_table_version),
        "run_id": F.lit(first.run_id),
        "scored_at": F.lit(first.scored_at),
    }
    return scored.select(
        *(values.get(f.name, F.col(f.name)).cast(f.dataType).alias(f.name) for f in layout.schema)
    )


def _per_model(values: Sequence[str | None]) -> Column:
    """A literal; with several models, the value at the row's model position."""
    if len(values) == 1:
        return F.lit(values[0])
    choices = F.array(*(F.lit(v).cast("string") for v in values))
    return F.element_at(choices, F.col(MODEL) + F.lit(1))


def slice_predicate(as_of_date: date, model_name: str, model_version: str) -> str:
    """The SQL predicate of one run's slice of `scores`: a date scored by one model version."""
    return sql.predicate(
        ("as_of_date", as_of_date), ("model_name", model_name), ("model_version", model_version)
    )


def slices_predicate(as_of_date: date, models: Sequence[tuple[str, str]]) -> str:
    """The predicate of several models' slices of one date: an OR of `slice_predicate`."""
    return sql.any_of([slice_predicate(as_of_date, name, version) for name, version in models])


def commit_metadata(
    model: ResolvedModel | Sequence[ResolvedModel],
    lineage: Lineage,
    features: TableRef,
    run_date: date,
    usecase: str,
) -> dict[str, Any]:
    """The userMetadata of every commit of a scoring run (io.to_json adds the code version).

    The `model_*` keys are the first model's (the serving model, the one replay and the
    readers of older commits know); with several models, `models` lists each of them.
    """
    models = [model] if isinstance(model, ResolvedModel) else list(model)
    first = models[0]
    metadata: dict[str, Any] = {
        "run_id": lineage.run_id,
        "usecase": usecase,
        "step": "score",
        "run_date": run_date.isoformat(),
        "model_uri": first.requested_uri,
        "model_pinned_uri": first.pinned_uri,
        "model_name": first.name,
        "model_version": first.version,
        "model_run_id": first.run_id,
        "source_tables": {str(features): lineage.feature_table_version},
        "feature_table_version": lineage.feature_table_version,
        "usecase_code": lineage.usecase_code,
    }
    if len(models) > 1:
        metadata["models"] = [
            {
                "model_uri": m.requested_uri,
                "model_pinned_uri": m.pinned_uri,
                "model_name": m.name,
                "model_version": m.version,
                "model_run_id": m.run_id,
            }
            for m in models
        ]
    return metadata


def _column_list(columns: Sequence[str]) -> str:
    """A Delta column-list property: plain names as they are, others back-quoted."""
    return ",".join(c if re.fullmatch(r"[A-Za-z_]\w*", c) else sql.identifier(c) for c in columns)
