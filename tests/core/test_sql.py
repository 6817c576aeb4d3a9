from __future__ import annotations

from datetime import date, datetime

import pytest

from scoring.core.sql import any_of, identifier, join_condition, literal, predicate


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("churn", "'churn'"),
        ("evil' OR 'a'='a", "'evil\\' OR \\'a\\'=\\'a'"),
        ("back\\slash", "'back\\\\slash'"),
        (date(2026, 3, 1), "DATE'2026-03-01'"),
        (datetime(2026, 3, 1, 8, 30), "TIMESTAMP'2026-03-01 08:30:00'"),
        (7, "7"),
        (True, "TRUE"),
        (None, "NULL"),
    ],
)
def test_every_value_becomes_one_sql_literal(value, text):
    assert literal(value) == text


def test_a_value_without_a_literal_form_is_refused():
    with pytest.raises(TypeError, match="no SQL literal for list"):
        literal([1])


def test_identifiers_are_back_quoted_with_back_quotes_doubled():
    assert identifier("a`b") == "`a``b`"


def test_predicate_and_join_condition_quote_every_column(spark):
    assert predicate(("date", date(2026, 3, 1)), ("model_name", "m")) == (
        "`date` = DATE'2026-03-01' AND `model_name` = 'm'"
    )
    assert join_condition(("insurer_id", "policy no")) == (
        "t.`insurer_id` = s.`insurer_id` AND t.`policy no` = s.`policy no`"
    )


def test_spark_reads_the_escaped_literal_back_as_the_original_text(spark):
    evil = "evil' OR 'a'='a \\ end"
    assert spark.sql(f"SELECT {literal(evil)} AS v").first()["v"] == evil


def test_any_of_brackets_each_predicate_so_its_ands_stay_inside(spark):
    one, two = predicate(("m", "a"), ("v", "1")), predicate(("m", "b"), ("v", "2"))
    assert any_of([one]) == one and any_of([]) == "FALSE"
    assert any_of([one, two]) == f"({one}) OR ({two})"
    rows = spark.createDataFrame(
        [("a", "1"), ("a", "2"), ("b", "2"), ("b", "1")], "m string, v string"
    )
    kept = rows.where(any_of([one, two])).collect()
    assert sorted((r.m, r.v) for r in kept) == [("a", "1"), ("b", "2")]
