"""One way to call any model: inputs bound by name from its signature, outputs chosen by name.

A model is a downloaded MLflow model folder. `load_predictor` turns it into a `Predictor`
whose `predict(frame)` returns a DataFrame with exactly two named columns, `score` (the
probability of the positive class, 1) and `label` (the predicted class):

- scikit-learn flavour: `predict_proba` on the estimator itself (the pyfunc's `predict`
  returns labels only); the positive class is found by value in `classes_`, never by position.
  Only skops files are loaded, with the explicit allow-list `SKOPS_TRUSTED_TYPES` of this
  module (not the list written in the model's own MLmodel file); pickles are refused.
- any other pyfunc (for example a custom `mlflow.pyfunc.PythonModel`): `predict` must return
  a DataFrame with a column `score` (or `probability`) and optionally `label`; without
  `label`, label = score >= 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import types as T

from scoring.errors import ModelError

# The types outside skops' defaults that the demo pipeline needs, computed once with
# `skops.io.get_untrusted_types` on the trained pipeline (ColumnTransformer + OneHotEncoder +
# HistGradientBoostingClassifier, scikit-learn 1.9, skops 0.16) and written down here on
# purpose: a model that needs anything else is refused until a person reviews and adds it.
SKOPS_TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)
POSITIVE_CLASS = 1
_SCORE_COLUMNS = ("score", "probability")

# MLflow signature type -> Spark types a features column may have to feed it.
_COMPATIBLE: dict[str, tuple[type[T.DataType], ...]] = {
    "double": (T.DoubleType, T.FloatType, T.IntegerType, T.ShortType, T.ByteType, T.LongType),
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


class Predictor(Protocol):
    """A loaded model that returns `score` and `label` for a frame of its inputs."""

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Score `frame` (columns = the signature's inputs); columns `score`, `label`."""
        ...


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


def positive_index(classes: Sequence[Any]) -> int:
    """The position of the positive class (1) in a classifier's `classes_`.

    Raises:
        ModelError: the classes do not include 1.
    """
    for position, value in enumerate(classes):
        if str(value) in {"1", "True", "1.0"}:
            return position
    raise ModelError(f"classifier classes_ {list(classes)} do not include the positive class 1")


@dataclass(frozen=True)
class SklearnPredictor:
    """A scikit-learn classifier: `score` from `predict_proba`, the class found by value."""

    model: Any

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`score` = P(class 1); `label` = the most probable class, as an integer."""
        proba = np.asarray(self.model.predict_proba(frame))
        classes = list(self.model.classes_)
        labels = np.asarray([int(float(str(c))) for c in classes], dtype="int32")
        return pd.DataFrame(
            {
                "score": proba[:, positive_index(classes)].astype("float64"),
                "label": labels[np.argmax(proba, axis=1)],
            },
            index=frame.index,
        )


@dataclass(frozen=True)
class PyfuncPredictor:
    """Any MLflow pyfunc whose `predict` returns a DataFrame with named score columns."""

    model: Any

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Pick `score` (or `probability`) and `label` by name from the model's output."""
        return choose_outputs(self.model.predict(frame), frame.index)


def choose_outputs(output: Any, index: pd.Index) -> pd.DataFrame:
    """`score` and `label` chosen by name from a pyfunc's output DataFrame.

    Raises:
        ModelError: the output is not a DataFrame or has no `score`/`probability` column.
    """
    if not isinstance(output, pd.DataFrame):
        raise ModelError(
            f"model output is {type(output).__name__}; a custom model must return a DataFrame "
            f"with a column 'score' (or 'probability') and optionally 'label'"
        )
    name = next((c for c in _SCORE_COLUMNS if c in output.columns), None)
    if name is None:
        raise ModelError(
            f"model output columns {list(output.columns)} have neither 'score' nor 'probability'"
        )
    score = pd.to_numeric(output[name]).astype("float64").to_numpy()
    label = output["label"].to_numpy() if "label" in output.columns else score >= 0.5
    return pd.DataFrame({"score": score, "label": np.asarray(label).astype("int32")}, index=index)


def load_predictor(model_dir: str | Path) -> Predictor:
    """Load a downloaded MLflow model folder as a Predictor (see the module docstring).

    Raises:
        ModelError: a pickled scikit-learn model, an untrusted skops type, or no predict_proba.
    """
    flavors = model_flavors(model_dir)
    if "sklearn" not in flavors:
        import mlflow.pyfunc

        return PyfuncPredictor(mlflow.pyfunc.load_model(str(model_dir)))
    model = _load_skops(Path(model_dir), flavors["sklearn"])
    if not hasattr(model, "predict_proba") or not hasattr(model, "classes_"):
        raise ModelError(f"{model_dir}: the scikit-learn model has no predict_proba/classes_")
    return SklearnPredictor(model)


def model_flavors(model_dir: str | Path) -> dict[str, Any]:
    """The `flavors` mapping of a model folder's MLmodel file, read as plain YAML.

    Not through `mlflow.models.Model.load`: importing mlflow costs seconds in every fresh
    Python worker (13 s of a cold worker start on the busy 2-core bench machine), and a
    scikit-learn model needs nothing else from it.

    Raises:
        ModelError: the folder has no readable MLmodel file with a flavors mapping.
    """
    import yaml

    path = Path(model_dir) / "MLmodel"
    try:
        flavors = yaml.safe_load(path.read_text(encoding="utf-8")).get("flavors")
    except (OSError, AttributeError, yaml.YAMLError) as exc:
        raise ModelError(f"{path}: not a readable MLflow MLmodel file ({exc})") from exc
    if not isinstance(flavors, dict):
        raise ModelError(f"{path}: the MLmodel file has no 'flavors' mapping")
    return flavors


def _load_skops(model_dir: Path, flavor: dict[str, Any]) -> Any:
    """Load a skops file with this module's allow-list, after checking it needs nothing else."""
    import skops.io

    fmt = flavor.get("serialization_format")
    if fmt != "skops":
        raise ModelError(
            f"{model_dir}: scikit-learn model saved as '{fmt}'; loading a pickle trusts any "
            f"code, log it with serialization_format='skops'"
        )
    path = model_dir / str(flavor["pickled_model"])
    untrusted = sorted(skops.io.get_untrusted_types(file=path))
    refused = [t for t in untrusted if t not in SKOPS_TRUSTED_TYPES]
    if refused:
        raise ModelError(
            f"{path}: skops types {refused} are not in scoring.model_adapter.SKOPS_TRUSTED_TYPES"
        )
    return skops.io.load(path, trusted=untrusted)
