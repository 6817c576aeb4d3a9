"""One way to call any model of any task: a `Predictor` returns the task's outputs by name.

- classifiers with `predict_proba` and `classes_` (scikit-learn, XGBoost's and LightGBM's
  scikit-learn classes): the probabilities are matched to classes by value, never by
  position; binary `score` is the probability of the use case's `positive_class` and
  `label` is `score >= threshold`; multiclass `label` is the most probable class;
- regressors (`predict`): `prediction`;
- native boosters (XGBoost `Booster`, LightGBM `Booster`): their `predict`, read per task
  (binary: the positive class's probability; multiclass: classes `0..k-1`);
- any other pyfunc: its output frame, columns chosen by name (see `choose_outputs`).

`check_estimator` tells, before anything is scored, whether a loaded model can serve the
use case's task at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from scoring.core.errors import ModelError
from scoring.model.tasks import BINARY, MULTICLASS, REGRESSION, Outputs
from scoring.usecase.spec import ModelSpec

_SCORE_COLUMNS = ("score", "probability")


class Predictor(Protocol):
    """A loaded model that returns its task's outputs for a frame of its inputs."""

    def predict(self, frame: pd.DataFrame) -> Outputs:
        """The outputs of `frame` (columns = the signature's inputs), one row per row."""
        ...


def class_index(classes: Sequence[Any], wanted: str) -> int:
    """The position of class `wanted` (as text) in a classifier's `classes_`, by value.

    `1`, `1.0`, `True` and `"1"` are one class; `"yes"` matches only `"yes"`.

    Raises:
        ModelError: no class has that value.
    """
    for position, value in enumerate(classes):
        if _same_class(value, wanted):
            return position
    raise ModelError(
        f"classifier classes_ {[str(c) for c in classes]} do not include the positive class "
        f"'{wanted}' (usecase.yaml model.positive_class)"
    )


def _same_class(value: Any, wanted: str) -> bool:
    text = str(value)
    return text == wanted or _as_number(text) == _as_number(wanted) is not None


def _as_number(text: str) -> float | None:
    """A class label as a number (`True` is 1), or None when it is not one."""
    booleans = {"True": 1.0, "False": 0.0, "true": 1.0, "false": 0.0}
    if text in booleans:
        return booleans[text]
    try:
        return float(text)
    except ValueError:
        return None


def from_probabilities(proba: Any, classes: Sequence[Any], spec: ModelSpec) -> Outputs:
    """Binary or multiclass outputs from a probability matrix whose columns are `classes`."""
    matrix = np.asarray(proba, dtype="float64")
    if matrix.ndim != 2 or matrix.shape[1] != len(classes):
        raise ModelError(
            f"model returned probabilities of shape {matrix.shape} for {len(classes)} classes"
        )
    if spec.task == BINARY:
        score = matrix[:, class_index(classes, spec.positive_class)]
        return Outputs({"score": score, "label": (score >= spec.threshold).astype("int32")})
    names = tuple(str(c) for c in classes)
    best = np.argmax(matrix, axis=1)
    label = np.asarray(names, dtype=object)[best]
    return Outputs({"label": label, "score": matrix[np.arange(len(matrix)), best]}, names, matrix)


def from_values(values: Any) -> Outputs:
    """Regression outputs from a one-dimensional prediction."""
    prediction = np.asarray(values, dtype="float64")
    if prediction.ndim != 1:
        raise ModelError(
            f"a regression model must return one value per row, got {prediction.shape}"
        )
    return Outputs({"prediction": prediction})


def check_estimator(model: Any, spec: ModelSpec, where: str) -> None:
    """Fail unless a scikit-learn-like estimator can serve `spec.task`.

    Raises:
        ModelError: naming `where` (the model) and what does not fit the task.
    """
    classifier = hasattr(model, "predict_proba") and hasattr(model, "classes_")
    if spec.task == REGRESSION:
        if classifier or not hasattr(model, "predict"):
            raise ModelError(
                f"{where}: a classifier (or a model without predict) cannot serve task "
                "regression (usecase.yaml model.task)"
            )
        return
    if not classifier:
        raise ModelError(
            f"{where}: task {spec.task} needs a classifier with predict_proba and classes_; "
            f"{type(model).__name__} has not (usecase.yaml model.task)"
        )
    classes = list(model.classes_)
    if spec.task == BINARY:
        if len(classes) != 2:
            raise ModelError(
                f"{where}: task binary needs 2 classes, the model has {len(classes)}: "
                f"{[str(c) for c in classes]} (usecase.yaml model.task)"
            )
        class_index(classes, spec.positive_class)
    elif len(classes) < 2:
        raise ModelError(f"{where}: task multiclass needs 2 or more classes, got {classes}")


