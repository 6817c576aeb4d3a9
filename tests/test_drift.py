from __future__ import annotations

import math

import pytest
from pyspark.sql import types as T

from scoring.drift import (
    COUNTS_SCHEMA,
    BinSpec,
    bucket_counts,
    build_bin_spec,
    compare_counts,
    dedup_edges,
    row_counts,
)
from tests.helpers import assert_frames_equal

EPS = 1e-4
XY = T.StructType(
    [T.StructField("x", T.DoubleType(), True), T.StructField("country", T.StringType(), True)]
)
SPEC = BinSpec(numeric={"x": (1.0, 2.0)}, categorical={"country": ("DE", "FR")})


def frame(spark, rows):
    return spark.createDataFrame(rows, XY)


def metrics_of(spark, reference_rows, current_rows, spec=SPEC):
    ref = bucket_counts(frame(spark, reference_rows), spec)
    cur = bucket_counts(frame(spark, current_rows), spec)
    rows = compare_counts(ref, cur, spec, EPS).collect()
    return {(r["feature"], r["metric"]): r["value"] for r in rows}


REFERENCE = [(0.5, "DE"), (1.0, "DE"), (1.5, "FR"), (2.5, None)]
SHIFTED = [(1.5, "DE"), (1.5, "IT"), (2.5, "IT"), (3.0, None)]


def test_numeric_values_fall_in_right_closed_bins_with_nulls_and_nan_apart(spark):
    rows = [(0.5, "DE"), (1.0, "DE"), (1.5, "DE"), (2.0, "DE"), (9.0, "DE"), (None, "DE")]
    rows.append((float("nan"), "DE"))
    counts = bucket_counts(frame(spark, rows), BinSpec(numeric={"x": (1.0, 2.0)}))
    expected = spark.createDataFrame(
        [("x", "000", 2), ("x", "001", 2), ("x", "002", 1), ("x", "__null__", 2)], COUNTS_SCHEMA
    )
    assert_frames_equal(counts, expected)


def test_unknown_categories_count_as_unseen_and_nulls_as_their_own_bucket(spark):
    rows = [(1.0, "DE"), (1.0, "IT"), (1.0, "ES"), (1.0, None)]
    counts = bucket_counts(frame(spark, rows), BinSpec(categorical={"country": ("DE", "FR")}))
    expected = spark.createDataFrame(
        [("country", "DE", 1), ("country", "__unseen__", 2), ("country", "__null__", 1)],
        COUNTS_SCHEMA,
    )
    assert_frames_equal(counts, expected)


def test_psi_of_a_numeric_feature_matches_the_hand_computed_value_with_epsilon_for_empty_bins(
    spark,
):
    # reference bins (<=1, (1,2], >2): 2, 1, 1 of 4 -> 0.5, 0.25, 0.25
    # current: 0, 2, 2 of 4 -> 0 (floored at epsilon), 0.5, 0.5
    expected = (
        (EPS - 0.5) * math.log(EPS / 0.5)
        + (0.5 - 0.25) * math.log(0.5 / 0.25)
        + (0.5 - 0.25) * math.log(0.5 / 0.25)
    )
    got = metrics_of(
        spark,
        [(0.5, "DE"), (1.0, "DE"), (1.5, "DE"), (2.5, "DE")],
        [(1.5, "DE"), (1.5, "DE"), (2.5, "DE"), (3.0, "DE")],
    )
    assert got[("x", "psi")] == pytest.approx(expected)


def test_ks_is_the_largest_gap_between_the_binned_cdfs(spark):
    # CDFs at the bin boundaries: reference 0.5, 0.75, 1.0; current 0.0, 0.5, 1.0
    got = metrics_of(
        spark,
        [(0.5, "DE"), (1.0, "DE"), (1.5, "DE"), (2.5, "DE")],
        [(1.5, "DE"), (1.5, "DE"), (2.5, "DE"), (3.0, "DE")],
    )
    assert got[("x", "ks")] == pytest.approx(0.5)


def test_ks_ignores_nulls_and_null_rate_change_reports_them(spark):
    # non-null reference: 0.5 | 1.5 -> CDF 0.5, 1.0, 1.0; current 0.5 -> CDF 1.0, 1.0, 1.0
    got = metrics_of(spark, [(0.5, "DE"), (1.5, "DE")], [(0.5, "DE"), (None, "DE")])
    assert got[("x", "ks")] == pytest.approx(0.5)
    assert got[("x", "null_rate")] == pytest.approx(0.5)
    assert got[("x", "null_rate_change")] == pytest.approx(0.5 - 0.0)


def test_categorical_psi_and_js_distance_count_unseen_categories(spark):
    # reference: DE 0.5, FR 0.25, null 0.25; current: DE 0.25, unseen (IT) 0.5, null 0.25
    ref = [(1.0, "DE"), (1.0, "DE"), (1.0, "FR"), (1.0, None)]
    cur = [(1.0, "DE"), (1.0, "IT"), (1.0, "IT"), (1.0, None)]
    psi = (
        (0.25 - 0.5) * math.log(0.25 / 0.5)
        + (EPS - 0.25) * math.log(EPS / 0.25)
        + (0.5 - EPS) * math.log(0.5 / EPS)
        + 0.0
    )
    # m = (p + q) / 2: DE 0.375, FR 0.125, unseen 0.25, null 0.25
    jsd = 0.5 * (0.5 * math.log2(0.5 / 0.375) + 0.25 * math.log2(0.25 / 0.125)) + 0.5 * (
        0.25 * math.log2(0.25 / 0.375) + 0.5 * math.log2(0.5 / 0.25)
    )
    got = metrics_of(spark, ref, cur)
    assert got[("country", "psi")] == pytest.approx(psi)
    assert got[("country", "js_distance")] == pytest.approx(math.sqrt(jsd))
    assert ("country", "ks") not in got
    assert ("x", "js_distance") not in got


def test_identical_distributions_have_zero_drift(spark):
    got = metrics_of(spark, REFERENCE, list(reversed(REFERENCE)))
    assert got[("x", "psi")] == pytest.approx(0.0)
    assert got[("x", "ks")] == pytest.approx(0.0)
    assert got[("country", "js_distance")] == pytest.approx(0.0)
    assert got[("country", "null_rate_change")] == pytest.approx(0.0)


def test_metrics_are_left_out_when_the_current_side_has_no_rows(spark):
    assert metrics_of(spark, REFERENCE, []) == {}


def test_row_counts_count_rows_not_buckets(spark):
    counts = bucket_counts(frame(spark, SHIFTED), SPEC)
    assert row_counts(counts).collect()[0]["rows"] == 4


def test_repeated_quantiles_make_one_edge():
    assert dedup_edges([1.0, 1.0, 3.0, 2.0, 3.0]) == (1.0, 2.0, 3.0)


def test_bin_spec_takes_quantile_edges_and_categories_of_the_reference(spark):
    rows: list[tuple[float | None, str | None]] = [
        (float(v), c) for v, c in zip(range(1, 11), "ABABABABAB", strict=True)
    ]
    rows.append((None, None))
    spec = build_bin_spec(frame(spark, rows), ["x"], ["country"], n_bins=4, relative_error=0.0)
    # exact quartiles of 1..10 at 0.25, 0.5, 0.75 (Spark picks observed values)
    assert spec.numeric == {"x": (3.0, 5.0, 8.0)}
    assert spec.categorical == {"country": ("A", "B")}
