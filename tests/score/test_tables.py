from __future__ import annotations

from datetime import date, datetime

from scoring.core import io
from scoring.core.contracts import load_contract, spark_schema
from scoring.score.tables import (
    NEWER_SCORE,
    PARQUET_STRING_STATS_OFF,
    SCORES_STRING_COLUMNS,
    slice_predicate,
)
from tests.helpers import assert_frames_equal

D1, D2 = date(2026, 3, 1), date(2026, 3, 2)
T1, T2 = datetime(2026, 3, 3, 8), datetime(2026, 3, 3, 9)


def score_rows(spark, rows):
    schema = spark_schema(load_contract("scores"))
    full = [(c, d, s, 1, "m", "1", None, 0, "r", t) for c, d, s, t in rows]
    return spark.createDataFrame(full, schema)


def test_parquet_string_statistics_are_left_out_for_exactly_the_contracts_string_columns():
    contract = spark_schema(load_contract("scores"))
    strings = {f.name for f in contract.fields if f.dataType.typeName() == "string"}
    assert set(SCORES_STRING_COLUMNS) == strings
    assert len(PARQUET_STRING_STATS_OFF) == len(strings)
    assert PARQUET_STRING_STATS_OFF["parquet.column.statistics.enabled#customer_id"] == "false"


def test_slice_predicate_quotes_the_model_name():
    assert slice_predicate(D1, "it's", "2") == (
        "as_of_date = DATE'2026-03-01' AND model_name = 'it\\'s' AND model_version = '2'"
    )


def test_scores_current_keeps_the_newest_date_then_the_newest_run(spark, config):
    ref = config.table("scores_current")
    io.ensure_table(spark, ref, spark_schema(load_contract("scores")))
    target = [("A", D1, 0.1, T1), ("B", D2, 0.2, T1), ("C", D1, 0.3, T1), ("E", D1, None, T1)]
    io.write_delta(score_rows(spark, target), ref, "append", {"run_id": "r0"})
    source = [
        ("A", D2, 0.5, T1),  # newer date: replaces
        ("B", D1, 0.6, T2),  # older date, later run: kept out
        ("C", D1, 0.7, T2),  # same date, later run: replaces
        ("D", D1, 0.8, T1),  # new customer: inserted
    ]
    io.merge_newer(
        spark, score_rows(spark, source), ref, ("customer_id",), NEWER_SCORE, {"run_id": "r1"}
    )
    actual = io.read_table(spark, ref).select("customer_id", "as_of_date", "score")
    expected = spark.createDataFrame(
        [("A", D2, 0.5), ("B", D2, 0.2), ("C", D1, 0.7), ("D", D1, 0.8), ("E", D1, None)],
        "customer_id string, as_of_date date, score double",
    )
    assert_frames_equal(actual, expected)
    assert io.last_commit(spark, ref)["userMetadata"]["run_id"] == "r1"
