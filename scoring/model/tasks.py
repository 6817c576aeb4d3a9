"""What a model of each task returns, and how those outputs become Spark and Arrow columns.

- binary: `score` (probability of the positive class) and `label` (1 when score >=
  the use case's threshold, else 0);
- multiclass: `label` (the most probable class, as text), `score` (its probability) and
  `probabilities` (map class -> probability);
- regression: `prediction`.

The columns and their types are the contracts `schemas/score_outputs/<task>.yaml`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from pyspark.sql import types as T

from scoring.core.contracts import Contract, load_contract, spark_schema

BINARY, MULTICLASS, REGRESSION = "binary", "multiclass", "regression"
#: The outputs the monitor compares with the baseline, per task (besides the inputs).
MONITORED_OUTPUTS: Mapping[str, tuple[str, ...]] = {
    BINARY: ("score",),
    MULTICLASS: ("label", "score"),
    REGRESSION: ("prediction",),
}


@dataclass(frozen=True)
class Outputs:
    """One batch's model outputs, by name; multiclass also has its class probabilities."""

    columns: Mapping[str, np.ndarray]
    classes: tuple[str, ...] = ()
    probabilities: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))


def outputs_contract(task: str) -> Contract:
    """The output columns of `task` (schemas/score_outputs/<task>.yaml)."""
    return load_contract(f"score_outputs/{task}")


def output_fields(task: str) -> list[T.StructField]:
    """The Spark fields of the task's outputs, in contract order."""
    return list(spark_schema(outputs_contract(task)).fields)


def output_names(task: str) -> tuple[str, ...]:
    """The task's output column names, in contract order."""
    return outputs_contract(task).column_names


def to_arrow(outputs: Outputs, task: str) -> list[pa.Array]:
    """The task's output columns as Arrow arrays, in contract order."""
    arrays = []
    for spec in outputs_contract(task).columns:
        if spec.name == "probabilities":
            arrays.append(probability_map(outputs.classes, outputs.probabilities, len(outputs)))
        elif spec.type == "double":
            arrays.append(pa.array(np.asarray(outputs.columns[spec.name], dtype="float64")))
        elif spec.type == "int":
            arrays.append(pa.array(np.asarray(outputs.columns[spec.name], dtype="int32")))
        else:
            arrays.append(pa.array(list(outputs.columns[spec.name]), type=pa.string()))
    return arrays


def probability_map(
    classes: Sequence[str], probabilities: np.ndarray | None, rows: int
) -> pa.MapArray:
    """A map<string, double> array: every row maps each class to its probability."""
    width = len(classes)
    if probabilities is None or width == 0:
        return pa.MapArray.from_arrays(
            pa.array(np.zeros(rows + 1, dtype="int32")),
            pa.array([], pa.string()),
            pa.array([], pa.float64()),
        )
    offsets = pa.array(np.arange(0, rows * width + 1, width, dtype="int32"))
    keys = pa.array(np.tile(np.asarray(classes, dtype=object), rows), type=pa.string())
    items = pa.array(np.asarray(probabilities, dtype="float64").reshape(-1))
    return pa.MapArray.from_arrays(offsets, keys, items)
