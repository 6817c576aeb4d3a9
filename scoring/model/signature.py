"""A model's inputs: read from its MLflow signature, checked against a table, bound by name.

The signature's named inputs are the contract between a features table and a model: every
input must be a column with a compatible type (checked before anything is scored), and each
batch is handed to the model as exactly those columns, in signature order, converted once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import types as T

from scoring.core.contracts import Contract
from scoring.core.errors import ModelError

# MLflow signature type -> Spark types a features column may have to feed it.
_COMPATIBLE: dict[str, tuple[type[T.DataType], ...]] = {
    "double": (
        T.DoubleType,
        T.FloatType,
        T.IntegerType,
        T.ShortType,
        T.ByteType,
        T.LongType,
        T.DecimalType,
        T.BooleanType,
    ),
    "float": (T.FloatType, T.IntegerType, T.ShortType, T.ByteType),
    "long": (T.LongType, T.IntegerType, T.ShortType, T.ByteType),
    "integer": (T.IntegerType, T.ShortType, T.ByteType),
    "string": (T.StringType,),
    "boolean": (T.BooleanType,),
    "datetime": (T.TimestampType, T.DateType, T.TimestampNTZType),
}
_PANDAS_DTYPE = {"double": "float64", "float": "float32"}


@dataclass(frozen=True)
class ModelInput:
    """One named input of a model signature and its MLflow type (`double`, `string`, ...)."""

    name: str
    type: str


def contract_inputs(contract: Contract, exclude: Sequence[str]) -> tuple[ModelInput, ...]:
    """The inputs a trainer gets from a features contract: every column but `exclude`.

    Strings stay strings; numbers and booleans become doubles (so nulls are NaN); dates and
    timestamps are not model inputs.
    """
    inputs = []
    for spec in contract.columns:
        if spec.name in exclude or spec.type in ("date", "timestamp"):
            continue
        inputs.append(ModelInput(spec.name, "string" if spec.type == "string" else "double"))
    return tuple(inputs)


def model_inputs(model_dir: str | Path) -> tuple[ModelInput, ...]:
    """The named inputs of the model's signature, read from its MLmodel file.

    Raises:
        ModelError: the model has no signature, or its inputs are not named columns.
    """
    from mlflow.models import Model

    signature = Model.load(str(model_dir)).signature
    if signature is None or signature.inputs is None:
        raise ModelError(f"{model_dir}: the model has no input signature to bind features to")
    inputs = []
    for spec in signature.inputs.inputs:
        if getattr(spec, "name", None) is None or not hasattr(spec.type, "name"):
            raise ModelError(f"{model_dir}: signature input {spec} is not a named column")
        inputs.append(ModelInput(str(spec.name), str(spec.type.name)))
    return tuple(inputs)


def check_inputs(schema: T.StructType, inputs: Sequence[ModelInput], table: str) -> None:
    """Fail unless every model input is a column of `schema` with a compatible type.

    Raises:
        ModelError: naming the first missing or incompatible column, expected vs found type.
    """
    fields = {f.name: f.dataType for f in schema.fields}
    for item in inputs:
        found = fields.get(item.name)
        if found is None:
            raise ModelError(
                f"{table}: column '{item.name}' required by the model signature "
                f"(type {item.type}) is missing"
            )
        allowed = _COMPATIBLE.get(item.type, ())
        if not isinstance(found, allowed):
            raise ModelError(
                f"{table}: column '{item.name}' has type {found.simpleString()}, the model "
                f"signature expects {item.type}"
            )


def bind_inputs(frame: pd.DataFrame, inputs: Sequence[ModelInput]) -> pd.DataFrame:
    """The model's input frame: the signature's columns by name, in signature order.

    Numbers become the signature's float dtype; a missing string becomes NaN, the missing
    marker scikit-learn's imputers recognise (None is not).
    """
    bound = {}
    for item in inputs:
        column = frame[item.name]
        if item.type in _PANDAS_DTYPE:
            column = pd.to_numeric(column).astype(_PANDAS_DTYPE[item.type])
        elif item.type == "string":
            column = column.astype(object).where(column.notna(), np.nan)
        bound[item.name] = column
    return pd.DataFrame(bound, index=frame.index)


def bind_arrow(batch: pa.RecordBatch, inputs: Sequence[ModelInput]) -> pd.DataFrame:
    """`bind_inputs` for an Arrow batch: the same frame, without a pandas copy of the batch.

    Only the signature's columns are converted, each once, straight to its final dtype:
    numbers are cast in Arrow (nulls become NaN), strings become objects with NaN for null.
    """
    bound: dict[str, Any] = {}
    for item in inputs:
        column = batch.column(item.name)
        if item.type in _PANDAS_DTYPE:
            numbers = column.cast(pa.from_numpy_dtype(np.dtype(_PANDAS_DTYPE[item.type])))
            bound[item.name] = numbers.to_numpy(zero_copy_only=False)
        elif item.type == "string":
            values = column.to_numpy(zero_copy_only=False)
            if column.null_count:
                values[column.is_null().to_numpy(zero_copy_only=False)] = np.nan
            bound[item.name] = values
        else:
            bound[item.name] = column.to_pandas()
    return pd.DataFrame(bound, copy=False)
