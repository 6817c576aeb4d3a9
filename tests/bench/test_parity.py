"""The bench's compiled-parity check: (a)'s scores against (n)'s, row by row."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from bench.parity import ScoreParity, compare_slices

SCHEMA = T.StructType(
    [
        T.StructField("entity_id", T.StringType(), False),
        T.StructField("as_of_date", T.DateType(), False),
        T.StructField("score", T.DoubleType(), True),
        T.StructField("label", T.IntegerType(), True),
    ]
)
DAY = date(2026, 3, 1)
KEYS = ("entity_id", "as_of_date")


def slice_of(spark: SparkSession, rows: Sequence[tuple[str, float, int]]) -> DataFrame:
    return spark.createDataFrame([(e, DAY, s, lab) for e, s, lab in rows], SCHEMA)


def test_identical_slices_are_ok():
    same = ScoreParity(rows=3, unmatched=0, max_abs_diff=0.0, label_mismatches=0)
    assert same.ok
    assert same.describe() == "ok: 3 rows, max |diff| 0, 0 labels"


@pytest.mark.parametrize(
    "parity",
    [
        ScoreParity(rows=3, unmatched=0, max_abs_diff=2e-12, label_mismatches=0),
        ScoreParity(rows=3, unmatched=0, max_abs_diff=0.0, label_mismatches=1),
        ScoreParity(rows=3, unmatched=1, max_abs_diff=0.0, label_mismatches=0),
        ScoreParity(rows=3, unmatched=0, max_abs_diff=math.nan, label_mismatches=0),
        ScoreParity(rows=0, unmatched=0, max_abs_diff=0.0, label_mismatches=0),
    ],
    ids=["score above 1e-12", "a label", "a row in one slice", "NaN", "nothing compared"],
)
def test_any_difference_beyond_the_tolerance_fails(parity: ScoreParity):
    assert not parity.ok
    assert parity.describe().startswith("FAIL: ")


def test_a_difference_at_the_tolerance_passes():
    assert ScoreParity(rows=1, unmatched=0, max_abs_diff=1e-12, label_mismatches=0).ok


def test_compare_counts_rows_differences_labels_and_unmatched_keys(spark: SparkSession):
    left = slice_of(spark, [("E1", 0.25, 0), ("E2", 0.75, 1), ("E3", 0.5, 1), ("E4", 0.1, 0)])
    right = slice_of(
        spark, [("E1", 0.25, 0), ("E2", 0.75 + 3e-9, 1), ("E3", 0.5, 0), ("E5", 0.2, 0)]
    )
    found = compare_slices(left, right, KEYS)
    assert (found.rows, found.unmatched, found.label_mismatches) == (3, 2, 1)
    assert found.max_abs_diff == pytest.approx(3e-9, rel=1e-6)
    assert not found.ok


def test_compare_of_equal_slices_is_ok_and_a_nan_score_is_not(spark: SparkSession):
    rows = [("E1", 0.25, 0), ("E2", 0.75, 1)]
    assert compare_slices(slice_of(spark, rows), slice_of(spark, rows), KEYS).ok
    nan = compare_slices(
        slice_of(spark, rows), slice_of(spark, [("E1", math.nan, 0), rows[1]]), KEYS
    )
    assert math.isnan(nan.max_abs_diff) and not nan.ok


def test_compare_needs_keys(spark: SparkSession):
    rows = slice_of(spark, [("E1", 0.25, 0)])
    with pytest.raises(ValueError, match="key columns"):
        compare_slices(rows, rows, ())
