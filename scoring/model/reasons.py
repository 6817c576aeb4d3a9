"""Reason codes: per row, the input columns that pushed the model's output most, and by how much.

An `Explainer` is built once per Python worker from the loaded `Predictor`; per Arrow batch
it gives every row's contribution of each model input column on the model's raw scale,
such that a row's contributions plus its expected value are the model's raw output:

- scikit-learn tree models (HistGradientBoosting, random forests, extra trees, decision
  trees, gradient boosting): exact TreeSHAP, `shap.TreeExplainer` on the fitted trees
  (path-dependent: the expected value is the trees' training-weighted mean); raw scale is
  the log-odds of a boosted classifier, the probability of a forest or a tree, the value of a
  regressor. A HistGradientBoosting model with categorical splits is refused (TreeSHAP does
  not follow them);
- XGBoost and LightGBM (native boosters or their scikit-learn classes): the libraries' own
  `pred_contribs` / `pred_contrib` output, on the margin scale; its last column is the
  expected value;
- linear models (`coef_`, `intercept_`: LogisticRegression, LinearRegression, Ridge, ...):
  exactly `coef * (value - reference)` on the decision-function scale, where the reference
  is the mean of each column the model sees over the model version's monitoring baseline
  (the rows held out of its training), computed once on the driver (`linear_reference`);
  the expected value is `intercept + coef . reference`;
- a scikit-learn `Pipeline`: its last step is explained on the matrix the earlier steps
  make, and every column of that matrix is mapped back to the input column it comes from
  (through `ColumnTransformer`, nested pipelines, one-hot encoders, imputers and their
  missing indicators); the contributions of one input column are summed (SHAP values and
  linear terms are additive);
- anything else (a custom pyfunc, a model none of the above explains) is refused at the
  start of the run with a `ModelError` naming the model and `scoring.reasons.top_k`: a
  model-agnostic sampling explainer costs hundreds of model calls per row.

Which output is explained: regression, the prediction; binary, the positive class
(`model.positive_class`; a one-output margin is negated when the positive class is the
first one); multiclass, each row's predicted class (its largest raw output).

`reason_array` turns a batch's contributions into the `reasons` column: per row the
`top_k` input columns by absolute contribution (largest first, ties in input order,
columns contributing exactly 0 left out), each with the row's input value as text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import types as T

from scoring.core.errors import ModelError
from scoring.model.predictors import (
    BoosterPredictor,
    EstimatorPredictor,
    Predictor,
    class_index,
)
from scoring.model.tasks import BINARY, MULTICLASS
from scoring.usecase.spec import ModelSpec

#: The config key that turns reason codes on (docs/scoring.md, "Reason codes").
TOP_K_KEY = "scoring.reasons.top_k"
#: The column of `scores` and `scores_current` that holds a row's reasons.
REASONS = "reasons"
REASON_ARROW_TYPE = pa.list_(
    pa.struct(
        [
            pa.field("feature", pa.string()),
            pa.field("value", pa.string()),
            pa.field("contribution", pa.float64()),
        ]
    )
)
REASON_SPARK_TYPE = T.ArrayType(
    T.StructType(
        [
            T.StructField("feature", T.StringType(), True),
            T.StructField("value", T.StringType(), True),
            T.StructField("contribution", T.DoubleType(), True),
        ]
    ),
    True,
)
_SKLEARN_TREES = {
    f"sklearn.{module}.{name}"
    for module, names in {
        "ensemble": (
            "HistGradientBoostingClassifier",
            "HistGradientBoostingRegressor",
            "RandomForestClassifier",
            "RandomForestRegressor",
            "ExtraTreesClassifier",
            "ExtraTreesRegressor",
            "GradientBoostingClassifier",
            "GradientBoostingRegressor",
        ),
        "tree": (
            "DecisionTreeClassifier",
            "DecisionTreeRegressor",
            "ExtraTreeClassifier",
            "ExtraTreeRegressor",
        ),
    }.items()
    for name in names
}
_PYFUNC = "a custom python_function model"
# Raw contributions of a matrix: (rows, columns, outputs) and expected values (rows, outputs).
_Raw = Callable[[Any], tuple[np.ndarray, np.ndarray]]


def reasons_field() -> T.StructField:
    """The nullable `reasons` column of the scored tables."""
    return T.StructField(REASONS, REASON_SPARK_TYPE, True)


@dataclass(frozen=True)
class Contributions:
    """One batch explained: per row and input column, its contribution on the raw scale,
    and per row the expected value; `values.sum(1) + expected` is the raw output."""

    values: np.ndarray  # (rows, inputs)
    expected: np.ndarray  # (rows,)

    @property
    def raw(self) -> np.ndarray:
        """The explained raw output of every row."""
        return self.values.sum(axis=1) + self.expected


@dataclass(frozen=True)
class Explainer:
    """A loaded model's explainer: the matrix its last step sees, that step's raw
    contributions, each matrix column's input column, and the output explained."""

    inputs: tuple[str, ...]
    prepare: Callable[[pd.DataFrame], Any]
    raw: _Raw
    sources: np.ndarray  # per matrix column, the position of its input column
    choose: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

    def explain(self, frame: pd.DataFrame) -> Contributions:
        """The contributions of every row of `frame` (the model's bound inputs)."""
        matrix = self.prepare(frame)
        values, expected = self.raw(matrix)
        picked, base = self.choose(values, expected)
        grouped = np.zeros((picked.shape[0], len(self.inputs)))
        for column, source in enumerate(self.sources):
            grouped[:, source] += picked[:, column]
        return Contributions(grouped, base)


