"""Loading downloaded model folders: skops with reviewed types only, native XGBoost and
LightGBM files, and the task check at load. Models are saved with MLflow's own
`save_model` into temporary folders (no registry needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.lightgbm
import mlflow.pyfunc
import mlflow.sklearn
import mlflow.xgboost
import numpy as np
import pandas as pd
import pytest
from mlflow.pyfunc import PythonModel
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from scoring.core.errors import ModelError
from scoring.model.loading import load_predictor, model_flavors
from scoring.usecase.spec import ModelSpec

BINARY = ModelSpec("m", "champion", "binary")
TRUSTING = ModelSpec("m", "champion", "binary", allow_pickled_code=True)
MULTICLASS = ModelSpec("m", "champion", "multiclass")
REGRESSION = ModelSpec("m", "champion", "regression")
RNG = np.random.default_rng(4)
X = pd.DataFrame({"a": RNG.normal(size=200), "b": RNG.normal(size=200)})
Y = (X["a"] + 0.3 * X["b"] > 0).astype(int)


def test_model_flavors_reads_the_mlmodel_file_without_mlflow(tmp_path):
    (tmp_path / "MLmodel").write_text("flavors:\n  sklearn: {serialization_format: skops}\n")
    assert model_flavors(tmp_path) == {"sklearn": {"serialization_format": "skops"}}


def test_model_flavors_names_a_folder_without_an_mlmodel_file(tmp_path):
    with pytest.raises(ModelError, match="MLmodel: not a readable MLflow MLmodel file"):
        model_flavors(tmp_path)


def save_sklearn(model, path, fmt="skops", trusted=None):
    mlflow.sklearn.save_model(
        model, str(path), serialization_format=fmt, skops_trusted_types=trusted or []
    )
    return path


def test_a_random_forest_loads_with_the_engines_reviewed_types(tmp_path):
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, Y)
    folder = save_sklearn(forest, tmp_path / "m", trusted=["sklearn.tree._tree.Tree"])
    out = load_predictor(folder, BINARY).predict(X.head(3))
    assert np.allclose(out.columns["score"], forest.predict_proba(X.head(3))[:, 1])


class Marker:
    """A type of the test's own, in no reviewed list."""


MARKER = f"{__name__}.Marker"


def test_a_type_nobody_reviewed_is_refused_naming_the_setting(tmp_path):
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, Y)
    forest.extra_ = Marker()
    folder = save_sklearn(forest, tmp_path / "m", trusted=["sklearn.tree._tree.Tree", MARKER])
    with pytest.raises(ModelError, match=r"skops types \[.*Marker'\] .*model\.skops_trusted_types"):
        load_predictor(folder, BINARY)
    trusting = ModelSpec("m", "champion", "binary", skops_trusted_types=(MARKER,))
    assert len(load_predictor(folder, trusting).predict(X.head(2))) == 2


def test_a_pickled_scikit_learn_model_is_refused(tmp_path):
    folder = save_sklearn(LogisticRegression().fit(X, Y), tmp_path / "m", fmt="cloudpickle")
    with pytest.raises(
        ModelError,
        match=r"saved as 'cloudpickle'; loading a pickle runs any code in it: .*"
        r"serialization_format='skops', or set model\.allow_pickled_code: true",
    ):
        load_predictor(folder, BINARY)


def test_a_classifier_registered_for_a_regression_use_case_is_refused_at_load(tmp_path):
    folder = save_sklearn(LogisticRegression().fit(X, Y), tmp_path / "m")
    with pytest.raises(ModelError, match="cannot serve task regression"):
        load_predictor(folder, REGRESSION)


def test_an_xgboost_classifier_loads_from_its_native_file(tmp_path):
    import xgboost

    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(X, Y)
    mlflow.xgboost.save_model(model, str(tmp_path / "m"))
    out = load_predictor(tmp_path / "m", BINARY).predict(X.head(4))
    assert np.allclose(out.columns["score"], model.predict_proba(X.head(4))[:, 1])


