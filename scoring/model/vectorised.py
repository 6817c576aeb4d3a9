"""Vectorised preprocessing: the fitted steps in front of a compiled tree ensemble, redone on
whole columns with numpy / pandas, with the same output as their own `transform`, bit for bit.

The compiled tree path (`scoring.model.compiled`) wants a float64 matrix, but models are often
a scikit-learn `Pipeline` whose first steps turn the bound input frame (strings as objects with
NaN for null, numbers as floats with NaN) into that matrix. Those steps' own `transform` spends
most of its time validating and building sparse matrices; `vectorise` reads their fitted state
once into a few column operations (`scoring.model.column_ops`, shipped as JSON by
`scoring.model.column_json`) that run per batch in a
fraction of the time and write one C-contiguous float64 matrix.

Handled exactly: `ColumnTransformer` (columns by name or position, "passthrough", "drop",
remainder, sparse output densified), nested `Pipeline`s, `SimpleImputer` (any strategy,
missing values NaN or None, without `add_indicator`), `OneHotEncoder` (unknown categories an
error naming the column or all zeros, `drop`, no infrequent categories), `OrdinalEncoder` (no
infrequent categories), `StandardScaler` and `MinMaxScaler`. Anything else (a
`FunctionTransformer`, a custom step, an option not listed) raises `NotCompilable` naming the
step by its path in the pipeline and its class: the native model scores instead.

Example::

    prepare = vectorise(model[:-1], list(frame.columns))
    matrix = prepare.transform(frame)  # == model[:-1].transform(frame), densified
    again = Vectorised.from_json(prepare.to_json())  # shipped as JSON, no pickle
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from scoring.core.errors import NotCompilable
from scoring.model.column_json import op_from_json, op_to_json, scalar_to_json
from scoring.model.column_ops import (
    Column,
    Encode,
    Impute,
    Item,
    OneHot,
    Op,
    Scale,
    Select,
    chain_width,
    missing_mask,
    run,
)

#: The version of `Vectorised.to_json`'s form; `from_json` refuses any other.
FORMAT = 1
_ONEHOT_ZEROS = ("ignore", "infrequent_if_exist", "warn")  # unknown → all zeros (no infrequent)


class Vectorised:
    """Fitted preprocessing as column operations: `transform` gives the float64 matrix.

    `inputs` are the frame's columns it reads (by name), `width` the matrix's columns.
    """

    def __init__(self, inputs: Sequence[str], steps: Sequence[Op]) -> None:
        self.inputs = tuple(inputs)
        self.steps = tuple(steps)
        self.width = chain_width(self.steps, len(self.inputs))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The (rows, width) C-contiguous float64 matrix of `frame` (the bound model inputs).

        Raises ValueError naming the column for a missing input column, an unknown category
        where the encoder errs on them, or text that reaches the matrix.
        """
        absent = [name for name in self.inputs if name not in frame.columns]
        if absent:
            raise ValueError(f"vectorised preprocessing: the frame has no column(s) {absent}")
        items: list[Item] = [Column(n, np.asarray(frame[n].to_numpy())) for n in self.inputs]
        return _matrix(run(self.steps, items), len(frame), self.width)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types only (no pickle); categories and fill values keep their type."""
        return {
            "format": FORMAT,
            "inputs": list(self.inputs),
            "width": self.width,
            "steps": [op_to_json(step) for step in self.steps],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Vectorised:
        """The preprocessing `to_json` wrote."""
        if data.get("format") != FORMAT:
            raise ValueError(
                f"vectorised preprocessing: JSON format {data.get('format')!r}, expected {FORMAT}"
            )
        made = cls(data["inputs"], [op_from_json(step) for step in data["steps"]])
        if made.width != data["width"]:
            raise ValueError(
                f"vectorised preprocessing: JSON says width {data['width']}, its steps make "
                f"{made.width}"
            )
        return made


def vectorise(step: Any, names: Sequence[str]) -> Vectorised:
    """The vectorised form of fitted preprocessing `step` for a frame with columns `names`.

    `step`: a `Pipeline` of the steps before the final estimator, a `ColumnTransformer`, a
    single transformer, or "passthrough" / None (the frame's columns as they are).
    Raises `NotCompilable` naming the step (its path and class) and why, for anything not
    handled exactly.
    """
    names = list(names)
    ops, _ = _compile(step, names, len(names), "preprocessing")
    return Vectorised(names, ops)


def _compile(step: Any, names: list[str] | None, n_in: int, path: str) -> tuple[list[Op], int]:
    """The operations of one fitted step and how many columns they make of `n_in`."""
    if step is None or (isinstance(step, str) and step == "passthrough"):
        return [], n_in
    kind = type(step).__name__
    if kind == "Pipeline" and _is_sklearn(step):
        ops: list[Op] = []
        for name, inner in step.steps:
            more, n_in = _compile(inner, names, n_in, f"{path}/{name}")
            ops += more
            names = names if not more else None
        return ops, n_in
    builders = {
        "ColumnTransformer": _column_transformer,
        "SimpleImputer": _imputer,
        "OneHotEncoder": _encoder,
        "OrdinalEncoder": _encoder,
        "StandardScaler": _scaler,
        "MinMaxScaler": _scaler,
    }
    if kind not in builders or not _is_sklearn(step):
        raise _refusal(path, step, "not a step the vectorised preprocessing handles")
    fitted = getattr(step, "n_features_in_", None)
    if fitted is not None and fitted != n_in and kind != "ColumnTransformer":
        raise _refusal(path, step, f"fitted on {fitted} columns, given {n_in}")
    try:
        op = builders[kind](step, names, n_in, path)
    except AttributeError as exc:  # a fitted attribute missing: not fitted, or another version
        raise _refusal(path, step, f"not fitted as expected ({exc})") from exc
    return [op], op.width(n_in)


def _is_sklearn(step: Any) -> bool:
    return type(step).__module__.startswith("sklearn.")


def _refusal(path: str, step: Any, why: str) -> NotCompilable:
    return NotCompilable(
        f"preprocessing step '{path}' ({type(step).__name__}) is not compiled: {why}; "
        "the native model scores instead"
    )


def _column_transformer(step: Any, names: list[str] | None, n_in: int, path: str) -> Op:
    """Each fitted branch: its columns' positions in the input and its operations."""
    declared = {name: inner for name, inner, _ in step.transformers}
    declared["remainder"] = step.remainder
    fitted_names = getattr(step, "feature_names_in_", None)
    if fitted_names is None and step.n_features_in_ != n_in:
        raise _refusal(path, step, f"fitted on {step.n_features_in_} columns, given {n_in}")
    branches = []
    for name, inner, _ in step.transformers_:
        positions = list(step._transformer_to_input_indices.get(name, []))
        if (isinstance(inner, str) and inner == "drop") or not positions:
            continue
        picked = _positions(step, path, names, positions)
        chosen = [names[p] for p in picked] if names is not None else None
        own = declared.get(name)
        if isinstance(own, str) and own == "passthrough":
            inner = "passthrough"
        ops, _ = _compile(inner, chosen, len(picked), f"{path}/{name}")
        branches.append((picked, ops))
    return Select(branches)


def _positions(step: Any, path: str, names: list[str] | None, positions: list[int]) -> list[int]:
    """A branch's columns as positions in the transformer's input (by name when fitted on
    named columns, as scikit-learn selects them from a frame)."""
    fitted_names = getattr(step, "feature_names_in_", None)
    if fitted_names is None:
        return positions
    if names is None:
        raise _refusal(path, step, "it selects columns by name from an unnamed matrix")
    wanted = [str(fitted_names[p]) for p in positions]
    absent = [w for w in wanted if w not in names]
    if absent:
        raise _refusal(path, step, f"the frame has no column(s) {absent}")
    return [names.index(w) for w in wanted]


def _imputer(step: Any, names: list[str] | None, n_in: int, path: str) -> Op:
    """SimpleImputer: the fitted statistics in the fit dtype, and which columns stay."""
    if step.add_indicator:
        raise _refusal(path, step, "add_indicator=True is not handled")
    missing = step.missing_values
    if not (missing is None or (isinstance(missing, float) and np.isnan(missing))):
        raise _refusal(path, step, f"missing_values={missing!r} (only NaN or None)")
    statistics = np.asarray(step.statistics_)
    keep = np.ones(n_in, dtype=bool)
    if not step.keep_empty_features:
        keep = ~missing_mask(statistics, np.nan)
    fill = statistics.copy()
    if fill.dtype.kind != "O":
        fill[~keep] = 0
    fit_dtype = np.dtype(step._fit_dtype)
    _check_json(path, step, fill.tolist())
    return Impute(
        missing=missing,
        floats=step.strategy not in ("most_frequent", "constant"),
        fit_dtype=fit_dtype,
        fill=fill.astype(fit_dtype),
        keep=keep,
    )


def _encoder(step: Any, names: list[str] | None, n_in: int, path: str) -> Op:
    """OneHotEncoder / OrdinalEncoder: categories, unknown handling, drop, missing codes."""
    if getattr(step, "_infrequent_enabled", False) and any(
        found is not None for found in step.infrequent_categories_
    ):
        raise _refusal(path, step, "infrequent categories (min_frequency / max_categories)")
    categories = [np.asarray(c) for c in step.categories_]
    for values in categories:
        _check_json(path, step, values.tolist())
    if type(step).__name__ == "OneHotEncoder":
        drop = getattr(step, "_drop_idx_after_grouping", None)
        op = Encode(
            kind="onehot",
            categories=categories,
            unknown_error=step.handle_unknown == "error",
            dtype=np.dtype(step.dtype),
            drop=[None] * n_in if drop is None else [None if d is None else int(d) for d in drop],
        )
        if step.handle_unknown not in (*_ONEHOT_ZEROS, "error"):
            raise _refusal(path, step, f"handle_unknown={step.handle_unknown!r}")
        if op.width(n_in) != sum(step._n_features_outs):
            raise _refusal(path, step, "its output columns do not follow its categories")
        return op
    missing_at = dict(step._missing_indices)
    _check_json(path, step, [step.unknown_value, step.encoded_missing_value])
    return Encode(
        kind="ordinal",
        categories=categories,
        unknown_error=step.handle_unknown == "error",
        dtype=np.dtype(step.dtype),
        unknown_value=step.unknown_value,
        missing_value=step.encoded_missing_value,
        missing_at=[missing_at.get(i) for i in range(n_in)],
    )


def _scaler(step: Any, names: list[str] | None, n_in: int, path: str) -> Op:
    """StandardScaler (mean, scale as configured) or MinMaxScaler (scale, min, clip)."""
    if type(step).__name__ == "StandardScaler":
        mean = step.mean_ if step.with_mean else None
        scale = step.scale_ if step.with_std else None
        return Scale("standard", _floats(mean), _floats(scale))
    low, high = step.feature_range
    clip = (low, high) if step.clip else None
    _check_json(path, step, [low, high])
    return Scale("minmax", _floats(step.scale_), _floats(step.min_), clip)


def _floats(values: Any) -> np.ndarray | None:
    return None if values is None else np.asarray(values, dtype="float64")


def _check_json(path: str, step: Any, values: list[Any]) -> None:
    """Refuse a fitted value (a category, a fill value) that has no plain-JSON form."""
    for value in values:
        try:
            scalar_to_json(value)
        except TypeError as exc:
            raise _refusal(path, step, str(exc)) from exc


def _matrix(items: list[Item], rows: int, width: int) -> np.ndarray:
    """The columns side by side in one C-contiguous float64 matrix; one-hot blocks written
    as their 1s only (the matrix starts as zeros)."""
    out = np.zeros((rows, width), dtype="float64")
    flat = out.reshape(-1)
    at = 0
    for item in items:
        if isinstance(item, OneHot):
            hit = np.flatnonzero(item.codes >= 0)
            flat[hit * width + at + item.codes[hit]] = 1.0
            at += item.width
            continue
        if item.values.dtype.kind not in "fiub":
            raise ValueError(
                f"vectorised preprocessing: column '{item.name}' reaches the model's matrix as "
                f"{item.values.dtype} values, not numbers"
            )
        out[:, at] = item.values
        at += 1
    if at != width:
        raise ValueError(f"vectorised preprocessing: {at} columns made, {width} expected")
    return out