def build_explainer(
    predictor: Predictor,
    inputs: Sequence[str],
    reference: Sequence[float] | np.ndarray | None = None,
) -> Explainer:
    """The explainer of a loaded model whose inputs are `inputs` (module docstring).

    `reference`: for a linear last step, the mean of each column it sees (`linear_reference`).

    Raises:
        ModelError: the model is of a kind that is not explained (the refusal).
    """
    if not isinstance(predictor, EstimatorPredictor | BoosterPredictor):
        raise refusal(type(getattr(predictor, "model", predictor)).__name__, _PYFUNC)
    model, prepare, sources = _parts(predictor, tuple(inputs))
    classes = _classes(predictor, model)
    if _is_linear(model):
        if reference is None:
            raise ModelError(f"{_name(model)}: a linear model's reasons need its reference means")
        raw = _linear(model, np.asarray(reference, dtype="float64"))
    else:
        raw = _tree_contributions(model)
    return Explainer(tuple(inputs), prepare, raw, sources, _chooser(predictor.spec, classes))


def needs_reference(predictor: Predictor) -> bool:
    """Whether the model's last step is linear: its reasons need `linear_reference`."""
    return isinstance(predictor, EstimatorPredictor) and _is_linear(_last(predictor.model))


def linear_reference(
    predictor: Predictor, inputs: Sequence[str], frame: pd.DataFrame
) -> np.ndarray:
    """The mean of every column a linear last step sees, over `frame` (the baseline's bound
    inputs): the reference its contributions are measured from."""
    if not isinstance(predictor, EstimatorPredictor):
        raise refusal(type(getattr(predictor, "model", predictor)).__name__, _PYFUNC)
    model, prepare, _ = _parts(predictor, tuple(inputs))
    means = np.nanmean(_dense(prepare(frame)), axis=0)
    if not np.all(np.isfinite(means)):
        raise ModelError(f"{_name(model)}: the baseline gives no mean for some model column")
    return means


def refusal(model: str, why: str) -> ModelError:
    """The one-line error of a model whose reasons cannot be computed."""
    return ModelError(
        f"{model}: no reason codes for this model ({why}); set {TOP_K_KEY}: 0 for this use "
        "case, or use a model the engine explains (docs/scoring.md, 'Reason codes')"
    )


