from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pyspark.sql import types as T

from scoring.core.errors import ModelError
from scoring.model.adapter import (
    ModelInput,
    SklearnPredictor,
    bind_arrow,
    bind_inputs,
    check_inputs,
    choose_outputs,
    model_flavors,
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


class ReversedClassesModel:
    """A classifier whose classes_ put the positive class first."""

    classes_ = np.array([1, 0])

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.array([[0.9, 0.1], [0.2, 0.8]])


def test_sklearn_score_is_the_probability_of_class_one_whatever_its_position():
    out = SklearnPredictor(ReversedClassesModel()).predict(pd.DataFrame({"x": [1.0, 2.0]}))
    assert out["score"].tolist() == [0.9, 0.2]
    assert out["label"].tolist() == [1, 0]


def test_custom_outputs_are_chosen_by_name_not_position():
    output = pd.DataFrame({"label": [0, 1], "other": [5.0, 6.0], "probability": [0.3, 0.7]})
    chosen = choose_outputs(output, pd.RangeIndex(2))
    assert chosen["score"].tolist() == [0.3, 0.7]
    assert chosen["label"].tolist() == [0, 1]


def test_custom_outputs_without_label_use_a_half_threshold_and_none_score_is_kept_as_nan():
    chosen = choose_outputs(pd.DataFrame({"score": [0.5, 0.2, None]}), pd.RangeIndex(3))
    assert chosen["label"].tolist() == [1, 0, 0]
    assert np.isnan(chosen["score"].iloc[2])


def test_custom_outputs_that_are_not_a_named_frame_are_refused():
    with pytest.raises(ModelError, match="must return a DataFrame"):
        choose_outputs(np.array([0.1, 0.2]), pd.RangeIndex(2))


def test_model_flavors_reads_the_mlmodel_file_without_mlflow(tmp_path):
    (tmp_path / "MLmodel").write_text("flavors:\n  sklearn: {serialization_format: skops}\n")
    assert model_flavors(tmp_path) == {"sklearn": {"serialization_format": "skops"}}


def test_model_flavors_names_a_folder_without_an_mlmodel_file(tmp_path):
    with pytest.raises(ModelError, match="MLmodel: not a readable MLflow MLmodel file"):
        model_flavors(tmp_path)
