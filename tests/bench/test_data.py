"""The synthetic features table has the churn demo's schema (a tiny frame, built in the JVM)."""

from __future__ import annotations

import pytest
from pyspark.sql import types as T

from bench.data import synthetic_features
from bench.usecase import churn_usecase, features_table_schema

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
