"""The features tables the bench scores (`--tables`): the churn demo's mixed types and a plain
all-float table.

`demo`: the churn demo's features (strings, ints and doubles, some null; `bench.data.
synthetic_features`), scored by the demo's pipeline (imputer + one-hot + trees) and a linear
one. `float`: 20 float64 features, an entity key and the as-of date, some missing (`bench.
data.synthetic_floats`), the table many users bring, scored by a bare
HistGradientBoostingClassifier and a scaled logistic regression (`bench.models`). Each table
is its own use case (`bench.usecase`), so its entity key, scored tables and registered models
are its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from bench import data
from bench.models import DEMO, FLOAT
from bench.usecase import churn_usecase, features_table_schema, floats_usecase
from scoring.usecase import UseCase

TABLES = (DEMO, FLOAT)
#: (spark, schema, rows, files, seed) -> the synthetic rows of one as-of date
Generator = Callable[[SparkSession, T.StructType, int, int, int], DataFrame]


@dataclass(frozen=True)
class BenchTable:
    """One features table of the bench: its name, use case, schema and row generator."""

    name: str
    usecase: UseCase
    generate: Generator

    @property
    def schema(self) -> T.StructType:
        """The features table's schema (`bench.usecase.features_table_schema`)."""
        return features_table_schema(self.usecase)


def bench_table(name: str) -> BenchTable:
    """The bench table called `name` (one of `TABLES`).

    Raises:
        ValueError: `name` is not one of `TABLES`.
    """
    if name == DEMO:
        return BenchTable(DEMO, churn_usecase(), data.synthetic_features)
    if name == FLOAT:
        return BenchTable(FLOAT, floats_usecase(), data.synthetic_floats)
    raise ValueError(f"bench: unknown table '{name}' (choose from {', '.join(TABLES)})")
