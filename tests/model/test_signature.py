from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pyspark.sql import types as T

from scoring.core.contracts import read_contract
from scoring.core.errors import ModelError
from scoring.model.signature import (
    ModelInput,
    bind_arrow,
    bind_inputs,
    check_inputs,
    contract_inputs,
)

INPUTS = (ModelInput("segment", "string"), ModelInput("tenure_days", "double"))


def schema(*fields: tuple[str, T.DataType]) -> T.StructType:
    return T.StructType([T.StructField(name, kind) for name, kind in fields])


def test_check_inputs_accepts_an_int_column_for_a_double_input():
    check_inputs(schema(("segment", T.StringType()), ("tenure_days", T.IntegerType())), INPUTS, "f")


def test_check_inputs_names_a_missing_column():
    with pytest.raises(ModelError, match="column 'tenure_days' required by the model signature"):
        check_inputs(schema(("segment", T.StringType())), INPUTS, "features")


def test_check_inputs_names_expected_and_found_types():
    found = schema(("segment", T.IntegerType()), ("tenure_days", T.DoubleType()))
    with pytest.raises(ModelError, match="'segment' has type int, the model signature expects"):
        check_inputs(found, INPUTS, "features")


def test_bind_inputs_orders_by_signature_turns_missing_strings_into_nan_and_ints_into_floats():
    frame = pd.DataFrame({"tenure_days": [3, 4], "extra": [1, 2], "segment": ["smb", None]})
    bound = bind_inputs(frame, INPUTS)
    assert list(bound.columns) == ["segment", "tenure_days"]
    assert bound["segment"].iloc[0] == "smb" and np.isnan(bound["segment"].iloc[1])
    assert bound["tenure_days"].dtype == np.float64


def test_bind_arrow_orders_by_signature_and_turns_null_strings_and_null_ints_into_nan():
    batch = pa.RecordBatch.from_pydict(
        {
            "tenure_days": pa.array([3, None], pa.int32()),
            "extra": pa.array([1, 2], pa.int64()),
            "segment": pa.array(["smb", None], pa.string()),
        }
    )
    bound = bind_arrow(batch, INPUTS)
    assert list(bound.columns) == ["segment", "tenure_days"]
    assert bound["segment"].iloc[0] == "smb" and np.isnan(bound["segment"].iloc[1])
    assert bound["tenure_days"].dtype == np.float64
    assert bound["tenure_days"].iloc[0] == 3.0 and np.isnan(bound["tenure_days"].iloc[1])


def test_bind_arrow_gives_the_same_frame_as_bind_inputs_on_the_pandas_batch():
    batch = pa.RecordBatch.from_pydict(
        {"segment": pa.array([None, "smb"]), "tenure_days": pa.array([7, None], pa.int32())}
    )
    pd.testing.assert_frame_equal(bind_arrow(batch, INPUTS), bind_inputs(batch.to_pandas(), INPUTS))


def test_check_inputs_accepts_decimal_and_boolean_columns_for_a_double_input():
    inputs = (ModelInput("amount", "double"), ModelInput("opt_in", "double"))
    check_inputs(schema(("amount", T.DecimalType(12, 2)), ("opt_in", T.BooleanType())), inputs, "f")


def test_a_trainer_gets_text_as_text_numbers_as_doubles_and_no_dates(tmp_path):
    path = tmp_path / "features.yaml"
    path.write_text(
        "name: features\nkind: table\ndescription: d\ncolumns:\n"
        "  - {name: key, type: string, nullable: false, description: k}\n"
        "  - {name: kind, type: string, nullable: true, description: k}\n"
        "  - {name: count, type: int, nullable: false, description: c}\n"
        "  - {name: flag, type: boolean, nullable: true, description: f}\n"
        "  - {name: since, type: date, nullable: true, description: s}\n"
    )
    assert contract_inputs(read_contract(path), exclude=("key",)) == (
        ModelInput("kind", "string"),
        ModelInput("count", "double"),
        ModelInput("flag", "double"),
    )
