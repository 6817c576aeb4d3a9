from __future__ import annotations

from datetime import date, datetime

from pyspark.sql import types as T

from scoring.core import io
from scoring.core.tables import TableRef
from scoring.score.tables import NEWER_SCORE, Lineage, ScoresLayout, slice_predicate, with_lineage
from tests.helpers import assert_frames_equal

D1, D2 = date(2026, 3, 1), date(2026, 3, 2)
T1, T2 = datetime(2026, 3, 3, 8), datetime(2026, 3, 3, 9)
CUSTOMER = ScoresLayout((T.StructField("customer_id", T.StringType()),), "binary")
POLICY = ScoresLayout(
    (T.StructField("insurer_id", T.StringType()), T.StructField("policy_no", T.LongType())),
    "multiclass",
)


def score_rows(spark, rows):
    full = [(c, d, s, 1, "m", "1", None, 0, "r", t) for c, d, s, t in rows]
    return spark.createDataFrame(full, CUSTOMER.schema)


def test_the_scored_tables_are_entity_date_outputs_then_lineage():
    assert [f.simpleString() for f in POLICY.schema.fields] == [
        "insurer_id:string",
        "policy_no:bigint",
        "as_of_date:date",
        "label:string",
        "score:double",
        "probabilities:map<string,double>",
        "model_name:string",
        "model_version:string",
        "model_run_id:string",
        "feature_table_version:bigint",
        "run_id:string",
        "scored_at:timestamp",
    ]
    assert [f.name for f in CUSTOMER.schema.fields][:4] == [
        "customer_id",
        "as_of_date",
        "score",
        "label",
    ]


def test_parquet_string_statistics_are_left_out_for_exactly_the_string_columns():
    assert set(POLICY.parquet_string_stats_off) == {
        f"parquet.column.statistics.enabled#{name}"
        for name in (
            "insurer_id",
            "label",
            "model_name",
            "model_version",
            "model_run_id",
            "run_id",
        )
    }
    assert set(POLICY.parquet_string_stats_off.values()) == {"false"}


def test_delta_statistics_cover_the_entity_key_and_the_model_columns():
    assert POLICY.scores_properties["delta.dataSkippingStatsColumns"] == (
        "insurer_id,policy_no,model_name,model_version"
    )
    assert POLICY.current_properties == {
        "delta.enableChangeDataFeed": "true",
        "delta.dataSkippingStatsColumns": "insurer_id,policy_no",
    }
    odd = ScoresLayout((T.StructField("client id", T.StringType()),), "regression")
    assert odd.current_properties["delta.dataSkippingStatsColumns"] == "`client id`"


def test_lineage_columns_are_stamped_on_every_row_in_contract_order(spark):
    scored = spark.createDataFrame(
        [("INS01", 7, D1, "high", 0.7, {"high": 0.7, "low": 0.3})],
        "insurer_id string, policy_no bigint, as_of_date date, label string, score double, "
        "probabilities map<string,double>",
    )
    lineage = Lineage("m", "3", None, 12, "run-1", T1)
    row = with_lineage(scored, lineage, POLICY).first()
    assert row is not None
    assert row.asDict() == {
        "insurer_id": "INS01",
        "policy_no": 7,
        "as_of_date": D1,
        "label": "high",
        "score": 0.7,
        "probabilities": {"high": 0.7, "low": 0.3},
        "model_name": "m",
        "model_version": "3",
        "model_run_id": None,
        "feature_table_version": 12,
        "run_id": "run-1",
        "scored_at": T1,
    }


def test_slice_predicate_escapes_the_model_name():
    assert slice_predicate(D1, "it's", "2") == (
        "`as_of_date` = DATE'2026-03-01' AND `model_name` = 'it\\'s' AND `model_version` = '2'"
    )


def test_a_model_name_with_sql_in_it_replaces_no_other_models_slice(spark, tmp_path):
    ref = TableRef("scores", path=str(tmp_path / "scores"))
    io.ensure_table(spark, ref, io.TableSpec(CUSTOMER.schema, ("as_of_date",)))
    rows = spark.createDataFrame(
        [("A", D1, 0.1, 1, "champion", "1", None, 0, "r", T1)], CUSTOMER.schema
    )
    io.write_delta(rows, ref, "append", {"run_id": "r0"})
    evil = "evil' OR 'a'='a"
    empty = rows.where("false")
    io.write_delta(empty, ref, "overwrite", {"run_id": "r1"}, slice_predicate(D1, evil, "1"))
    assert io.read_table(spark, ref).count() == 1


def test_scores_current_keeps_the_newest_date_then_the_newest_run(spark, config, tmp_path):
    ref = TableRef("scores_current", path=str(tmp_path / "current"))
    io.ensure_table(spark, ref, io.TableSpec(CUSTOMER.schema))
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
