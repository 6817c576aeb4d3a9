"""The features contract checked on typed rows: nulls, allowed values, ranges, unique keys.

Feature rows are derived data: a violation is a bug in the feature code or a change
upstream, so it fails the step (naming the column, the count and an example key) instead
of being quarantined. The counts come from one `Observation` on the pass that materialises
the rows; the key check groups the materialised rows once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from scoring.core.contracts import ColumnSpec, Contract
from scoring.core.errors import DataError

ROWS = "rows"


def violation_metrics(contract: Contract) -> list[Column]:
    """Observation metrics: the row count and, per contract rule, the rows that break it."""
    metrics = [F.count(F.lit(1)).alias(ROWS)]
    for spec in contract.columns:
        for rule, broken in column_rules(spec):
            metrics.append(F.count_if(broken).alias(f"{rule}:{spec.name}"))
    return metrics


def column_rules(spec: ColumnSpec) -> list[tuple[str, Column]]:
    """(rule, condition that breaks it) for one typed column of the contract."""
    column = F.col(spec.name)
    rules: list[tuple[str, Column]] = []
    if not spec.nullable:
        rules.append(("missing", column.isNull()))
    if spec.allowed is not None:
        rules.append(
            ("not_allowed", column.isNotNull() & ~column.cast("string").isin(*spec.allowed))
        )
    if spec.range is not None:
        low, high = (F.lit(bound).try_cast(spec.spark_type) for bound in spec.range)
        rules.append(("out_of_range", (column < low) | (column > high)))
    if spec.pattern is not None:
        rules.append(("pattern", column.isNotNull() & ~column.cast("string").rlike(spec.pattern)))
    return rules


def check_violations(counts: Mapping[str, Any], contract: Contract) -> None:
    """Raise DataError naming the first broken rule and how many rows break it."""
    for name, value in counts.items():
        if name != ROWS and int(value or 0) > 0:
            rule, column = name.split(":", 1)
            raise DataError(
                f"features: {int(value)} of {int(counts[ROWS])} rows break {rule} on column "
                f"'{column}' of {contract.path}"
            )


def check_unique(rows: DataFrame, keys: Sequence[str]) -> None:
    """Raise DataError when an entity key appears more than once (with up to 3 examples)."""
    repeated = rows.groupBy(*keys).agg(F.count(F.lit(1)).alias("n")).where(F.col("n") > 1).limit(3)
    examples = [tuple(r[k] for k in keys) for r in repeated.collect()]
    if examples:
        raise DataError(
            f"features: the entity key {list(keys)} is not unique: {examples} (and maybe more) "
            "appear more than once"
        )
