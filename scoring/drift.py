"""Drift math in Spark: bucket every feature once, then compare bucket counts.

Numeric features are cut at the reference's quantiles (right-closed bins, the first and
last open-ended, nulls and NaN in their own bucket); categorical features keep the
reference's categories, with `__unseen__` for values the reference never had and
`__null__` for nulls. `bucket_counts` turns any frame into (feature, bucket, n) in ONE
grouped pass over its rows (explode to long format, then groupBy), so its cost is linear
in rows and its output is tiny: at most `n_bins + 2` rows per feature.
`compare_counts` then turns two such count frames into metrics:

- `psi`: sum over buckets of (q - p) * ln(q / p), p and q floored at `epsilon`;
- `ks`: max over bin boundaries of |CDF_ref - CDF_cur| of the non-null values (numeric);
- `js_distance`: Jensen-Shannon distance, base 2, in [0, 1] (categorical);
- `null_rate` of the current rows and `null_rate_change` = current - reference.

Example:
    >>> spec = BinSpec(numeric={"age": (30.0, 50.0)}, categorical={"country": ("DE",)})
    >>> ref, cur = bucket_counts(baseline_df, spec), bucket_counts(today_df, spec)  # doctest: +SKIP
    >>> compare_counts(ref, cur, spec, epsilon=1e-4)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from operator import add

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

NULL_BUCKET = "__null__"
UNSEEN_BUCKET = "__unseen__"
COUNTS_SCHEMA = T.StructType(
    [
        T.StructField("feature", T.StringType(), False),
        T.StructField("bucket", T.StringType(), False),
        T.StructField("n", T.LongType(), False),
    ]
)
_NUMERIC_TYPES = (T.NumericType,)


@dataclass(frozen=True)
class BinSpec:
    """How each feature is bucketed: numeric bin edges and known categories, from the reference."""

    numeric: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    categorical: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def features(self) -> tuple[str, ...]:
        """Every feature, numeric first, each group sorted."""
        return (*sorted(self.numeric), *sorted(self.categorical))


def split_kinds(df: DataFrame, features: Sequence[str]) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature names by the column types of `df` (booleans count as categories)."""
    types = {f.name: f.dataType for f in df.schema.fields}
    numeric = [c for c in features if isinstance(types[c], _NUMERIC_TYPES)]
    return numeric, [c for c in features if c not in numeric]


def dedup_edges(quantiles: Sequence[float]) -> tuple[float, ...]:
    """Sorted distinct bin edges: repeated quantiles (a heavy value) make a single edge."""
    return tuple(sorted({float(q) for q in quantiles}))


def quantile_probabilities(n_bins: int) -> list[float]:
    """The inner quantiles that cut a distribution into `n_bins` equal-frequency bins."""
    return [i / n_bins for i in range(1, n_bins)]


def build_bin_spec(
    reference: DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    n_bins: int,
    relative_error: float = 0.001,
    max_categories: int = 1000,
) -> BinSpec:
    """Bin edges (quantiles) and categories of the reference, e.g. the training baseline.

    Two small driver actions on the reference: one approxQuantile pass for all numeric
    features, and one pass collecting each categorical feature's distinct values (capped
    at `max_categories`; anything beyond counts as `__unseen__`).
    """
    probabilities = quantile_probabilities(n_bins)
    quantiles = (
        reference.approxQuantile(list(numeric), probabilities, relative_error) if numeric else []
    )
    edges = {c: dedup_edges(q) for c, q in zip(numeric, quantiles, strict=True)}
    categories: dict[str, tuple[str, ...]] = {}
    if categorical:
        sets = reference.agg(
            *(F.collect_set(F.col(c).cast("string")).alias(c) for c in categorical)
        ).first()
        for c in categorical:
            values = sorted(sets[c]) if sets is not None else []
            categories[c] = tuple(values[:max_categories])
    return BinSpec(numeric=edges, categorical=categories)


def numeric_bucket(column: Column, edges: Sequence[float]) -> Column:
    """The bin of a value as a zero-padded index: `000` is (-inf, e1], the last (e_k, +inf).

    Null and NaN go to `__null__`. The index is the number of edges strictly below the
    value, so a value equal to an edge falls in the bin that edge closes.
    """
    value = column.cast("double")
    index = reduce(add, [(value > F.lit(e)).cast("int") for e in edges], F.lit(0))
    missing = value.isNull() | F.isnan(value)
    return F.when(missing, F.lit(NULL_BUCKET)).otherwise(F.lpad(index.cast("string"), 3, "0"))


def categorical_bucket(column: Column, categories: Sequence[str]) -> Column:
    """The category as text, `__unseen__` when the reference never had it, `__null__` for null."""
    value = column.cast("string")
    known = value.isin(list(categories)) if categories else F.lit(False)
    return (
        F.when(value.isNull(), F.lit(NULL_BUCKET))
        .when(known, value)
        .otherwise(F.lit(UNSEEN_BUCKET))
    )


