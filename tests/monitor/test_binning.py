from __future__ import annotations

from pyspark.sql import types as T

from scoring.monitor.binning import (
    COUNTS_SCHEMA,
    BinSpec,
    bucket_counts,
    build_bin_spec,
    collect_counts,
    dedup_edges,
)
from tests.helpers import assert_frames_equal

XY = T.StructType(
    [T.StructField("x", T.DoubleType(), True), T.StructField("country", T.StringType(), True)]
)
SPEC = BinSpec(numeric={"x": (1.0, 2.0)}, categorical={"country": ("DE", "FR")})


def frame(spark, rows):
    return spark.createDataFrame(rows, XY)


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


def test_collected_counts_are_nested_by_feature_and_bucket(spark):
    counts = spark.createDataFrame([("x", "000", 2), ("x", "__null__", 1)], COUNTS_SCHEMA)
    assert collect_counts(counts) == {"x": {"000": 2, "__null__": 1}}


def test_default_bin_edges_do_not_depend_on_row_order_or_partitioning(spark):
    """A rerun reads the baseline in another order or split; its drift must compare equal."""
    import random

    from scoring.core.config import load_config

    rng = random.Random(3)
    values = [rng.gauss(0, 1) for _ in range(20_000)]
    shuffled = values[:]
    random.Random(5).shuffle(shuffled)
    relative_error = load_config("local").monitor.quantile_relative_error
    one = frame(spark, [(v, "A") for v in values]).coalesce(1)
    many = frame(spark, [(v, "A") for v in shuffled]).repartition(7)
    edges = [
        build_bin_spec(f, ["x"], [], n_bins=10, relative_error=relative_error).numeric["x"]
        for f in (one, many)
    ]
    assert edges[0] == edges[1]
    assert set(edges[0]) <= set(values)  # exact quantiles are observed values
