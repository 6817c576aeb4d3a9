"""The error budget's row guard, without Spark: bisection down to the rows that raise, NaN
and out-of-range outputs per task, the bisection limit, and the budget rule."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from scoring.model.predictors import from_probabilities, from_values
from scoring.model.tasks import Outputs, outputs_contract
from scoring.score.guard import error_text, guarded_predict, output_problems, rows_json
from scoring.score.step import ErrorBudget
from scoring.usecase.spec import ModelSpec

BINARY = ModelSpec("m", "champion", "binary")


def types(task: str) -> list[str]:
    return [c.type for c in outputs_contract(task).columns]


class RaisesOn:
    """A binary predictor: score x / 10, raising on any batch that holds a value of `bad`."""

    def __init__(self, bad: set[int]) -> None:
        self.bad = bad
        self.calls: list[int] = []  # rows per predict call

    def predict(self, frame: pd.DataFrame) -> Outputs:
        self.calls.append(len(frame))
        found = sorted(self.bad & set(frame["x"]))
        if found:
            raise ValueError(f"cannot score x={found[0]}\nsecond line")
        score = frame["x"].to_numpy(dtype="float64") / 10
        return Outputs({"score": score, "label": (score >= 0.5).astype("int32")})


def test_a_batch_that_raises_is_bisected_and_its_good_rows_still_scored():
    predictor = RaisesOn({3, 6})
    guarded = guarded_predict(
        predictor, pd.DataFrame({"x": range(8)}), "binary", types("binary"), 8
    )
    assert guarded.errors == [None, None, None, "ValueError: cannot score x=3 second line",
                              None, None, "ValueError: cannot score x=6 second line", None]  # fmt: skip
    score = guarded.arrays[0].to_pylist()
    assert score == [0.0, 0.1, 0.2, None, 0.4, 0.5, None, 0.7]
    assert guarded.arrays[1].to_pylist() == [0, 0, 0, None, 0, 1, None, 1]
    assert guarded.bad_rows == [3, 6]


def test_an_empty_batch_is_not_predicted():
    predictor = RaisesOn(set())
    guarded = guarded_predict(predictor, pd.DataFrame({"x": []}), "binary", types("binary"), 0)
    assert predictor.calls == [] and guarded.errors == []
    assert [len(a) for a in guarded.arrays] == [0, 0]


def test_a_good_batch_is_predicted_once():
    predictor = RaisesOn(set())
    guarded = guarded_predict(
        predictor, pd.DataFrame({"x": range(10)}), "binary", types("binary"), 0
    )
    assert predictor.calls == [10]
    assert guarded.bad_rows == []


def test_past_the_limit_a_failing_batch_is_marked_bad_whole_instead_of_bisected_to_the_end():
    predictor = RaisesOn(set(range(1024)))  # every row raises
    frame = pd.DataFrame({"x": range(1024)})
    guarded = guarded_predict(predictor, frame, "binary", types("binary"), 0)
    assert guarded.bad_rows == list(range(1024))
    # One path down to the first bad row, then each remaining half once: 2 * log2(1024) + 1.
    assert len(predictor.calls) == 21
    assert guarded.errors[0] == "ValueError: cannot score x=0 second line"
    assert guarded.errors[1023] == "ValueError: cannot score x=512 second line"


def test_binary_nan_and_probabilities_outside_0_1_are_bad_rows():
    score = np.array([0.2, np.nan, 1.5, -0.1, np.inf, 1.0])
    outputs = Outputs({"score": score, "label": (score >= 0.5).astype("int32")})
    assert output_problems(outputs, "binary") == [
        None, "nan", "out_of_range: 1.5", "out_of_range: -0.1", "out_of_range: inf", None,
    ]  # fmt: skip


def test_multiclass_any_class_probability_outside_0_1_or_nan_is_a_bad_row():
    spec = ModelSpec("m", "champion", "multiclass")
    matrix = np.array([[0.2, 0.8], [np.nan, 0.5], [1.2, -0.2], [0.5, 0.5]])
    outputs = from_probabilities(matrix, ["a", "b"], spec)
    assert output_problems(outputs, "multiclass") == [None, "nan", "out_of_range: 1.2", None]


def test_regression_predictions_must_be_finite_and_may_be_any_size():
    outputs = from_values(np.array([-1e9, np.nan, -np.inf, 3.0]))
    assert output_problems(outputs, "regression") == [None, "nan", "out_of_range: -inf", None]


def test_an_output_with_the_wrong_row_count_fails_its_rows():
    class Short:
        def predict(self, frame: pd.DataFrame) -> Outputs:
            return from_values(np.zeros(max(len(frame) - 1, 1)))

    guarded = guarded_predict(
        Short(), pd.DataFrame({"x": [1, 2]}), "regression", types("regression"), 5
    )
    assert guarded.errors == [None, None]  # each row alone gets its one value
    guarded = guarded_predict(
        Short(), pd.DataFrame({"x": [1, 2, 3, 4]}), "regression", types("regression"), 0
    )
    assert guarded.errors[0] is None


def test_error_text_is_one_bounded_line():
    text = error_text(RuntimeError("a\nb " + "x" * 1000))
    assert text.startswith("RuntimeError: a b xx") and "\n" not in text and len(text) == 500


def test_rows_json_keeps_values_typed_and_non_finite_numbers_as_text():
    batch = pa.RecordBatch.from_pydict(
        {"k": ["A", "B"], "d": [date(2026, 3, 1), None], "v": [1.5, float("nan")], "n": [1, 2]}
    )
    assert [json.loads(r) for r in rows_json(batch, ["d", "v", "n"], [1, 0])] == [
        {"d": None, "v": "nan", "n": 2},
        {"d": "2026-03-01", "v": 1.5, "n": 1},
    ]


@pytest.mark.parametrize(
    ("budget", "bad", "rows", "exceeded"),
    [
        (ErrorBudget(), 0, 100, False),
        (ErrorBudget(), 1, 100, True),  # the default: any bad row fails
        (ErrorBudget(5, 0.1), 5, 100, False),
        (ErrorBudget(5, 0.1), 6, 100, True),  # more than max_rows
        (ErrorBudget(5, 0.01), 2, 100, True),  # more than max_share
        (ErrorBudget(5, 0.0), 1, 100, True),  # a share of 0 allows none
        (ErrorBudget(0, 0.5), 1, 100, True),  # rows of 0 allows none
    ],
)
def test_the_budget_fails_past_either_limit(budget, bad, rows, exceeded):
    assert budget.exceeded(bad, rows) is exceeded


def test_a_multiclass_batch_is_bisected_with_its_probability_maps():
    spec = ModelSpec("m", "champion", "multiclass")

    class Tiers:
        def predict(self, frame: pd.DataFrame) -> Outputs:
            if (frame["x"] == 2).any():
                raise KeyError("x=2")
            high = frame["x"].to_numpy(dtype="float64") / 10
            return from_probabilities(np.column_stack([1 - high, high]), ["low", "high"], spec)

    frame = pd.DataFrame({"x": [1, 2, 3, 4]})
    guarded = guarded_predict(Tiers(), frame, "multiclass", types("multiclass"), 4)
    assert guarded.errors == [None, "KeyError: 'x=2'", None, None]
    label, score, maps = guarded.arrays
    assert label.to_pylist() == ["low", None, "low", "low"]
    scores = score.to_pylist()
    assert scores[1] is None and [scores[i] for i in (0, 2, 3)] == pytest.approx([0.9, 0.7, 0.6])
    assert maps.to_pylist()[1] is None
    assert dict(maps.to_pylist()[3]) == pytest.approx({"low": 0.6, "high": 0.4})
