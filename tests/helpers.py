"""Test helpers used everywhere, so every DataFrame comparison has the same settings."""

from __future__ import annotations

from chispa import assert_df_equality
from prometheus_client.parser import text_string_to_metric_families
from pyspark.sql import DataFrame


def assert_frames_equal(actual: DataFrame, expected: DataFrame) -> None:
    """chispa equality with the project's one setting: row order, nullability and column
    metadata (a table's column comments) ignored; column order and values compared."""
    assert_df_equality(
        actual,
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
        ignore_column_order=False,
        ignore_metadata=True,
    )


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition text, read with prometheus_client's parser."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    """A sample's labels as `samples` keys them."""
    return tuple(sorted(values.items()))
