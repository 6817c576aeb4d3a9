from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from scoring.core.errors import ModelError
from scoring.model.predictors import (
    BoosterPredictor,
    EstimatorPredictor,
    check_estimator,
    choose_outputs,
    class_index,
)
from scoring.model.tasks import to_arrow
from scoring.usecase.spec import ModelSpec

BINARY = ModelSpec("m", "champion", "binary")
MULTICLASS = ModelSpec("m", "champion", "multiclass")
REGRESSION = ModelSpec("m", "champion", "regression")
FRAME = pd.DataFrame({"x": [1.0, 2.0]})


class FixedClassifier:
    """A classifier with fixed classes and probabilities (columns in classes_ order)."""

    def __init__(self, classes: list, proba: list[list[float]]) -> None:
        self.classes_ = np.array(classes)
        self.proba = np.array(proba)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.proba


def test_binary_score_is_the_probability_of_the_positive_class_whatever_its_position():
    model = FixedClassifier([1, 0], [[0.9, 0.1], [0.2, 0.8]])
    out = EstimatorPredictor(model, BINARY).predict(FRAME)
    assert out.columns["score"].tolist() == [0.9, 0.2]
    assert out.columns["label"].tolist() == [1, 0]


def test_binary_positive_class_is_found_by_value_for_text_classes_and_the_threshold_applies():
    spec = ModelSpec("m", "champion", "binary", positive_class="churn", threshold=0.25)
    model = FixedClassifier(["stay", "churn"], [[0.7, 0.3], [0.8, 0.2]])
    out = EstimatorPredictor(model, spec).predict(FRAME)
    assert out.columns["score"].tolist() == [0.3, 0.2]
    assert out.columns["label"].tolist() == [1, 0]


@pytest.mark.parametrize("classes", [[0, 1], [0.0, 1.0], [False, True], ["0", "1"]])
def test_class_one_is_one_class_whatever_its_type(classes):
    assert class_index(classes, "1") == 1


def test_a_positive_class_the_model_lacks_names_the_setting():
    with pytest.raises(
        ModelError, match=r"do not include the positive class 'yes' .*positive_class"
    ):
        class_index(["a", "b"], "yes")


def test_multiclass_label_is_the_most_probable_class_with_its_probability_and_all_others():
    model = FixedClassifier(["low", "mid", "high"], [[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
    out = EstimatorPredictor(model, MULTICLASS).predict(FRAME)
    assert out.columns["label"].tolist() == ["mid", "low"]
    assert out.columns["score"].tolist() == [0.5, 0.6]
    arrays = to_arrow(out, "multiclass")
    assert arrays[2].to_pylist() == [
        [("low", 0.2), ("mid", 0.5), ("high", 0.3)],
        [("low", 0.6), ("mid", 0.1), ("high", 0.3)],
    ]
    assert arrays[2].type == pa.map_(pa.string(), pa.float64())


def test_regression_prediction_is_the_models_predict():
    model = LinearRegression().fit(pd.DataFrame({"x": [0.0, 1.0, 2.0]}), [1.0, 3.0, 5.0])
    out = EstimatorPredictor(model, REGRESSION).predict(FRAME)
    assert np.allclose(out.columns["prediction"], [3.0, 5.0])
    assert to_arrow(out, "regression")[0].type == pa.float64()


class FakeBooster:
    """A native booster: predict gives P(class 1) (binary) or a matrix (multiclass)."""

    def __init__(self, values: list) -> None:
        self.values = values

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.array(self.values)


def test_a_binary_booster_returns_the_probability_of_class_one():
    out = BoosterPredictor(FakeBooster([0.25, 0.75]), BINARY, "lightgbm").predict(FRAME)
    assert out.columns["score"].tolist() == [0.25, 0.75]
    assert out.columns["label"].tolist() == [0, 1]


def test_a_multiclass_booster_names_its_classes_by_index():
    matrix = [[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]]
    out = BoosterPredictor(FakeBooster(matrix), MULTICLASS, "lightgbm").predict(FRAME)
    assert (out.classes, out.columns["label"].tolist()) == (("0", "1", "2"), ["1", "0"])


def test_custom_binary_outputs_are_chosen_by_name_and_the_label_follows_the_threshold():
    output = pd.DataFrame({"label": [1, 1], "other": [5.0, 6.0], "probability": [0.3, 0.7]})
    chosen = choose_outputs(output, BINARY)
    assert chosen.columns["score"].tolist() == [0.3, 0.7]
    assert chosen.columns["label"].tolist() == [0, 1]


def test_a_missing_custom_score_is_kept_as_nan():
    chosen = choose_outputs(pd.DataFrame({"score": [0.5, 0.2, None]}), BINARY)
    assert chosen.columns["label"].tolist() == [1, 0, 0]
    assert np.isnan(chosen.columns["score"][2])


def test_custom_multiclass_outputs_come_from_mappings_per_row():
    output = pd.DataFrame({"probabilities": [{"a": 0.9, "b": 0.1}, {"b": 0.6, "a": 0.4}]})
    chosen = choose_outputs(output, MULTICLASS)
    assert chosen.classes == ("a", "b")
    assert chosen.columns["label"].tolist() == ["a", "b"]


def test_custom_regression_may_return_a_plain_array_or_a_named_column():
    assert choose_outputs(np.array([1.5, 2.5]), REGRESSION).columns["prediction"].tolist() == [
        1.5,
        2.5,
    ]
    named = choose_outputs(pd.DataFrame({"prediction": [4.0]}), REGRESSION)
    assert named.columns["prediction"].tolist() == [4.0]


def test_custom_outputs_without_what_the_task_needs_say_what_is_needed():
    with pytest.raises(ModelError, match=r"must return a DataFrame .*'score' or 'probability'"):
        choose_outputs(np.array([0.1, 0.2]), BINARY)
    with pytest.raises(ModelError, match="have no 'probabilities'"):
        choose_outputs(pd.DataFrame({"label": ["a"]}), MULTICLASS)


def test_a_regressor_cannot_serve_a_binary_use_case():
    model = LinearRegression().fit(pd.DataFrame({"x": [0.0, 1.0]}), [0.0, 1.0])
    with pytest.raises(ModelError, match=r"m1: task binary needs a classifier .*model\.task"):
        check_estimator(model, BINARY, "m1")


def test_a_classifier_cannot_serve_a_regression_use_case():
    model = LogisticRegression().fit(pd.DataFrame({"x": [0.0, 1.0]}), [0, 1])
    with pytest.raises(ModelError, match=r"a classifier .*cannot serve task regression"):
        check_estimator(model, REGRESSION, "m1")


def test_a_three_class_model_cannot_serve_a_binary_use_case():
    model = FixedClassifier(["a", "b", "c"], [[1, 0, 0]])
    with pytest.raises(ModelError, match="task binary needs 2 classes, the model has 3"):
        check_estimator(model, BINARY, "m1")
