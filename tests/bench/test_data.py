"""The synthetic features tables have their use cases' schemas (tiny frames, built in the JVM)."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from bench.data import synthetic_features, synthetic_floats
from bench.usecase import churn_usecase, features_table_schema, floats_usecase

SCHEMA = features_table_schema(churn_usecase())


def test_synthetic_rows_have_the_features_schema_and_one_row_per_customer(spark):
    rows = synthetic_features(spark, SCHEMA, 10, 2)
    assert [(f.name, f.dataType) for f in rows.schema] == [(f.name, f.dataType) for f in SCHEMA]
    assert rows.rdd.getNumPartitions() == 2
    customers = sorted(r.customer_id for r in rows.select("customer_id").collect())
    assert customers == [f"C{i:010d}" for i in range(10)]


def test_a_column_the_generator_cannot_fill_is_named(spark):
    schema = T.StructType([*SCHEMA.fields, T.StructField("loyalty_tier", T.StringType())])
    with pytest.raises(ValueError, match="loyalty_tier"):
        synthetic_features(spark, schema, 10, 2)


FLOATS = features_table_schema(floats_usecase())


def test_float_rows_have_one_key_per_row_and_missing_values_as_null_or_nan(spark):
    rows = synthetic_floats(spark, FLOATS, 2000, 2)
    assert [(f.name, f.dataType) for f in rows.schema] == [(f.name, f.dataType) for f in FLOATS]
    counts = rows.agg(
        F.countDistinct("entity_id").alias("keys"),
        F.count(F.when(F.col("f01").isNull(), 1)).alias("f01_null"),
        F.count(F.when(F.isnan("f04"), 1)).alias("f04_nan"),
        F.count(F.when(F.col("f04").isNull(), 1)).alias("f04_null"),
        F.count(F.when(F.col("f06").isNull() | F.isnan("f06"), 1)).alias("f06_missing"),
    ).first()
    assert counts is not None
    assert counts["keys"] == 2000
    assert 40 <= counts["f01_null"] <= 200 and 40 <= counts["f04_nan"] <= 200  # about 5 %
    assert (counts["f04_null"], counts["f06_missing"]) == (0, 0)


def test_an_all_float_column_that_is_not_a_double_is_named(spark):
    schema = T.StructType([*FLOATS.fields, T.StructField("f21", T.StringType())])
    with pytest.raises(ValueError, match="f21"):
        synthetic_floats(spark, schema, 10, 2)
