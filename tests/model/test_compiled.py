"""Compiled tree models (Treelite + TL2cgen + gcc) against their native predictors.

Tiny models (few shallow trees) fitted here, on data with missing values, compiled once per
module; every output must equal the native one within 1e-12, or the parity gate must say
it does not.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from scoring.core.errors import ModelError, NotCompilable
from scoring.model.compiled import (
    COMPILED_FILE,
    Parity,
    artifact_key,
    compile_model,
    load_compiled,
    parity,
)
from scoring.model.predictors import BoosterPredictor, EstimatorPredictor, Predictor
from scoring.usecase.spec import ModelSpec

NAMES = ["amount", "tenure", "visits", "rate"]
ROWS = 600


def frame(seed: int, rows: int = ROWS) -> pd.DataFrame:
    """Four float inputs, a tenth of each missing, and a row of only NaN."""
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(rng.normal(size=(rows, len(NAMES))), columns=NAMES)
    data = data.mask(rng.random(data.shape) < 0.1)
    data.iloc[0] = np.nan
    return data


TRAIN, GOLDEN = frame(1), frame(2)
SIGNAL = TRAIN["amount"].fillna(0.5) + TRAIN["tenure"].fillna(-1.0)
BINARY_Y = (SIGNAL > 0).astype(int)
LABEL_Y = np.where(SIGNAL > 0.5, "high", np.where(SIGNAL < -0.5, "low", "mid"))
VALUE_Y = SIGNAL * 3.0 + 1.0


def spec(task: str, positive: str = "1") -> ModelSpec:
    return ModelSpec("model", "champion", task, positive_class=positive)


def sklearn_cases() -> list[tuple[str, object, object, str]]:
    """(id, estimator, target, task) for every supported scikit-learn tree ensemble."""
    return [
        (
            "hgb-binary",
            HistGradientBoostingClassifier(max_iter=8, random_state=0),
            BINARY_Y,
            "binary",
        ),
        (
            "hgb-multi",
            HistGradientBoostingClassifier(max_iter=5, random_state=0),
            LABEL_Y,
            "multiclass",
        ),
        (
            "hgb-reg",
            HistGradientBoostingRegressor(max_iter=8, random_state=0),
            VALUE_Y,
            "regression",
        ),
        (
            "hgb-poisson",
            HistGradientBoostingRegressor(loss="poisson", max_iter=8),
            VALUE_Y.abs(),
            "regression",
        ),
        ("rf-binary", RandomForestClassifier(5, max_depth=5, random_state=0), BINARY_Y, "binary"),
        ("rf-multi", RandomForestClassifier(5, max_depth=5, random_state=0), LABEL_Y, "multiclass"),
        ("rf-reg", RandomForestRegressor(5, max_depth=5, random_state=0), VALUE_Y, "regression"),
        ("et-binary", ExtraTreesClassifier(5, max_depth=6, random_state=0), BINARY_Y, "binary"),
        ("et-reg", ExtraTreesRegressor(5, max_depth=6, random_state=0), VALUE_Y, "regression"),
    ]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("compiled")


def compiled_of(native: Predictor, folder: Path, model_spec: ModelSpec) -> Predictor:
    return load_compiled(compile_model(native, NAMES, folder), model_spec)


@pytest.mark.parametrize("case", sklearn_cases(), ids=lambda c: c[0])
def test_a_scikit_learn_ensemble_compiles_to_its_native_outputs_with_missing_values(
    case, artifacts
):
    name, estimator, target, task = case
    estimator.fit(TRAIN, target)
    native = EstimatorPredictor(estimator, spec(task))
    compiled = compiled_of(native, artifacts / name, spec(task))

    gate = parity(native, compiled, GOLDEN, task)

    assert gate.ok, gate.describe()
    assert gate.rows == ROWS
    expected, actual = native.predict(GOLDEN), compiled.predict(GOLDEN)
    for column, values in expected.columns.items():
        if values.dtype.kind == "f":
            np.testing.assert_allclose(actual.columns[column], values, rtol=0, atol=1e-12)
        else:
            assert list(actual.columns[column]) == list(values)


def test_binary_score_is_the_positive_class_by_value_not_position(artifacts):
    model = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(TRAIN, BINARY_Y)
    native = EstimatorPredictor(model, spec("binary", positive="0"))
    compiled = compiled_of(native, artifacts / "positive-0", spec("binary", positive="0"))

    expected = model.predict_proba(GOLDEN)[:, 0]

    np.testing.assert_allclose(compiled.predict(GOLDEN).columns["score"], expected, atol=1e-12)


def test_gradient_boosting_matches_native_without_missing_values_and_refuses_them(artifacts):
    complete = TRAIN.fillna(0.0)
    golden = GOLDEN.fillna(0.25)
    for name, estimator, target, task in [
        ("gb-binary", GradientBoostingClassifier(n_estimators=6, max_depth=3), BINARY_Y, "binary"),
        (
            "gb-multi",
            GradientBoostingClassifier(n_estimators=4, max_depth=2),
            LABEL_Y,
            "multiclass",
        ),
        ("gb-reg", GradientBoostingRegressor(n_estimators=6, max_depth=3), VALUE_Y, "regression"),
    ]:
        estimator.fit(complete, target)
        native = EstimatorPredictor(estimator, spec(task))
        compiled = compiled_of(native, artifacts / name, spec(task))
        gate = parity(native, compiled, golden, task)
        assert gate.ok, f"{name}: {gate.describe()}"
        with pytest.raises(ModelError, match=r"missing values.*amount"):
            compiled.predict(GOLDEN)


def test_lightgbm_booster_and_classifier_compile_to_native_outputs(artifacts):
    lightgbm = pytest.importorskip("lightgbm")
    params = {"n_estimators": 6, "num_leaves": 7, "min_child_samples": 5, "verbose": -1}
    classifier = lightgbm.LGBMClassifier(**params).fit(TRAIN, LABEL_Y)
    native = EstimatorPredictor(classifier, spec("multiclass"))
    gate = parity(
        native,
        compiled_of(native, artifacts / "lgbm-multi", spec("multiclass")),
        GOLDEN,
        "multiclass",
    )
    assert gate.ok, gate.describe()

    booster = lightgbm.LGBMRegressor(**params).fit(TRAIN, VALUE_Y).booster_
    native = BoosterPredictor(booster, spec("regression"), "lightgbm")
    gate = parity(
        native,
        compiled_of(native, artifacts / "lgbm-reg", spec("regression")),
        GOLDEN,
        "regression",
    )
    assert gate.ok, gate.describe()

    booster = lightgbm.LGBMClassifier(**params).fit(TRAIN, BINARY_Y).booster_
    native = BoosterPredictor(booster, spec("binary"), "lightgbm")
    gate = parity(
        native, compiled_of(native, artifacts / "lgbm-binary", spec("binary")), GOLDEN, "binary"
    )
    assert gate.ok, gate.describe()


def test_xgboost_compiles_and_the_gate_measures_its_float32_difference(artifacts):
    xgboost = pytest.importorskip("xgboost")
    params = {"n_estimators": 20, "max_depth": 3, "learning_rate": 0.3}
    for name, model, target, task in [
        ("xgb-binary", xgboost.XGBClassifier(**params), BINARY_Y, "binary"),
        ("xgb-reg", xgboost.XGBRegressor(**params), VALUE_Y, "regression"),
    ]:
        model.fit(TRAIN, target)
        native = EstimatorPredictor(model, spec(task))
        compiled = compiled_of(native, artifacts / name, spec(task))
        gate = parity(native, compiled, GOLDEN, task)
        # XGBoost sums its trees in float32: within float32 precision of the native output;
        # where that is above 1e-12 the gate must say so (the caller then scores natively).
        assert gate.max_abs_diff < 1e-5 * (1 + float(np.abs(target).max())), gate.describe()
        assert gate.ok == (gate.max_abs_diff <= 1e-12 and gate.label_mismatches == 0)
        strict = parity(native, compiled, GOLDEN, task, tolerance=0.0)
        assert strict.ok == (strict.max_abs_diff == 0.0 and strict.label_mismatches == 0)


def test_xgboost_native_booster_reads_classes_as_positions(artifacts):
    xgboost = pytest.importorskip("xgboost")
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=3).fit(TRAIN, BINARY_Y)
    native = BoosterPredictor(model.get_booster(), spec("binary"), "xgboost")
    compiled = compiled_of(native, artifacts / "xgb-booster", spec("binary"))

    gate = parity(native, compiled, GOLDEN, "binary", tolerance=1e-6)

    assert gate.ok, gate.describe()


@pytest.mark.parametrize(
    ("model", "named"),
    [
        (LogisticRegression(), "LogisticRegression"),
        (
            HistGradientBoostingClassifier(max_iter=3, categorical_features=[0]),
            r"categorical_features \[0\]",
        ),
        (
            Pipeline([("log", FunctionTransformer(np.log1p)), ("trees", LogisticRegression())]),
            "LogisticRegression",
        ),
    ],
    ids=["linear", "hgb-categorical", "pipeline-of-linear"],
)
def test_a_model_it_does_not_handle_is_refused_by_name(model, named, tmp_path):
    inputs = TRAIN.fillna(0.0).abs()
    if "categorical" in named:
        inputs = inputs.assign(amount=(inputs["amount"] * 3).round())
    model.fit(inputs, BINARY_Y)

    with pytest.raises(NotCompilable, match=named):
        compile_model(EstimatorPredictor(model, spec("binary")), NAMES, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_unknown_preprocessing_step_is_refused(tmp_path):
    pytest.importorskip("scoring.model.vectorised")
    pipeline = Pipeline(
        [
            ("log", FunctionTransformer(np.log1p)),
            ("trees", HistGradientBoostingClassifier(max_iter=3)),
        ]
    ).fit(TRAIN.abs(), BINARY_Y)

    with pytest.raises(NotCompilable, match="FunctionTransformer"):
        compile_model(EstimatorPredictor(pipeline, spec("binary")), NAMES, tmp_path / "out")


def test_a_perturbed_artifact_fails_parity(artifacts, tmp_path):
    model = HistGradientBoostingClassifier(max_iter=8, random_state=0).fit(TRAIN, BINARY_Y)
    native = EstimatorPredictor(model, spec("binary"))
    folder = compile_model(native, NAMES, artifacts / "to-perturb")
    perturbed = tmp_path / "perturbed"
    shutil.copytree(folder, perturbed)
    description = json.loads((perturbed / COMPILED_FILE).read_text())
    description["post"]["alpha"] = 1.000001  # the sigmoid's slope, a hair off
    (perturbed / COMPILED_FILE).write_text(json.dumps(description))

    gate = parity(native, load_compiled(perturbed, spec("binary")), GOLDEN, "binary")

    assert not gate.ok
    assert 0 < gate.max_abs_diff < 1e-3
    assert "FAILED" in gate.describe() and f"{ROWS} rows" in gate.describe()


def test_the_compiled_artifact_holds_no_pickle_and_loads_from_a_fresh_folder(artifacts, tmp_path):
    model = RandomForestClassifier(4, max_depth=4, random_state=0).fit(TRAIN, LABEL_Y)
    native = EstimatorPredictor(model, spec("multiclass"))
    folder = compile_model(native, NAMES, artifacts / "round-trip", key="abc123")
    moved = tmp_path / "elsewhere"
    shutil.copytree(folder, moved)
    shutil.rmtree(folder)

    compiled = load_compiled(moved, spec("multiclass"))

    assert sorted(p.name for p in moved.iterdir()) == ["compiled.json", "model.so"]
    description = json.loads((moved / COMPILED_FILE).read_text())
    assert description["key"] == "abc123"
    assert description["classes"] == ["high", "low", "mid"]
    assert description["inputs"] == NAMES
    assert parity(native, compiled, GOLDEN, "multiclass").ok


def test_an_artifact_of_another_task_is_not_loaded(artifacts):
    model = RandomForestRegressor(3, max_depth=3, random_state=0).fit(TRAIN, VALUE_Y)
    folder = compile_model(EstimatorPredictor(model, spec("regression")), NAMES, artifacts / "reg")

    with pytest.raises(NotCompilable, match="task regression, not binary"):
        load_compiled(folder, spec("binary"))


def test_the_artifact_key_changes_with_any_model_file(tmp_path):
    model_dir = tmp_path / "model"
    (model_dir / "sub").mkdir(parents=True)
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    (model_dir / "sub" / "model.skops").write_bytes(b"\x00\x01trees")
    first = artifact_key(model_dir)

    (model_dir / "sub" / "model.skops").write_bytes(b"\x00\x02trees")
    changed = artifact_key(model_dir)
    (model_dir / "sub" / "model.skops").write_bytes(b"\x00\x01trees")

    assert len(first) == 32 and int(first, 16) >= 0
    assert changed != first
    assert artifact_key(model_dir) == first
    (model_dir / "sub" / "model.skops").rename(model_dir / "model.skops")
    assert artifact_key(model_dir) != first


def test_parity_counts_label_differences_and_one_sided_missing_scores():
    class Fixed:
        def __init__(self, scores):
            self.scores = np.asarray(scores, dtype="float64")

        def predict(self, frame):
            return EstimatorPredictor(_Proba(self.scores), spec("binary")).predict(frame)

    native, compiled = Fixed([0.2, 0.5, 0.9]), Fixed([0.2, 0.4999999, 0.9])
    small = GOLDEN.head(3)

    gate = parity(native, compiled, small, "binary")

    assert gate == Parity(
        rows=3, max_abs_diff=pytest.approx(1e-7), label_mismatches=1, tolerance=1e-12
    )
    assert not gate.ok
    assert parity(native, Fixed([0.2, np.nan, 0.9]), small, "binary").max_abs_diff == np.inf
    assert parity(Fixed([np.nan, 0.5, 0.9]), Fixed([np.nan, 0.5, 0.9]), small, "binary").ok


class _Proba:
    """A classifier whose P(class 1) is fixed per row."""

    classes_ = np.array([0, 1])

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.column_stack([1.0 - self.scores, self.scores])
