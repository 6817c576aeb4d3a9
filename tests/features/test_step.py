"""The features step on the tiny use case: contract checks fail the step and write nothing."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from scoring.core import io
from scoring.core.config import IngestSettings
from scoring.core.errors import DataError, UseCaseCodeError
from scoring.features.step import run_features
from scoring.ingest.step import run_ingest
from scoring.runs.steps import usecase_tables
from scoring.usecase import load_usecase
from tests.conftest import make_config
from tests.usecase.factory import FEATURES_PY, usecase_doc, write_usecase, write_visits

pytestmark = pytest.mark.slow
D = date(2026, 3, 1)
VISITS = [
    "v1,s1,2026-03-01T08:00:00Z,10.5",
    "v2,s1,2026-03-01T09:00:00Z,",
    "v3,s2,2026-02-27T09:00:00Z,3",
]


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """The tiny use case's visits of D ingested, and a first features build of D."""
    root = tmp_path_factory.mktemp("tiny")
    config = make_config(root / "lake")
    usecase = load_usecase(write_usecase(root / "uc"))
    write_visits(Path(config.raw_root("tiny")), D.isoformat(), VISITS)
    tables = usecase_tables(config, usecase)
    run_ingest(
        spark,
        tables,
        usecase.sources,
        raw_root=config.raw_root("tiny"),
        settings=IngestSettings(0.5, "error", 24.0),
        run_date=D,
        run_id="i1",
    )
    run_features(spark, tables, usecase, D, "f1")
    return config, root, tables


def variant(root, name: str, old: str, new: str):
    """The tiny use case with `old` replaced by `new` in its feature function."""
    assert old in FEATURES_PY
    text = FEATURES_PY.replace(old, new)
    return load_usecase(write_usecase(root / name, usecase_doc(), {"features.py": text}))


def test_features_of_the_tiny_use_case_follow_its_function(spark, lake):
    _, _, tables = lake
    rows = {r["shop_id"]: r for r in io.read_table(spark, tables["features"]).collect()}
    assert {k: (r["visits"], r["spend"], r["kind"]) for k, r in rows.items()} == {
        "s1": (2, 10.5, "a"),
        "s2": (1, 3.0, "a"),
    }
    assert {r["feature_run_id"] for r in rows.values()} == {"f1"}


def rebuild_fails(spark, lake, usecase, error, match):
    _, _, tables = lake
    before = io.current_version(spark, tables["features"])
    with pytest.raises(error, match=match):
        run_features(spark, tables, usecase, D, "f-bad")
    assert io.current_version(spark, tables["features"]) == before


def test_a_feature_function_that_raises_fails_in_one_line_and_writes_nothing(spark, lake):
    usecase = variant(
        lake[1], "raises", "    visits = ", '    raise ValueError("no spend")\n    visits = '
    )
    rebuild_fails(
        spark, lake, usecase, UseCaseCodeError, r"features\.py:build raised ValueError: no spend"
    )


def test_a_duplicate_entity_key_fails_naming_an_example_and_writes_nothing(spark, lake):
    usecase = variant(lake[1], "dups", 'groupBy("shop_id")', 'groupBy("shop_id", "visit_id")')
    rebuild_fails(
        spark, lake, usecase, DataError, r"entity key \['shop_id'\] is not unique: \[\('s1',\)\]"
    )


def test_a_missing_contract_column_fails_naming_it_and_writes_nothing(spark, lake):
    usecase = variant(lake[1], "lacks", '        F.lit("a").alias("kind"),\n', "")
    rebuild_fails(spark, lake, usecase, DataError, r"column 'kind' of .*features\.yaml is missing")


def test_a_value_the_contract_does_not_allow_fails_naming_rule_and_column(spark, lake):
    usecase = variant(lake[1], "bad_kind", 'F.lit("a")', 'F.lit("z")')
    rebuild_fails(
        spark, lake, usecase, DataError, r"2 of 2 rows break not_allowed on column 'kind'"
    )


def test_a_null_in_a_required_column_fails_naming_it(spark, lake):
    usecase = variant(lake[1], "null_kind", 'F.lit("a")', 'F.lit(None).cast("string")')
    rebuild_fails(spark, lake, usecase, DataError, r"break missing on column 'kind'")
