"""The bench scores the churn demo: its features table's schema and its scored tables' keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import types as T

from bench.usecase import churn_usecase, features_table_schema, scores_layout
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