def bucket_counts(df: DataFrame, spec: BinSpec) -> DataFrame:
    """(feature, bucket, n) for every feature of `spec`, in one grouped pass over `df`."""
    buckets = [
        *(
            F.struct(F.lit(c).alias("feature"), numeric_bucket(F.col(c), e).alias("bucket"))
            for c, e in sorted(spec.numeric.items())
        ),
        *(
            F.struct(F.lit(c).alias("feature"), categorical_bucket(F.col(c), v).alias("bucket"))
            for c, v in sorted(spec.categorical.items())
        ),
    ]
    long = df.select(F.explode(F.array(*buckets)).alias("fb")).select("fb.feature", "fb.bucket")
    counts = long.groupBy("feature", "bucket").agg(F.count(F.lit(1)).alias("n"))
    return counts.select("feature", "bucket", F.col("n").cast("long").alias("n"))


def compare_counts(
    reference: DataFrame, current: DataFrame, spec: BinSpec, epsilon: float
) -> DataFrame:
    """(feature, metric, value) comparing the current bucket counts with the reference's.

    A metric that is undefined (no rows on one side, no non-null values for KS) is left out.
    """
    shares = _bucket_shares(reference, current)
    p_floor, q_floor = F.greatest("p", F.lit(epsilon)), F.greatest("q", F.lit(epsilon))
    m = (F.col("p") + F.col("q")) / 2
    js_term = _xlog2(F.col("p"), m) + _xlog2(F.col("q"), m)
    is_null = F.col("bucket") == NULL_BUCKET
    per_feature = shares.groupBy("feature").agg(
        F.sum((q_floor - p_floor) * F.ln(q_floor / p_floor)).alias("psi"),
        F.sqrt(F.greatest(F.sum(js_term) / 2, F.lit(0.0))).alias("js_distance"),
        F.sum(F.when(is_null, F.col("q")).otherwise(0.0)).alias("null_rate"),
        F.sum(F.when(is_null, F.col("q") - F.col("p")).otherwise(0.0)).alias("null_rate_change"),
    )
    numeric, categorical = list(spec.numeric), list(spec.categorical)
    metrics = per_feature.select(
        "feature",
        F.explode(
            F.array(
                *(
                    F.struct(F.lit(name).alias("metric"), F.col(name).alias("value"))
                    for name in ("psi", "js_distance", "null_rate", "null_rate_change")
                )
            )
        ).alias("mv"),
    ).select("feature", "mv.metric", "mv.value")
    metrics = metrics.where(
        (F.col("metric") != "js_distance") | F.col("feature").isin(categorical or [""])
    )
    ks = _ks(reference, current).where(F.col("feature").isin(numeric or [""]))
    return metrics.unionByName(ks).where(F.col("value").isNotNull())


def row_counts(counts: DataFrame) -> DataFrame:
    """(rows) of the frame the counts came from: every feature sees every row once."""
    per_feature = counts.groupBy("feature").agg(F.sum("n").alias("rows"))
    return per_feature.agg(F.max("rows").cast("long").alias("rows"))


def _bucket_shares(reference: DataFrame, current: DataFrame) -> DataFrame:
    """Both sides' counts joined per bucket (missing buckets count 0) with their shares p, q."""
    joined = (
        reference.select("feature", "bucket", F.col("n").alias("ref_n"))
        .join(
            current.select("feature", "bucket", F.col("n").alias("cur_n")),
            on=["feature", "bucket"],
            how="full",
        )
        .fillna(0, subset=["ref_n", "cur_n"])
    )
    whole = Window.partitionBy("feature").rowsBetween(
        Window.unboundedPreceding, Window.unboundedFollowing
    )
    shares = joined.select(
        "feature",
        "bucket",
        F.try_divide(F.col("ref_n"), F.sum("ref_n").over(whole)).cast("double").alias("p"),
        F.try_divide(F.col("cur_n"), F.sum("cur_n").over(whole)).cast("double").alias("q"),
    )
    # A side without rows has no distribution: its feature gets no metrics at all.
    return shares.where(F.col("p").isNotNull() & F.col("q").isNotNull())


def _ks(reference: DataFrame, current: DataFrame) -> DataFrame:
    """(feature, 'ks', value): the largest gap between the two CDFs at the bin boundaries."""
    non_null = [side.where(F.col("bucket") != NULL_BUCKET) for side in (reference, current)]
    shares = _bucket_shares(*non_null)
    running = (
        Window.partitionBy("feature")
        .orderBy("bucket")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    gaps = shares.select(
        "feature", F.abs(F.sum("p").over(running) - F.sum("q").over(running)).alias("gap")
    )
    return gaps.groupBy("feature").agg(F.lit("ks").alias("metric"), F.max("gap").alias("value"))


def _xlog2(x: Column, m: Column) -> Column:
    """x * log2(x / m), with 0 * log(0) = 0."""
    return F.when(x > 0, x * F.log2(x / m)).otherwise(F.lit(0.0))