def test_an_xgboost_booster_serves_a_regression_use_case(tmp_path):
    import xgboost

    booster = xgboost.train({"max_depth": 2}, xgboost.DMatrix(X, label=X["a"]), 5)
    mlflow.xgboost.save_model(booster, str(tmp_path / "m"))
    out = load_predictor(tmp_path / "m", REGRESSION).predict(X.head(4))
    assert np.allclose(out.columns["prediction"], booster.predict(xgboost.DMatrix(X.head(4))))


def test_an_xgboost_class_outside_xgboost_is_refused(tmp_path):
    import xgboost

    mlflow.xgboost.save_model(xgboost.XGBClassifier(n_estimators=2).fit(X, Y), str(tmp_path / "m"))
    mlmodel = tmp_path / "m" / "MLmodel"
    mlmodel.write_text(mlmodel.read_text().replace("xgboost.sklearn.XGBClassifier", "os.system"))
    with pytest.raises(ModelError, match=r"'os.system' is not one of XGBoost's own"):
        load_predictor(tmp_path / "m", BINARY)


def test_a_lightgbm_multiclass_booster_loads_from_its_native_file(tmp_path):
    import lightgbm

    classes = (X["a"] > 0.5).astype(int) + (X["a"] > -0.5).astype(int)
    booster = lightgbm.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1},
        lightgbm.Dataset(X, label=classes),
        num_boost_round=5,
    )
    mlflow.lightgbm.save_model(booster, str(tmp_path / "m"))
    out = load_predictor(tmp_path / "m", MULTICLASS).predict(X.head(4))
    expected = np.asarray(booster.predict(X.head(4)))
    assert out.classes == ("0", "1", "2")
    assert np.allclose(out.columns["score"], expected.max(axis=1))
    assert out.columns["label"].tolist() == [str(i) for i in expected.argmax(axis=1)]


def test_a_pickled_scikit_learn_model_loads_when_the_use_case_allows_pickled_code(tmp_path):
    model = LogisticRegression().fit(X, Y)
    folder = save_sklearn(model, tmp_path / "m", fmt="cloudpickle")
    out = load_predictor(folder, TRUSTING).predict(X.head(3))
    assert np.allclose(out.columns["score"], model.predict_proba(X.head(3))[:, 1])


class MarkerModel(PythonModel):
    """A custom pyfunc whose unpickling writes a marker file: code that runs on load."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        Path(self.marker).write_text("ran on load")

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return pd.DataFrame({"score": np.full(len(model_input), 0.25)})


def test_a_custom_pyfunc_is_code_and_loads_only_when_the_use_case_allows_it(tmp_path):
    marker = tmp_path / "marker"
    mlflow.pyfunc.save_model(str(tmp_path / "m"), python_model=MarkerModel(str(marker)))
    marker.unlink(missing_ok=True)  # MLflow's save round-trips the object itself
    with pytest.raises(
        ModelError,
        match=r"custom python_function model \(its python_model 'python_model.pkl' is unpickled "
        r"with cloudpickle\): loading it runs code; .* sets model\.allow_pickled_code: true",
    ):
        load_predictor(tmp_path / "m", BINARY)
    assert not marker.exists()  # refused before anything was unpickled
    out = load_predictor(tmp_path / "m", TRUSTING).predict(X.head(3))
    assert marker.read_text() == "ran on load"
    assert out.columns["score"].tolist() == [0.25, 0.25, 0.25]


def test_a_flavor_the_engine_does_not_load_natively_is_refused_from_its_mlmodel_file(tmp_path):
    (tmp_path / "MLmodel").write_text(
        "flavors:\n"
        "  pytorch: {model_data: data, pytorch_version: 2.3.0}\n"
        "  python_function: {loader_module: mlflow.pytorch, data: data}\n"
    )
    with pytest.raises(
        ModelError, match=r"flavor\(s\) \['pytorch'\] \(its MLflow loader may unpickle\)"
    ):
        load_predictor(tmp_path, BINARY)
