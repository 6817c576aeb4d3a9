"""The bench scores the churn demo and an all-float table: their features tables' schemas and
their scored tables' keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import types as T

from bench.usecase import churn_usecase, features_table_schema, floats_usecase, scores_layout
from scoring.core.errors import UseCaseError


def test_the_features_schema_starts_with_the_entity_and_date_and_ends_with_the_run_id():
    names = features_table_schema(churn_usecase()).fieldNames()
    assert names[:3] == ["customer_id", "as_of_date", "segment"]
    assert names[-1] == "feature_run_id"


def test_the_scored_tables_are_keyed_by_the_customer_as_a_string():
    layout = scores_layout(churn_usecase())
    assert layout.entity == (T.StructField("customer_id", T.StringType(), False),)
    assert layout.task == "binary"


def test_a_use_case_that_is_not_a_binary_classifier_is_refused(tmp_path: Path):
    demo = churn_usecase().folder
    text = (demo / "usecase.yaml").read_text(encoding="utf-8")
    for line in ("positive_class: 1", "threshold: 0.5"):
        text = text.replace(f"  {line}\n", "")
    (tmp_path / "usecase.yaml").write_text(
        text.replace("task: binary", "task: regression"), encoding="utf-8"
    )
    for name in ("features.py", "train.py", "contracts", "generator"):
        (tmp_path / name).symlink_to(demo / name)
    with pytest.raises(UseCaseError, match=r"model\.task.*binary"):
        churn_usecase(tmp_path)


def test_the_all_float_table_is_the_users_own_entity_date_and_twenty_doubles():
    schema = features_table_schema(floats_usecase())
    assert schema.fieldNames() == ["entity_id", "as_of_date", *(f"f{i:02d}" for i in range(1, 21))]
    assert {type(f.dataType) for f in schema.fields[2:]} == {T.DoubleType}
    assert scores_layout(floats_usecase()).keys == ("entity_id",)