def _parts(
    predictor: EstimatorPredictor | BoosterPredictor, inputs: tuple[str, ...]
) -> tuple[Any, Callable[[pd.DataFrame], Any], np.ndarray]:
    """The last step, the function making its matrix, and each matrix column's input."""
    if isinstance(predictor, BoosterPredictor):
        return predictor.model, _identity, np.arange(len(inputs))
    model = predictor.model
    if not _is_pipeline(model):
        _check_explained(model)
        return model, _identity, np.arange(len(inputs))
    last = _last(model)
    _check_explained(last)
    head = model[:-1]
    names = list(_sources(head, list(inputs)))
    position = {name: i for i, name in enumerate(inputs)}
    return last, head.transform, np.array([position[n] for n in names], dtype="int64")


def _identity(frame: pd.DataFrame) -> Any:
    return frame


def _last(model: Any) -> Any:
    return model[-1] if _is_pipeline(model) else model


def _is_pipeline(model: Any) -> bool:
    return _qualname(model) == "sklearn.pipeline.Pipeline"


def _qualname(model: Any) -> str:
    cls = type(model)
    package = ".".join(cls.__module__.split(".")[:2])  # sklearn.ensemble._forest: .ensemble
    return f"{package}.{cls.__name__}"


def _name(model: Any) -> str:
    return type(model).__name__


def _is_linear(model: Any) -> bool:
    return _qualname(model).startswith("sklearn.linear_model.") and hasattr(model, "coef_")


def _kind(model: Any) -> str | None:
    """`sklearn_tree`, `xgboost`, `lightgbm`, `linear`, or None for a model not explained."""
    name = _qualname(model)
    if name in _SKLEARN_TREES:
        return "sklearn_tree"
    if name.startswith("xgboost."):
        return "xgboost"
    if name.startswith("lightgbm."):
        return "lightgbm"
    return "linear" if _is_linear(model) else None


def _check_explained(model: Any) -> None:
    """Refuse a model of a kind not explained, or a HistGradientBoosting with categories."""
    if _kind(model) is None:
        raise refusal(_name(model), "not a tree ensemble, XGBoost, LightGBM or linear model")
    categorical = getattr(model, "is_categorical_", None)
    if categorical is not None and np.any(categorical):
        raise refusal(
            _name(model), "TreeSHAP does not follow HistGradientBoosting's categorical splits"
        )


def _tree_contributions(model: Any) -> _Raw:
    """TreeSHAP of scikit-learn trees, or XGBoost's / LightGBM's own contributions."""
    kind = _kind(model)
    if kind == "xgboost":
        return _xgboost(model)
    if kind == "lightgbm":
        return _lightgbm(model)
    import shap  # imported only when reasons are on: it costs seconds

    explainer = shap.TreeExplainer(model)
    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype="float64"))

    def raw(matrix: Any) -> tuple[np.ndarray, np.ndarray]:
        dense = _dense(matrix)
        values = np.asarray(explainer.shap_values(dense, check_additivity=False))
        values = values.reshape(dense.shape[0], dense.shape[1], -1)
        return values, np.broadcast_to(base, (dense.shape[0], base.size))

    return raw


def _xgboost(model: Any) -> _Raw:
    import xgboost

    booster = model.get_booster() if hasattr(model, "get_booster") else model
    options: dict[str, Any] = {}
    if hasattr(model, "get_booster") and hasattr(model, "best_iteration"):
        options["iteration_range"] = (0, int(model.best_iteration) + 1)  # as its predict does

    def raw(matrix: Any) -> tuple[np.ndarray, np.ndarray]:
        out = booster.predict(xgboost.DMatrix(matrix), pred_contribs=True, **options)
        out = np.asarray(out, dtype="float64")
        # multiclass: (rows, classes, columns + 1)
        out = out.transpose(0, 2, 1) if out.ndim == 3 else out[:, :, None]
        return out[:, :-1, :], out[:, -1, :]

    return raw