@dataclass(frozen=True)
class EstimatorPredictor:
    """A scikit-learn-like estimator: `predict_proba` + `classes_`, or `predict`."""

    model: Any
    spec: ModelSpec

    def predict(self, frame: pd.DataFrame) -> Outputs:
        if self.spec.task == REGRESSION:
            return from_values(self.model.predict(frame))
        return from_probabilities(self.model.predict_proba(frame), self.model.classes_, self.spec)


@dataclass(frozen=True)
class BoosterPredictor:
    """A native XGBoost or LightGBM booster: probabilities or values from its `predict`."""

    model: Any
    spec: ModelSpec
    kind: str  # "xgboost" | "lightgbm"

    def predict(self, frame: pd.DataFrame) -> Outputs:
        if self.kind == "xgboost":
            import xgboost

            raw = self.model.predict(xgboost.DMatrix(frame))
        else:
            raw = self.model.predict(frame)
        values = np.asarray(raw, dtype="float64")
        if self.spec.task == REGRESSION:
            return from_values(values)
        if values.ndim == 1:  # a binary booster returns P(class 1)
            values = np.column_stack([1.0 - values, values])
        return from_probabilities(values, [str(i) for i in range(values.shape[1])], self.spec)


@dataclass(frozen=True)
class PyfuncPredictor:
    """Any MLflow pyfunc: outputs chosen by name from what its `predict` returns."""

    model: Any
    spec: ModelSpec

    def predict(self, frame: pd.DataFrame) -> Outputs:
        return choose_outputs(self.model.predict(frame), self.spec)


def choose_outputs(output: Any, spec: ModelSpec) -> Outputs:
    """The task's outputs chosen by name from a pyfunc's output.

    - binary: a DataFrame with `score` (or `probability`), the positive class's probability;
    - multiclass: a DataFrame with `probabilities`, one mapping class -> probability per row;
    - regression: a DataFrame with `prediction`, or a one-dimensional array or Series.

    Raises:
        ModelError: the output does not have what the task needs; the message says what.
    """
    if spec.task == REGRESSION and not isinstance(output, pd.DataFrame):
        return from_values(output)
    if not isinstance(output, pd.DataFrame):
        raise ModelError(
            f"model output is {type(output).__name__}; for task {spec.task} a custom model must "
            f"return a DataFrame ({_NEEDED[spec.task]})"
        )
    if spec.task == REGRESSION:
        if "prediction" not in output.columns:
            raise ModelError(f"model output columns {list(output.columns)} have no 'prediction'")
        return from_values(pd.to_numeric(output["prediction"]))
    if spec.task == MULTICLASS:
        if "probabilities" not in output.columns:
            raise ModelError(f"model output columns {list(output.columns)} have no 'probabilities'")
        return _from_mappings(list(output["probabilities"]), spec)
    name = next((c for c in _SCORE_COLUMNS if c in output.columns), None)
    if name is None:
        raise ModelError(
            f"model output columns {list(output.columns)} have neither 'score' nor 'probability'"
        )
    score = pd.to_numeric(output[name]).astype("float64").to_numpy()
    return Outputs({"score": score, "label": (score >= spec.threshold).astype("int32")})


_NEEDED = {
    BINARY: "a column 'score' or 'probability'",
    MULTICLASS: "a column 'probabilities' of mappings class -> probability",
    REGRESSION: "a column 'prediction'",
}


def _from_mappings(rows: Sequence[Mapping[Any, float]], spec: ModelSpec) -> Outputs:
    """Multiclass outputs from one {class: probability} mapping per row."""
    classes = sorted({str(k) for row in rows for k in dict(row)})
    matrix = np.array(
        [
            [float(dict((str(k), v) for k, v in dict(row).items()).get(c, 0.0)) for c in classes]
            for row in rows
        ],
        dtype="float64",
    ).reshape(len(rows), len(classes))
    return from_probabilities(matrix, classes, spec)
