"""The result of feature code held to the contract: columns, types, the engine's columns."""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import types as T

from scoring.core.contracts import read_contract
from scoring.core.errors import DataError, UseCaseCodeError
from scoring.features.build import (
    compatible,
    conform_features,
    parameter_conf,
    run_python,
    run_sql,
    source_views,
)
from tests.helpers import assert_frames_equal

D = date(2026, 3, 1)


@pytest.fixture
def contract(tmp_path):
    path = tmp_path / "features.yaml"
    path.write_text(
        "name: features\nkind: table\ndescription: d\ncolumns:\n"
        "  - {name: n, type: int, nullable: false, description: n}\n"
        "  - {name: shop, type: string, nullable: false, description: s}\n"
        "  - {name: share, type: double, nullable: true, description: s}\n"
    )
    return read_contract(path)


def test_rows_get_entity_then_as_of_date_then_the_contract_then_the_run_id(spark, contract):
    built = spark.createDataFrame(
        [(2, "s1", 1, "ignored")], "n bigint, shop string, share int, extra string"
    )
    actual = conform_features(built, contract, ("shop",), D, "run-1")
    expected = spark.createDataFrame(
        [("s1", D, 2, 1.0, "run-1")],
        "shop string, as_of_date date, n int, share double, feature_run_id string",
    )
    assert_frames_equal(actual, expected)
    assert actual.columns == ["shop", "as_of_date", "n", "share", "feature_run_id"]


def test_a_missing_contract_column_is_named_with_the_contract(spark, contract):
    built = spark.createDataFrame([(2, "s1")], "n int, shop string")
    with pytest.raises(DataError, match=r"column 'share' of .*features\.yaml is missing"):
        conform_features(built, contract, ("shop",), D, "run-1")


def test_a_mistyped_column_is_named_with_found_and_expected_types(spark, contract):
    built = spark.createDataFrame([("2", "s1", 0.5)], "n string, shop string, share double")
    with pytest.raises(DataError, match=r"column 'n' has type string, .*features\.yaml says int"):
        conform_features(built, contract, ("shop",), D, "run-1")


@pytest.mark.parametrize(
    ("found", "expected", "ok"),
    [
        (T.LongType(), T.IntegerType(), True),
        (T.IntegerType(), T.DoubleType(), True),
        (T.DecimalType(12, 2), T.DoubleType(), True),
        (T.NullType(), T.StringType(), True),
        (T.DoubleType(), T.IntegerType(), False),
        (T.StringType(), T.DoubleType(), False),
        (T.TimestampType(), T.DateType(), False),
        (T.IntegerType(), T.StringType(), False),
    ],
)
def test_only_conversions_without_loss_of_meaning_are_compatible(found, expected, ok):
    assert compatible(found, expected) is ok


def test_a_feature_function_that_raises_is_named_in_one_line(spark):
    def broken(sources, as_of):
        raise KeyError("customers")

    with pytest.raises(UseCaseCodeError, match=r"^f\.py:build raised KeyError: 'customers'$"):
        run_python(broken, "f.py:build", {}, D)


def test_a_feature_function_that_returns_no_frame_is_named(spark):
    with pytest.raises(UseCaseCodeError, match=r"f\.py:build returned dict, not a Spark DataFrame"):
        run_python(lambda sources, as_of: {}, "f.py:build", {}, D)


def test_sql_features_see_each_source_as_a_view_and_as_of_as_a_date(spark, tmp_path):
    query = tmp_path / "f.sql"
    query.write_text("SELECT shop, count(*) AS n FROM visits WHERE day <= :as_of GROUP BY shop")
    visits = spark.createDataFrame(
        [("s1", date(2026, 2, 28)), ("s1", D), ("s1", date(2026, 3, 2))], "shop string, day date"
    )
    with source_views({"visits": visits}):
        rows = run_sql(spark, query, D).collect()
    assert [(r["shop"], r["n"]) for r in rows] == [("s1", 2)]
    assert not spark.catalog.tableExists("visits")


def test_sql_features_leave_the_sessions_parameter_setting_as_it_was(spark, tmp_path):
    query = tmp_path / "f.sql"
    query.write_text("SELECT shop FROM visits WHERE day <= :as_of")
    visits = spark.createDataFrame([("s1", D)], "shop string, day date")
    with source_views({"visits": visits}):
        run_sql(spark, query, D).collect()
    key = "spark.sql.legacy.parameterSubstitution.constantsOnly"
    assert spark.conf.get(key, None) in (None, "false")


def test_named_parameters_use_the_legacy_substitution_from_spark_4_1():
    legacy = {"spark.sql.legacy.parameterSubstitution.constantsOnly": "true"}
    assert parameter_conf("4.0.1") == {}
    assert parameter_conf("4.1.0") == legacy
    assert parameter_conf("4.2.0") == legacy
    assert parameter_conf("5.0.0-SNAPSHOT") == legacy


def test_sql_that_does_not_resolve_names_the_file(spark, tmp_path):
    query = tmp_path / "f.sql"
    query.write_text("SELECT nope FROM visits")
    visits = spark.createDataFrame([("s1",)], "shop string")
    with source_views({"visits": visits}), pytest.raises(UseCaseCodeError, match=r"f\.sql: "):
        run_sql(spark, query, D)
