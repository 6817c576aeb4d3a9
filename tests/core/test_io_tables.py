"""Tables BI tools read well: comments from the contracts, properties kept, timestamps as
INT64 microseconds, and a reader that is not Spark (delta-rs) sees all of it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow.parquet as pq
from deltalake import DeltaTable as RustDeltaTable
from pyspark.sql import types as T

from scoring.core import io
from scoring.core.contracts import load_contract
from scoring.core.tables import TableRef

SCHEMA = T.StructType(
    [
        T.StructField("id", T.StringType(), False),
        T.StructField("day", T.DateType(), False),
        T.StructField("at", T.TimestampType(), True),
    ]
)
SPEC = io.TableSpec(
    SCHEMA,
    ("day",),
    {"delta.enableChangeDataFeed": "true"},
    "Things that happened.",
    {"id": "The thing.", "at": "When it happened (UTC)."},
)


def make(spark, tmp_path, spec=SPEC) -> TableRef:
    ref = TableRef("things", path=str(tmp_path / "things"))
    io.ensure_table(spark, ref, spec)
    rows = spark.createDataFrame(
        [("a", date(2026, 3, 1), datetime(2026, 3, 1, 8, 30, 0, 123456, tzinfo=UTC))], SCHEMA
    )
    io.write_delta(rows, ref, "append", {"run_id": "t"})
    return ref


def test_describe_table_shows_the_column_comments_and_the_table_comment(spark, tmp_path):
    ref = make(spark, tmp_path)
    described = {
        r["col_name"]: r["comment"]
        for r in spark.sql(f"DESCRIBE TABLE {io.sql_name(ref)}").collect()
    }
    assert (described["id"], described["at"], described["day"]) == (
        "The thing.",
        "When it happened (UTC).",
        None,
    )
    detail = io.delta_table(spark, ref).detail().first()
    assert detail is not None and detail["description"] == "Things that happened."


def test_delta_rs_reads_the_comments_the_description_and_the_rows(spark, tmp_path):
    ref = make(spark, tmp_path)
    table = RustDeltaTable(str(ref.path))
    assert table.metadata().description == "Things that happened."
    fields = {f.name: f.metadata for f in table.schema().fields}
    assert fields["id"]["comment"] == "The thing."
    rows = table.to_pyarrow_table().to_pylist()
    assert rows == [
        {
            "id": "a",
            "day": date(2026, 3, 1),
            "at": datetime(2026, 3, 1, 8, 30, 0, 123456, tzinfo=UTC),
        }
    ]


def test_timestamps_are_written_as_int64_microseconds_not_int96(spark, tmp_path):
    make(spark, tmp_path)
    (path,) = [p for p in (tmp_path / "things").rglob("*.parquet")]
    column = pq.ParquetFile(path).schema.column(1)  # "at" (day is a partition folder)
    assert (column.name, column.physical_type) == ("at", "INT64")
    assert "timeUnit=microseconds" in str(column.logical_type)


def properties(spark, ref) -> dict[str, str]:
    detail = io.delta_table(spark, ref).detail().first()
    assert detail is not None
    return dict(detail["properties"])


def test_a_declared_property_is_set_on_a_table_that_exists_without_it(spark, tmp_path):
    ref = make(spark, tmp_path, io.TableSpec(SCHEMA, ("day",)))
    assert "delta.enableChangeDataFeed" not in properties(spark, ref)
    io.ensure_table(spark, ref, SPEC)
    declared = properties(spark, ref)
    assert declared["delta.enableChangeDataFeed"] == "true"
    assert declared["delta.enableDeletionVectors"] == "false"
    version = io.current_version(spark, ref)
    io.ensure_table(spark, ref, SPEC)  # nothing left to set: no commit
    assert io.current_version(spark, ref) == version


def test_every_engine_contract_gives_a_spec_with_its_description_and_comments():
    for name in ("quarantine", "drift_metrics", "runs"):
        spec = io.contract_spec(load_contract(name))
        assert spec.description and set(spec.comments) == {f.name for f in spec.schema.fields}


def test_the_retention_a_table_ref_carries_is_set_at_creation_and_on_change(spark, tmp_path):
    days = {
        "delta.logRetentionDuration": "interval 45 days",
        "delta.deletedFileRetentionDuration": "interval 31 days",
    }
    ref = TableRef("things", path=str(tmp_path / "kept"), properties=tuple(days.items()))
    io.ensure_table(spark, ref, SPEC)
    created = properties(spark, ref)
    assert {k: created[k] for k in days} == days
    assert created["delta.enableChangeDataFeed"] == "true"  # the spec's own still there
    longer = {**days, "delta.logRetentionDuration": "interval 400 days"}
    io.ensure_table(spark, TableRef("things", ref.path, properties=tuple(longer.items())), SPEC)
    assert properties(spark, ref)["delta.logRetentionDuration"] == "interval 400 days"
