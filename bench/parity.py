"""Compiled parity in the bench: the scores of (a), compiled tree inference when its parity
gate passes, against (n), the native model, on every row of the bench table.

Issue #18 requires the compiled path's `score` to equal the native model's within 1e-12 on
every row, with identical labels. After (a) and (n) have scored the same features table in a
repetition, their slices of `scores` (the run date) are joined on the entity key and
compared: rows in both, rows in one slice only, the largest absolute score difference and
the label mismatches. The comparison is one Spark aggregation (untimed); nothing is
collected but its single result row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

TOLERANCE = 1e-12


@dataclass(frozen=True)
class ScoreParity:
    """How two slices of `scores` of the same rows differ (`compare_slices`)."""

    rows: int  # keys in both slices
    unmatched: int  # keys in one slice only
    max_abs_diff: float  # largest |score a - score n| over the rows in both; NaN when any is
    label_mismatches: int
    tolerance: float = TOLERANCE

    @property
    def ok(self) -> bool:
        """Same keys, every score within `tolerance`, every label equal (and rows to compare)."""
        return (
            self.rows > 0
            and self.unmatched == 0
            and self.label_mismatches == 0
            and self.max_abs_diff <= self.tolerance  # False for NaN
        )

    def describe(self) -> str:
        """One line: verdict and the numbers, e.g. `ok: 1,000 rows, max |diff| 0, 0 labels`."""
        verdict = "ok" if self.ok else "FAIL"
        unmatched = f", {self.unmatched:,} unmatched" if self.unmatched else ""
        return (
            f"{verdict}: {self.rows:,} rows{unmatched}, max |diff| {self.max_abs_diff:.3g}, "
            f"{self.label_mismatches:,} labels"
        )


def compare_slices(left: DataFrame, right: DataFrame, keys: Sequence[str]) -> ScoreParity:
    """Compare two slices of `scores` row by row, joined on `keys` (the entity and date).

    Both frames need `keys`, `score` and `label`. A NaN score on either side makes
    `max_abs_diff` NaN, which no tolerance passes.
    """
    if not keys:
        raise ValueError("bench.parity: compare_slices needs the key columns to join on")
    sides = [
        frame.select(
            *keys, F.col("score").alias(f"score_{n}"), F.col("label").alias(f"label_{n}")
        ).withColumn(f"in_{n}", F.lit(True))
        for n, frame in (("l", left), ("r", right))
    ]
    joined = sides[0].join(sides[1], on=list(keys), how="full_outer")
    both = F.col("in_l").isNotNull() & F.col("in_r").isNotNull()
    diff = F.abs(F.col("score_l") - F.col("score_r"))
    # Spark SQL orders NaN above every double, so one NaN difference is the maximum.
    result = joined.agg(
        F.count(F.when(both, True)).alias("rows"),
        F.count(F.when(~both, True)).alias("unmatched"),
        F.max(F.when(both, diff)).alias("max_abs_diff"),
        F.count(F.when(both & ~F.col("label_l").eqNullSafe(F.col("label_r")), True)).alias(
            "labels"
        ),
    ).first()
    if result is None:  # an aggregation without grouping always has one row
        raise RuntimeError("bench.parity: the comparison returned no row")
    worst = result["max_abs_diff"]
    return ScoreParity(
        rows=int(result["rows"]),
        unmatched=int(result["unmatched"]),
        max_abs_diff=0.0 if worst is None else float(worst),
        label_mismatches=int(result["labels"]),
    )
