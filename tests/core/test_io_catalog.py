"""Tables given as catalog names (`schema.table`) go through the same io functions as paths.

Locally the catalog is Spark's in-memory catalog with Delta's catalog extension; managed
tables are stored under the session's warehouse folder. On Databricks the same calls reach
Unity Catalog (`catalog.schema.table`) and on EMR the Glue Data Catalog (`database.table`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date

import pytest
from pyspark.sql import types as T

from scoring.core import io
from scoring.core.tables import TableRef
from tests.helpers import assert_frames_equal

SCHEMA = T.StructType(
    [
        T.StructField("customer_id", T.StringType(), False),
        T.StructField("as_of_date", T.DateType(), False),
        T.StructField("score", T.DoubleType(), True),
    ]
)
D1, D2 = date(2026, 3, 1), date(2026, 3, 2)


def new_schema(spark) -> str:
    """A fresh schema, so tests never see each other's tables."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    spark.sql(f"CREATE SCHEMA {schema}")
    return schema


@pytest.fixture
def ref(spark) -> Iterator[TableRef]:
    """A catalog table name that does not exist yet."""
    schema = new_schema(spark)
    yield TableRef("scores", catalog_name=f"{schema}.scores")
    spark.sql(f"DROP SCHEMA {schema} CASCADE")


FIRST = [("a", D1, 0.5), ("b", D1, None)]
SECOND = [("c", D2, 0.7)]


@pytest.fixture(scope="module")
def two_versions(spark) -> Iterator[TableRef]:
    """A catalog table written twice by name: v0 overwrite (run r1), v1 append (run r2).

    Shared by the read-only tests below: Delta writes are the slow part on 2 cores.
    """
    schema = new_schema(spark)
    table = TableRef("scores", catalog_name=f"{schema}.scores")
    io.write_delta(spark.createDataFrame(FIRST, SCHEMA), table, "overwrite", {"run_id": "r1"})
    io.write_delta(spark.createDataFrame(SECOND, SCHEMA), table, "append", {"run_id": "r2"})
    yield table
    spark.sql(f"DROP SCHEMA {schema} CASCADE")


def test_catalog_table_does_not_exist_before_the_first_write(spark, ref):
    assert io.table_exists(spark, ref) is False
    assert io.current_version(spark, ref) is None


def test_catalog_table_written_by_name_exists_at_its_latest_version(spark, two_versions):
    assert io.table_exists(spark, two_versions) is True
    assert io.current_version(spark, two_versions) == 1


def test_read_a_catalog_table_by_name_gives_every_version_s_rows(spark, two_versions):
    expected = spark.createDataFrame(FIRST + SECOND, SCHEMA)
    assert_frames_equal(io.read_table(spark, two_versions), expected)


def test_time_travel_reads_an_old_version_of_a_catalog_table(spark, two_versions):
    expected = spark.createDataFrame(FIRST, SCHEMA)
    assert_frames_equal(io.read_table(spark, two_versions, version=0), expected)


def test_last_commit_of_a_catalog_table_carries_the_run_metadata(spark, two_versions):
    commit = io.last_commit(spark, two_versions)
    assert (commit["version"], commit["operation"]) == (1, "WRITE")
    assert commit["userMetadata"]["run_id"] == "r2"
    assert commit["operationMetrics"]["numOutputRows"] == "1"


def test_replace_where_rewrites_only_that_date_of_a_catalog_table(spark, ref):
    rows = [("a", D1, 0.5), ("b", D2, 0.7)]
    io.write_delta(spark.createDataFrame(rows, SCHEMA), ref, "overwrite", {"run_id": "r1"})
    again = spark.createDataFrame([("c", D2, 0.9)], SCHEMA)
    io.write_delta(
        again, ref, "overwrite", {"run_id": "r2"}, replace_where="as_of_date = '2026-03-02'"
    )
    expected = spark.createDataFrame([("a", D1, 0.5), ("c", D2, 0.9)], SCHEMA)
    assert_frames_equal(io.read_table(spark, ref), expected)


def test_ensure_table_creates_an_empty_catalog_table_with_schema_and_properties(spark, ref):
    io.ensure_table(spark, ref, io.TableSpec(SCHEMA, ("as_of_date",)))
    io.ensure_table(spark, ref, io.TableSpec(SCHEMA, ("as_of_date",)))  # a second call is a no-op
    assert io.current_version(spark, ref) == 0
    assert io.read_table(spark, ref).schema.fieldNames() == SCHEMA.fieldNames()
    props = {
        r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {ref.catalog_name}").collect()
    }
    assert props["delta.enableDeletionVectors"] == "false"


def test_merge_into_a_catalog_table_through_its_delta_handle(spark, ref):
    io.write_delta(
        spark.createDataFrame([("a", D1, 0.5)], SCHEMA), ref, "overwrite", {"run_id": "r1"}
    )
    updates = spark.createDataFrame([("a", D1, 0.6), ("b", D1, 0.1)], SCHEMA)
    with io.commit_metadata(spark, {"run_id": "r2"}):
        (
            io.delta_table(spark, ref)
            .alias("t")
            .merge(updates.alias("u"), "t.customer_id = u.customer_id")
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
            .execute()
        )
    assert_frames_equal(io.read_table(spark, ref), updates)
    assert io.last_commit(spark, ref)["userMetadata"]["run_id"] == "r2"


def test_catalog_names_are_back_quoted_part_by_part_for_sql():
    assert io.quoted("main.scoring.scores") == "`main`.`scoring`.`scores`"
    assert io.quoted("risk.order") == "`risk`.`order`"
