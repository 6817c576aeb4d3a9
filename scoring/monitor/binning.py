"""Drift math: bucket every feature in Spark in one pass, then compare the tiny bucket counts.

Numeric features are cut at the reference's quantiles (right-closed bins, the first and
last open-ended, nulls and NaN in their own bucket); categorical features keep the
reference's categories, with `__unseen__` for values the reference never had and
`__null__` for nulls. `bucket_counts` turns any frame into (feature, bucket, n) in ONE
grouped pass over its rows (explode to long format, then groupBy): its cost is linear in
rows and its output is at most `n_bins + 2` rows per feature. Those counts are the only
thing collected; `compare` (in `scoring.monitor.metrics`) turns two of them into metrics.

Example:
    >>> spec = BinSpec(numeric={"age": (30.0, 50.0)}, categorical={"country": ("DE",)})
    >>> counts = collect_counts(bucket_counts(today_df, spec))  # doctest: +SKIP
    >>> counts["age"]  # doctest: +SKIP
    {'000': 12, '001': 40, '002': 3, '__null__': 1}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from operator import add

from pyspark.sql import Column, DataFrame
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
# feature -> bucket -> rows
Counts = Mapping[str, Mapping[str, int]]


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


def collect_counts(counts: DataFrame | Iterable[T.Row]) -> dict[str, dict[str, int]]:
    """The bucket counts as nested dicts (collects the tiny (feature, bucket, n) frame)."""
    rows = counts.collect() if isinstance(counts, DataFrame) else counts
    result: dict[str, dict[str, int]] = {}
    for row in rows:
        result.setdefault(row["feature"], {})[row["bucket"]] = int(row["n"])
    return result
