"""The synthetic features tables: N rows of the churn demo's features table, or of the plain
all-float table (bench/floats), made in the JVM.

Every column is a vectorised Spark expression over `spark.range(N)` (no Python rows), so
building 16M rows costs seconds. Distributions are plausible, not realistic: the benchmark
measures throughput, and the models are trained on this same table. The columns are those of
examples/churn/contracts/features.yaml (or bench/floats/contracts/features.yaml) plus the
engine's (`bench.usecase.features_table_schema`).
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from scoring.core import io
from scoring.core.tables import TableRef
from scoring.usecase import AS_OF_DATE

AS_OF = date(2026, 3, 1)
SEGMENTS = ("consumer", "smb", "enterprise")
COUNTRIES = ("FR", "DE", "ES", "IT", "NL", "BE", "PT", "PL")


def _uniform(seed: int) -> Column:
    """A uniform [0, 1) column with its own seed, so columns are independent."""
    return F.rand(seed)


def _pick(values: tuple[str, ...], seed: int) -> Column:
    """One of `values`, uniformly."""
    index = (_uniform(seed) * len(values)).cast("int")
    return F.element_at(F.array(*(F.lit(v) for v in values)), index + 1)


def _when_active(value: Column) -> Column:
    """`value` for customers with purchases, null otherwise (the contract's null policy)."""
    return F.when(F.col("_active"), value)


def _share(seed: int) -> Column:
    return _when_active(F.round(_uniform(seed), 3))


def synthetic_features(
    spark: SparkSession, schema: T.StructType, rows: int, files: int, seed: int = 7
) -> DataFrame:
    """`rows` feature rows of the date AS_OF in `files` partitions, in `schema`.

    The rows depend on `seed` and the partitioning (Spark's rand is seeded per partition).

    Raises:
        ValueError: `schema` has a column this generator makes no values for.
    """
    count_30 = F.when(F.col("_active"), (_uniform(seed + 5) * 12).cast("int")).otherwise(0)
    amount_30 = F.round(count_30 * (_uniform(seed + 6) * 80 + 5), 2)
    columns = {
        "customer_id": F.format_string("C%010d", F.col("id")),
        "as_of_date": F.lit(AS_OF),
        "segment": _pick(SEGMENTS, seed + 1),
        "country": F.when(_uniform(seed + 2) < 0.05, F.lit(None)).otherwise(
            _pick(COUNTRIES, seed + 3)
        ),
        "tenure_days": (_uniform(seed + 4) * 3650).cast("int"),
        "days_since_last_txn": _when_active((_uniform(seed + 7) * 90).cast("int")),
        "days_since_first_txn": _when_active((_uniform(seed + 8) * 900 + 90).cast("int")),
        "txn_count_7d": F.least(count_30, (_uniform(seed + 9) * 4).cast("int")),
        "txn_count_30d": count_30,
        "txn_count_90d": count_30 * 3 + (_uniform(seed + 10) * 5).cast("int"),
        "txn_count_365d": count_30 * 12 + (_uniform(seed + 11) * 20).cast("int"),
        "amount_sum_7d": F.round(amount_30 * _uniform(seed + 12) * 0.3, 2),
        "amount_sum_30d": amount_30,
        "amount_sum_90d": F.round(amount_30 * (2.5 + _uniform(seed + 13)), 2),
        "amount_sum_365d": F.round(amount_30 * (10 + _uniform(seed + 14) * 4), 2),
        "amount_avg_30d": _when_active(F.round(_uniform(seed + 15) * 80 + 5, 2)),
        "amount_avg_365d": _when_active(F.round(_uniform(seed + 16) * 80 + 5, 2)),
        "amount_max_90d": _when_active(F.round(_uniform(seed + 17) * 300 + 5, 2)),
        "active_days_30d": F.least(count_30, F.lit(30)),
        "active_days_90d": F.least(count_30 * 3, F.lit(90)),
        "count_trend_30_90": _when_active(F.round(_uniform(seed + 18) * 2, 3)),
        "amount_trend_30_90": _when_active(F.round(_uniform(seed + 19) * 2, 3)),
        "category_count_90d": (_uniform(seed + 20) * 8).cast("int"),
        "top_category_share_90d": _share(seed + 21),
        "web_share_90d": _share(seed + 22),
        "app_share_90d": _share(seed + 23),
        "store_share_90d": _share(seed + 24),
        "refund_count_90d": (_uniform(seed + 25) * 3).cast("int"),
        "feature_run_id": F.lit("bench-features"),
    }
    missing = [f.name for f in schema.fields if f.name not in columns]
    if missing:
        raise ValueError(f"bench.data: no synthetic values for features column '{missing[0]}'")
    base = spark.range(0, rows, 1, files).withColumn("_active", _uniform(seed) < 0.8)
    return base.select(*(columns[f.name].cast(f.dataType).alias(f.name) for f in schema.fields))


#: All-float features missing in about 5 % of rows: as null (Spark's missing value) ...
NULL_FLOATS = ("f01", "f02", "f03")
#: ... or as NaN (what a pandas / numpy writer leaves); the model sees NaN for both.
NAN_FLOATS = ("f04", "f05")
MISSING_SHARE = 0.05


def synthetic_floats(
    spark: SparkSession, schema: T.StructType, rows: int, files: int, seed: int = 7
) -> DataFrame:
    """`rows` rows of the all-float table of the date AS_OF in `files` partitions, in `schema`.

    The entity key is `schema`'s first column (`E` + ten digits, unique per row); every other
    double column is a standard normal with its own seed and scale (some far from 1, as raw
    features are), missing in about 5 % of the rows for `NULL_FLOATS` and `NAN_FLOATS`.

    Raises:
        ValueError: a column of `schema` besides the key and `as_of_date` is not a double.
    """
    key = schema.fields[0].name
    columns: dict[str, Column] = {key: F.format_string("E%010d", F.col("id"))}
    columns[AS_OF_DATE] = F.lit(AS_OF)
    for index, field in enumerate(schema.fields[1:]):
        if field.name in columns:
            continue
        if not isinstance(field.dataType, T.DoubleType):
            raise ValueError(
                f"bench.data: all-float column '{field.name}' is {field.dataType.simpleString()}"
            )
        value = F.randn(seed + index) * F.lit(10.0 ** (index % 4 - 1))
        missing = _uniform(seed + 100 + index) < MISSING_SHARE
        if field.name in NULL_FLOATS:
            value = F.when(~missing, value)
        elif field.name in NAN_FLOATS:
            value = F.when(missing, F.lit(float("nan"))).otherwise(value)
        columns[field.name] = value
    base = spark.range(0, rows, 1, files)
    return base.select(*(columns[f.name].cast(f.dataType).alias(f.name) for f in schema.fields))


def write_features(
    spark: SparkSession, frame: DataFrame, schema: T.StructType, ref: TableRef
) -> None:
    """Write `frame` as a new features table of `schema`, partitioned by as_of_date.

    One file per partition of `frame`: the table's shape is the frame's.
    """
    io.ensure_table(spark, ref, io.TableSpec(schema, (AS_OF_DATE,)))
    io.write_delta(frame, ref, "append", {"run_id": "bench-features"})