def _lightgbm(model: Any) -> _Raw:
    booster = model.booster_ if hasattr(model, "booster_") else model

    def raw(matrix: Any) -> tuple[np.ndarray, np.ndarray]:
        out = np.asarray(booster.predict(matrix, pred_contrib=True), dtype="float64")
        rows, width = out.shape[0], booster.num_feature() + 1
        out = out.reshape(rows, -1, width).transpose(0, 2, 1)  # (rows, columns + 1, classes)
        return out[:, :-1, :], out[:, -1, :]

    return raw


def _linear(model: Any, reference: np.ndarray) -> _Raw:
    coef = np.atleast_2d(np.asarray(model.coef_, dtype="float64"))  # (outputs, columns)
    intercept = np.atleast_1d(np.asarray(model.intercept_, dtype="float64"))
    if coef.shape[1] != reference.shape[0]:
        raise ModelError(
            f"{_name(model)}: {coef.shape[1]} coefficients but {reference.shape[0]} reference means"
        )
    base = intercept + coef @ reference

    def raw(matrix: Any) -> tuple[np.ndarray, np.ndarray]:
        centred = _dense(matrix) - reference
        values = centred[:, :, None] * coef.T[None, :, :]
        return values, np.broadcast_to(base, (centred.shape[0], base.size))

    return raw


def _dense(matrix: Any) -> np.ndarray:
    if hasattr(matrix, "toarray"):
        return np.asarray(matrix.toarray(), dtype="float64")
    return np.asarray(matrix, dtype="float64")


def _classes(predictor: EstimatorPredictor | BoosterPredictor, model: Any) -> list[str]:
    """The classes of a classifier's outputs, in output order; a binary booster's are 0, 1
    (a multiclass row's class is its largest output, whatever its name)."""
    if isinstance(predictor, BoosterPredictor):
        return ["0", "1"] if predictor.spec.task == BINARY else []
    return [str(c) for c in getattr(predictor.model, "classes_", getattr(model, "classes_", []))]


