"""One Arrow batch through the model, with every bad row told apart from the good ones.

A batch whose `predict` raises is bisected: each half is predicted again, down to the
single rows that raise, so the good rows of the batch are still scored in the same pass.
Outputs that no task allows are bad rows too: NaN (`nan`), and a value outside the task's
range (`out_of_range: <value>`): binary `score` and every multiclass probability in [0, 1],
a regression `prediction` finite. A bad row keeps null outputs and carries its error text;
the score step keeps it out of the scored tables (the error budget, `scoring.score.step`).

Bisecting costs about two predicts per bad row per halving; once a batch has more bad rows
than the step may have at all (`limit`), the step fails anyway, so the rest of the batch's
failing parts are marked bad whole, with their own error, instead of being bisected further.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from scoring.model.predictors import Predictor
from scoring.model.tasks import BINARY, MULTICLASS, Outputs, to_arrow

#: How the errors of rows whose outputs (not the model's call) are bad begin.
OUTPUT_PROBLEMS = ("nan", "out_of_range: ")
#: The longest error text kept per row (an exception message can be a page).
MAX_ERROR_CHARS = 500
_ARROW_TYPES = {
    "double": pa.float64(),
    "int": pa.int32(),
    "string": pa.string(),
    "map<string,double>": pa.map_(pa.string(), pa.float64()),
}


@dataclass(frozen=True)
class Guarded:
    """A batch's output columns (contract order) and, per row, its error or None."""

    arrays: list[pa.Array]
    errors: list[str | None]

    @property
    def bad_rows(self) -> list[int]:
        """The positions of the rows with an error."""
        if self.errors.count(None) == len(self.errors):  # the usual batch: no Python loop
            return []
        return [i for i, error in enumerate(self.errors) if error is not None]


@dataclass
class _Found:
    rows: int = 0  # bad rows so far: past the limit, failing parts are no longer bisected


def guarded_predict(
    predictor: Predictor,
    frame: pd.DataFrame,
    task: str,
    output_types: Sequence[str],
    limit: int,
) -> Guarded:
    """Predict `frame`; rows that raise or whose outputs are out of range get an error.

    `output_types` are the task's output column types (contract order); `limit` is the
    number of bad rows past which a batch is no longer bisected (module docstring).
    """
    arrays, errors = _predict(predictor, frame, task, output_types, limit, _Found())
    return Guarded(arrays, errors)


def _predict(
    predictor: Predictor,
    frame: pd.DataFrame,
    task: str,
    output_types: Sequence[str],
    limit: int,
    state: _Found,
) -> tuple[list[pa.Array], list[str | None]]:
    rows = len(frame)
    if rows == 0:  # nothing to predict (and nothing to bisect)
        return [pa.nulls(0, _ARROW_TYPES[t]) for t in output_types], []
    try:
        outputs = predictor.predict(frame)
        if len(outputs) != rows:
            raise ValueError(f"the model returned {len(outputs)} rows for the {rows} it was given")
        arrays = to_arrow(outputs, task)
        errors = output_problems(outputs, task)
    except Exception as exc:  # the model's own failure: isolate the rows that cause it
        if rows == 1 or state.rows > limit:
            state.rows += rows
            return [pa.nulls(rows, _ARROW_TYPES[t]) for t in output_types], [error_text(exc)] * rows
        half = rows // 2
        left = _predict(predictor, _part(frame, 0, half), task, output_types, limit, state)
        right = _predict(predictor, _part(frame, half, rows), task, output_types, limit, state)
        joined = [pa.concat_arrays([a, b]) for a, b in zip(left[0], right[0], strict=True)]
        return joined, left[1] + right[1]
    state.rows += len(errors) - errors.count(None)
    return arrays, errors


def _part(frame: pd.DataFrame, start: int, stop: int) -> pd.DataFrame:
    """Rows `start:stop`, indexed from 0 like a whole batch."""
    return frame.iloc[start:stop].reset_index(drop=True)


def error_text(exc: BaseException) -> str:
    """An exception as one line: its type and message, bounded."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}"[:MAX_ERROR_CHARS]


def output_problems(outputs: Outputs, task: str) -> list[str | None]:
    """Per row, why its outputs cannot be a score (`nan`, `out_of_range: <value>`), or None."""
    if task == MULTICLASS:
        matrix = np.asarray(outputs.probabilities, dtype="float64").reshape(len(outputs), -1)
        values = np.column_stack([matrix, np.asarray(outputs.columns["score"], dtype="float64")])
        allowed = (0.0, 1.0)
    elif task == BINARY:
        values = np.asarray(outputs.columns["score"], dtype="float64").reshape(-1, 1)
        allowed = (0.0, 1.0)
    else:
        values = np.asarray(outputs.columns["prediction"], dtype="float64").reshape(-1, 1)
        allowed = (-math.inf, math.inf)
    nan = np.isnan(values)
    outside = ~nan & ((values < allowed[0]) | (values > allowed[1]) | np.isinf(values))
    bad = np.flatnonzero(nan.any(axis=1) | outside.any(axis=1))
    problems: list[str | None] = [None] * len(values)
    for row in bad:  # only the bad rows are looked at one by one
        if nan[row].any():
            problems[row] = "nan"
        else:
            problems[row] = f"out_of_range: {float(values[row][outside[row]][0])!r}"
    return problems


def rows_json(batch: pa.RecordBatch, columns: Sequence[str], rows: Sequence[int]) -> list[str]:
    """The values of `columns` in each of `rows` as a JSON object (non-finite numbers as
    text, dates and other non-JSON values as their text)."""
    picked = batch.select(list(columns)).take(pa.array(rows, type=pa.int64())).to_pylist()
    return [json.dumps({k: _json_value(v) for k, v in row.items()}, default=str) for row in picked]


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
