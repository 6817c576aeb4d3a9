"""Test helpers used everywhere, so every DataFrame comparison has the same settings."""

from __future__ import annotations

from chispa import assert_df_equality
from pyspark.sql import DataFrame


def assert_frames_equal(actual: DataFrame, expected: DataFrame) -> None:
    """chispa equality with the project's one setting: row order and nullability ignored."""
    assert_df_equality(
        actual, expected, ignore_row_order=True, ignore_nullable=True, ignore_column_order=False
    )
