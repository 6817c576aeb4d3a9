"""Reason codes: contributions add up to the model's own raw output, match XGBoost's and
LightGBM's own contributions and a brute-force Shapley computation, name source columns
through a pipeline, and become the top-k `reasons` column; other models are refused."""

from __future__ import annotations

from itertools import combinations
from math import factorial
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import xgboost
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeRegressor

from scoring.core.errors import ModelError
from scoring.model.predictors import BoosterPredictor, EstimatorPredictor, PyfuncPredictor
from scoring.model.reasons import (
    REASON_ARROW_TYPE,
    build_explainer,
    linear_reference,
    reason_array,
)
from scoring.usecase.spec import ModelSpec

BINARY = ModelSpec("m", "champion", "binary")
MULTICLASS = ModelSpec("m", "champion", "multiclass")
REGRESSION = ModelSpec("m", "champion", "regression")
COLUMNS = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """200 rows of 4 numbers (b missing in every 7th row), a binary and a 3-class label."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(200, 4)), columns=COLUMNS)
    frame.loc[::7, "b"] = np.nan
    binary = ((frame["a"] + 2 * frame["c"] + rng.normal(size=200)) > 0).astype(int).to_numpy()
    three = np.digitize(frame["a"] + frame["d"], [-0.5, 0.5])
    return frame, binary, three


def explained(model: Any, spec: ModelSpec, frame: pd.DataFrame, reference: Any = None) -> Any:
    return build_explainer(EstimatorPredictor(model, spec), list(frame.columns), reference).explain(
        frame
    )


def test_hist_gradient_boosting_classifier_adds_up_to_its_log_odds(data):
    frame, binary, _ = data
    model = HistGradientBoostingClassifier(max_iter=15, random_state=0).fit(frame, binary)
    result = explained(model, BINARY, frame)
    np.testing.assert_allclose(result.raw, model.decision_function(frame), atol=1e-6)
    assert result.values.shape == (200, 4)


def test_hist_gradient_boosting_regressor_adds_up_to_its_prediction(data):
    frame, _, _ = data
    target = 3 * frame["a"].to_numpy() - frame["d"].to_numpy()
    model = HistGradientBoostingRegressor(max_iter=15, random_state=0).fit(frame, target)
    result = explained(model, REGRESSION, frame)
    np.testing.assert_allclose(result.raw, model.predict(frame), atol=1e-6)


def test_random_forest_adds_up_to_the_positive_class_probability(data):
    frame, binary, _ = data
    filled = frame.fillna(0.0)
    model = RandomForestClassifier(n_estimators=8, max_depth=4, random_state=0)
    model.fit(filled, binary)
    result = explained(model, BINARY, filled)
    np.testing.assert_allclose(result.raw, model.predict_proba(filled)[:, 1], atol=1e-6)


def test_the_first_class_as_positive_class_explains_its_own_log_odds(data):
    frame, binary, _ = data
    model = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(frame, binary)
    spec = ModelSpec("m", "champion", "binary", positive_class="0")
    result = explained(model, spec, frame)
    np.testing.assert_allclose(result.raw, -model.decision_function(frame), atol=1e-6)


def test_multiclass_explains_each_rows_predicted_class(data):
    frame, _, three = data
    model = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(frame, three)
    result = explained(model, MULTICLASS, frame)
    raw = model.decision_function(frame)
    predicted = np.searchsorted(model.classes_, model.predict(frame))
    np.testing.assert_allclose(result.raw, raw[np.arange(200), predicted], atol=1e-6)


def test_logistic_regression_terms_are_measured_from_the_reference_means(data):
    frame, binary, _ = data
    filled = frame.fillna(0.0)
    model = LogisticRegression().fit(filled, binary)
    predictor = EstimatorPredictor(model, BINARY)
    reference = linear_reference(predictor, COLUMNS, filled.iloc[:50])
    np.testing.assert_allclose(reference, filled.iloc[:50].mean().to_numpy())
    result = build_explainer(predictor, COLUMNS, reference).explain(filled)
    np.testing.assert_allclose(result.raw, model.decision_function(filled), atol=1e-6)
    row = filled.iloc[0].to_numpy()
    np.testing.assert_allclose(result.values[0], model.coef_[0] * (row - reference), atol=1e-12)


def test_xgboost_contributions_are_its_own_pred_contribs(data):
    frame, binary, _ = data
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 2}, xgboost.DMatrix(frame, label=binary), 5
    )
    result = build_explainer(BoosterPredictor(booster, BINARY, "xgboost"), COLUMNS).explain(frame)
    own = booster.predict(xgboost.DMatrix(frame), pred_contribs=True)
    np.testing.assert_allclose(result.values, own[:, :-1], atol=1e-7)
    margin = booster.predict(xgboost.DMatrix(frame), output_margin=True)
    np.testing.assert_allclose(result.raw, margin, atol=1e-6)


def test_xgboost_multiclass_explains_the_predicted_class(data):
    frame, _, three = data
    model = xgboost.XGBClassifier(n_estimators=4, max_depth=2).fit(frame, three)
    result = explained(model, MULTICLASS, frame)
    margins = model.get_booster().predict(xgboost.DMatrix(frame), output_margin=True)
    predicted = model.predict(frame)
    np.testing.assert_allclose(result.raw, margins[np.arange(200), predicted], atol=1e-6)


def test_lightgbm_contributions_are_its_own_pred_contrib(data):
    frame, binary, _ = data
    booster = lightgbm.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 4},
        lightgbm.Dataset(frame, label=binary),
        5,
    )
    result = build_explainer(BoosterPredictor(booster, BINARY, "lightgbm"), COLUMNS).explain(frame)
    own = np.asarray(booster.predict(frame, pred_contrib=True))
    np.testing.assert_allclose(result.values, own[:, :-1], atol=1e-12)
    np.testing.assert_allclose(result.raw, booster.predict(frame, raw_score=True), atol=1e-6)


def shapley_by_brute_force(tree: Any, row: np.ndarray) -> np.ndarray:
    """Exact Shapley values of one row: every feature subset S, with the tree's conditional
    expectation given S (follow the row's branch on a feature in S, else average both
    children weighted by their training samples)."""
    nodes = tree.tree_

    def expectation(node: int, known: frozenset[int]) -> float:
        left, right = nodes.children_left[node], nodes.children_right[node]
        if left == -1:
            return float(nodes.value[node][0][0])
        feature = nodes.feature[node]
        if feature in known:
            child = left if row[feature] <= nodes.threshold[node] else right
            return expectation(child, known)
        weights = nodes.weighted_n_node_samples
        total = weights[left] + weights[right]
        return (
            weights[left] * expectation(left, known) + weights[right] * expectation(right, known)
        ) / total

    width = len(row)
    values = np.zeros(width)
    for feature in range(width):
        others = [f for f in range(width) if f != feature]
        for size in range(width):
            for subset in combinations(others, size):
                weight = factorial(size) * factorial(width - size - 1) / factorial(width)
                known = frozenset(subset)
                gain = expectation(0, known | {feature}) - expectation(0, known)
                values[feature] += weight * gain
    return values


def test_tree_contributions_equal_a_brute_force_shapley_computation():
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(60, 3)), columns=["x", "y", "z"])
    target = frame["x"] * 2 + (frame["y"] > 0) * frame["z"]
    tree = DecisionTreeRegressor(max_depth=3, random_state=0).fit(frame, target)
    result = explained(tree, REGRESSION, frame.iloc[:10])
    for position in range(10):
        expected = shapley_by_brute_force(tree, frame.iloc[position].to_numpy())
        np.testing.assert_allclose(result.values[position], expected, atol=1e-9)


def mixed_frame() -> tuple[pd.DataFrame, np.ndarray]:
    """Text and numeric inputs with missing values; `amount` and `amount_sum` share a prefix."""
    rng = np.random.default_rng(11)
    rows = 300
    segment = rng.choice(np.array(["smb", "consumer", "enterprise", None], dtype=object), rows)
    frame = pd.DataFrame(
        {
            "segment": pd.Series(segment, dtype=object).where(pd.notna(segment), np.nan),
            "amount": rng.normal(size=rows),
            "amount_sum": rng.normal(size=rows),
        }
    )
    frame.loc[::6, "amount"] = np.nan
    label = ((frame["amount"].fillna(0) > 0) | (frame["segment"] == "smb")).astype(int)
    return frame, label.to_numpy()


def imputer_onehot_pipeline(final: Any) -> Pipeline:
    text = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="unknown")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    numbers = SimpleImputer(strategy="median", add_indicator=True)
    prepare = ColumnTransformer(
        [("text", text, ["segment"]), ("numbers", numbers, ["amount", "amount_sum"])]
    )
    return Pipeline([("prepare", prepare), ("model", final)])


def test_a_pipelines_one_hot_and_imputer_columns_are_summed_under_their_source_column():
    frame, label = mixed_frame()
    model = imputer_onehot_pipeline(LogisticRegression()).fit(frame, label)
    predictor = EstimatorPredictor(model, BINARY)
    inputs = list(frame.columns)
    reference = linear_reference(predictor, inputs, frame)
    result = build_explainer(predictor, inputs, reference).explain(frame)
    np.testing.assert_allclose(result.raw, model.decision_function(frame), atol=1e-6)
    # By hand: the matrix is 4 one-hot columns of segment, amount, amount_sum, then the
    # missing indicator of amount (only amount has missing values).
    matrix = model[:-1].transform(frame)
    terms = model[-1].coef_[0] * (matrix - matrix.mean(axis=0))
    np.testing.assert_allclose(result.values[:, 0], terms[:, :4].sum(axis=1), atol=1e-9)
    np.testing.assert_allclose(result.values[:, 1], terms[:, 4] + terms[:, 6], atol=1e-9)
    np.testing.assert_allclose(result.values[:, 2], terms[:, 5], atol=1e-9)


def test_the_demo_like_pipeline_with_boosted_trees_adds_up_to_its_log_odds():
    frame, label = mixed_frame()
    model = imputer_onehot_pipeline(HistGradientBoostingClassifier(max_iter=10)).fit(frame, label)
    result = explained(model, BINARY, frame)
    np.testing.assert_allclose(result.raw, model.decision_function(frame), atol=1e-6)


def test_a_custom_pyfunc_is_refused_naming_the_setting():
    predictor = PyfuncPredictor(object(), BINARY)
    with pytest.raises(ModelError, match=r"custom python_function.*scoring\.reasons\.top_k"):
        build_explainer(predictor, COLUMNS)


def test_a_model_no_explainer_knows_is_refused(data):
    frame, binary, _ = data
    model = KNeighborsClassifier(n_neighbors=3).fit(frame.fillna(0.0), binary)
    with pytest.raises(ModelError, match=r"KNeighborsClassifier: no reason codes.*top_k"):
        build_explainer(EstimatorPredictor(model, BINARY), COLUMNS)


def reasons_of(contributions: list[list[float]], explained_rows: list[bool], top_k: int) -> list:
    batch = pa.RecordBatch.from_pydict(
        {
            "tenure": pa.array([5, None, 7], pa.int64()),
            "segment": pa.array(["smb", "consumer", None]),
            "amount": pa.array([1.5, 2.0, None], pa.float64()),
            "active": pa.array([True, False, None]),
        }
    )
    array = reason_array(
        np.array(contributions, dtype="float64").reshape(-1, 4),
        ["tenure", "segment", "amount", "active"],
        batch,
        np.array(explained_rows),
        top_k,
    )
    assert array.type == REASON_ARROW_TYPE
    return array.to_pylist()


def test_reasons_are_the_top_k_by_absolute_contribution_with_the_rows_values():
    rows = reasons_of([[0.1, -0.5, 0.0, 0.3], [0.2, 0.2, -0.05, 0.0]], [True, True, False], 3)
    assert rows[0] == [
        {"feature": "segment", "value": "smb", "contribution": -0.5},
        {"feature": "active", "value": "true", "contribution": 0.3},
        {"feature": "tenure", "value": "5", "contribution": 0.1},
    ]
    # A tie keeps input order; a null input value stays null.
    assert rows[1] == [
        {"feature": "tenure", "value": None, "contribution": 0.2},
        {"feature": "segment", "value": "consumer", "contribution": 0.2},
        {"feature": "amount", "value": "2", "contribution": -0.05},
    ]
    assert rows[2] is None  # a row not explained (a bad row) has null reasons


def test_k_bounds_the_reasons_and_a_zero_contribution_is_no_reason():
    rows = reasons_of([[0.0, 0.0, 0.4, 0.0]] * 3, [True, True, True], 2)
    assert rows[0] == [{"feature": "amount", "value": "1.5", "contribution": 0.4}]
    assert rows[2] == [{"feature": "amount", "value": None, "contribution": 0.4}]
    assert [len(r) for r in reasons_of([[1.0, 2.0, 3.0, 4.0]] * 3, [True] * 3, 2)] == [2, 2, 2]