def _chooser(
    spec: ModelSpec, classes: list[str]
) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Which raw output each row's reasons explain (module docstring)."""
    task = spec.task

    def choose(values: np.ndarray, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        outputs = values.shape[2]
        if task == MULTICLASS and outputs > 1:
            totals = values.sum(axis=1) + expected
            best = np.argmax(totals, axis=1)
            rows = np.arange(values.shape[0])
            return values[rows, :, best], expected[rows, best]
        if task == BINARY and outputs == 2:
            index = class_index(classes, spec.positive_class)
            return values[:, :, index], expected[:, index]
        if outputs != 1:
            raise ModelError(f"{task} model with {outputs} raw outputs cannot be explained")
        sign = 1.0
        if task == BINARY and class_index(classes, spec.positive_class) == 0:
            sign = -1.0  # the margin is the second class's: the first's is its negative
        return sign * values[:, :, 0], sign * expected[:, 0]

    return choose


def _sources(step: Any, names: list[str]) -> list[str]:
    """For every column a fitted transformer outputs, the input column it comes from."""
    if step is None or step == "passthrough":
        return names
    qualname = _qualname(step)
    if qualname == "sklearn.pipeline.Pipeline":
        for _, inner in step.steps:
            names = _sources(inner, names)
        return names
    if qualname == "sklearn.compose.ColumnTransformer":
        out: list[str] = []
        for name, inner, _ in step.transformers_:
            picked = [names[i] for i in step._transformer_to_input_indices.get(name, [])]
            if inner == "drop" or not picked:
                continue
            out += _sources(inner, picked)
        return out
    if qualname == "sklearn.preprocessing.OneHotEncoder":
        counts = step._n_features_outs  # columns per input after drop / infrequent grouping
        return [n for n, count in zip(names, counts, strict=True) for _ in range(count)]
    return _by_name(step, names)


def _by_name(step: Any, names: list[str]) -> list[str]:
    """A transformer's output columns mapped to inputs by their names: the same name, else
    the longest input name the output name starts (`x_...`) or ends (`..._x`) with."""
    given = None if hasattr(step, "feature_names_in_") else names
    try:
        outputs = [str(n) for n in step.get_feature_names_out(given)]
    except (AttributeError, ValueError, TypeError) as exc:
        raise refusal(_name(step), f"its output columns have no names ({exc})") from exc
    mapped = []
    for output in outputs:
        found = [n for n in names if output.startswith(n + "_") or output.endswith("_" + n)]
        if output in names:
            found = [output]
        if not found:
            raise refusal(_name(step), f"its output column '{output}' names no input column")
        mapped.append(max(found, key=len))
    return mapped


def reason_array(
    contributions: np.ndarray,
    inputs: Sequence[str],
    batch: pa.RecordBatch,
    explained: np.ndarray,
    top_k: int,
) -> pa.Array:
    """The `reasons` column of a batch: null for a row not explained, else its `top_k`
    inputs by absolute contribution, each with the row's value of it as text.

    `contributions`: (explained rows, inputs), the rows where `explained` is true, in order.
    """
    rows = batch.num_rows
    k = min(top_k, len(inputs))
    order = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :k]
    picked = np.take_along_axis(contributions, order, axis=1)
    keep = picked != 0.0
    lengths = np.zeros(rows, dtype="int32")
    lengths[explained] = keep.sum(axis=1)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype("int32")
    source = order[keep]
    row = np.repeat(np.flatnonzero(explained), keep.sum(axis=1))
    used = np.unique(source)
    texts = pa.concat_arrays(
        [pc.cast(batch.column(inputs[u]), pa.string()) for u in used] or [pa.array([], pa.string())]
    )
    slot = np.searchsorted(used, source)
    values = texts.take(pa.array(slot * rows + row, type=pa.int64()))
    features = pa.array(np.asarray(inputs, dtype=object)[source], type=pa.string())
    struct = pa.StructArray.from_arrays(
        [features, values, pa.array(picked[keep], type=pa.float64())],
        fields=list(REASON_ARROW_TYPE.value_type),
    )
    return pa.ListArray.from_arrays(
        pa.array(offsets), struct, type=REASON_ARROW_TYPE, mask=pa.array(~explained)
    )


@dataclass(frozen=True)
class ReasonsPlan:
    """What the model UDF needs to add `reasons`: how many per row and, for a linear model,
    the reference means computed on the driver (`linear_reference`)."""

    top_k: int
    reference: tuple[float, ...] | None = None


# The explainers of this Python worker, by the shipped model's cache key.
_EXPLAINERS: dict[str, Explainer] = {}


def batch_reasons(
    plan: ReasonsPlan | None,
    key: str,
    predictor: Predictor,
    frame: pd.DataFrame,
    batch: pa.RecordBatch,
    errors: Sequence[str | None],
) -> list[pa.Array]:
    """The `reasons` column of one scored batch, or nothing when reasons are off.

    Only the rows scored without error (`errors[i] is None`) are explained; the others get
    null. The explainer is built on the worker's first batch and kept under `key`.
    """
    if plan is None:
        return []
    explainer = _EXPLAINERS.get(key)
    if explainer is None:
        explainer = build_explainer(predictor, list(frame.columns), plan.reference)
        _EXPLAINERS[key] = explainer
    good = np.array([error is None for error in errors], dtype=bool)
    if good.all():
        values = explainer.explain(frame).values
    elif good.any():
        values = explainer.explain(frame.iloc[np.flatnonzero(good)].reset_index(drop=True)).values
    else:
        values = np.zeros((0, len(explainer.inputs)))
    return [reason_array(values, explainer.inputs, batch, good, plan.top_k)]
