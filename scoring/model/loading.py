"""A downloaded MLflow model folder loaded as a `Predictor`, trusting nothing it does not have to.

The flavour decides how (read from the MLmodel file as plain YAML: importing mlflow costs
seconds in every fresh Python worker):

- `sklearn`: skops files, loaded with the engine's reviewed types (`SKOPS_TRUSTED_TYPES`)
  plus the use case's `model.skops_trusted_types`, never with the list written in the
  model's own MLmodel file (a crafted model could whitelist anything);
- `xgboost`: the native file (UBJSON / JSON), into the class the flavour names, if that is
  one of XGBoost's own model classes;
- `lightgbm`: a native `Booster` file; a scikit-learn LightGBM model only as skops;
- anything else (a custom pyfunc, whose `python_model` is unpickled with cloudpickle; a
  models-from-code pyfunc; any other flavour, whose loader may unpickle) and scikit-learn
  pickles run code when they load: loaded (`mlflow.pyfunc.load_model`, outputs chosen by
  name; `mlflow.sklearn.load_model`) only when the use case sets
  `model.allow_pickled_code: true`, decided from the MLmodel file before anything is loaded.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from scoring.core.errors import ModelError
from scoring.model.predictors import (
    BoosterPredictor,
    EstimatorPredictor,
    Predictor,
    PyfuncPredictor,
    check_estimator,
)
from scoring.usecase.spec import ModelSpec

#: The scikit-learn types outside skops' defaults that the engine has reviewed: numpy's
#: dtype objects and the tree structures of scikit-learn's own tree ensembles
#: (HistGradientBoosting's TreePredictor; the Tree of random forests and gradient boosting).
#: None of them runs code on load. A use case adds what its models need in
#: `model.skops_trusted_types`, after review.
SKOPS_TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
)
_XGBOOST_CLASSES = {
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
    "xgboost.sklearn.XGBRegressor",
    "xgboost.sklearn.XGBRFClassifier",
    "xgboost.sklearn.XGBRFRegressor",
}
_LIGHTGBM_BOOSTER = "lightgbm.basic.Booster"


def trusted_types(spec: ModelSpec) -> tuple[str, ...]:
    """The engine's reviewed skops types plus the use case's own."""
    return (*SKOPS_TRUSTED_TYPES, *spec.skops_trusted_types)


def load_predictor(model_dir: str | Path, spec: ModelSpec) -> Predictor:
    """Load a downloaded model folder as the Predictor of `spec.task` (module docstring).

    Raises:
        ModelError: a pickled model, an untrusted skops type, an unknown model class, or an
            estimator that cannot serve the task; the message names the file.
    """
    folder = Path(model_dir)
    flavors = model_flavors(folder)
    if "sklearn" in flavors:
        flavor = flavors["sklearn"]
        if flavor.get("serialization_format") != "skops" and spec.allow_pickled_code:
            import mlflow.sklearn

            model = mlflow.sklearn.load_model(str(folder))
        else:
            model = load_skops(folder, flavor, trusted_types(spec))
        check_estimator(model, spec, str(folder))
        return EstimatorPredictor(model, spec)
    if "xgboost" in flavors:
        return _xgboost(folder, flavors["xgboost"], spec)
    if "lightgbm" in flavors:
        return _lightgbm(folder, flavors["lightgbm"], spec)
    if not spec.allow_pickled_code:
        raise ModelError(
            f"{folder}: {runs_code(flavors)}: loading it runs code; the engine loads such a "
            f"model only when usecase.yaml sets {ALLOW_SETTING}: true (trust whoever can "
            "register models), or log the model as skops, XGBoost or LightGBM"
        )
    import mlflow.pyfunc

    return PyfuncPredictor(mlflow.pyfunc.load_model(str(folder)), spec)


#: The usecase.yaml setting that lets models whose loading runs code be loaded.
ALLOW_SETTING = "model.allow_pickled_code"


def runs_code(flavors: dict[str, Any]) -> str:
    """What, in a model the engine does not load natively, runs code when it loads."""
    pyfunc = flavors.get("python_function")
    others = sorted(f for f in flavors if f != "python_function")
    if isinstance(pyfunc, dict) and not others:
        if pyfunc.get("python_model"):
            return (
                f"a custom python_function model (its python_model "
                f"'{pyfunc['python_model']}' is unpickled with cloudpickle)"
            )
        if pyfunc.get("model_code_path") or pyfunc.get("loader_module"):
            return "a custom python_function model (its loader_module / code runs on load)"
    return f"a model of flavor(s) {others or sorted(flavors)} (its MLflow loader may unpickle)"


def model_flavors(model_dir: str | Path) -> dict[str, Any]:
    """The `flavors` mapping of a model folder's MLmodel file, read as plain YAML.

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


def load_skops(model_dir: Path, flavor: dict[str, Any], trusted: tuple[str, ...]) -> Any:
    """Load a skops file with `trusted`, after checking it needs nothing else."""
    import skops.io

    fmt = flavor.get("serialization_format")
    if fmt != "skops":
        raise ModelError(
            f"{model_dir}: scikit-learn model saved as '{fmt}'; loading a pickle runs any code "
            f"in it: log it with serialization_format='skops', or set {ALLOW_SETTING}: true in "
            "usecase.yaml to trust it"
        )
    path = model_dir / str(flavor.get("pickled_model") or flavor.get("data"))
    untrusted = sorted(skops.io.get_untrusted_types(file=path))
    refused = [t for t in untrusted if t not in trusted]
    if refused:
        raise ModelError(
            f"{path}: skops types {refused} are not trusted; review them and list them in "
            "usecase.yaml model.skops_trusted_types"
        )
    return skops.io.load(path, trusted=untrusted)


def _xgboost(folder: Path, flavor: dict[str, Any], spec: ModelSpec) -> Predictor:
    """An XGBoost model from its native file, into one of XGBoost's own classes."""
    name = str(flavor.get("model_class", "xgboost.core.Booster"))
    if name not in _XGBOOST_CLASSES:
        raise ModelError(f"{folder}: XGBoost model class '{name}' is not one of XGBoost's own")
    module, _, cls = name.rpartition(".")
    model = getattr(importlib.import_module(module), cls)()
    model.load_model(str(folder / str(flavor["data"])))
    if name == "xgboost.core.Booster":
        return BoosterPredictor(model, spec, "xgboost")
    check_estimator(model, spec, str(folder))
    return EstimatorPredictor(model, spec)


def _lightgbm(folder: Path, flavor: dict[str, Any], spec: ModelSpec) -> Predictor:
    """A LightGBM Booster from its native file; a scikit-learn LightGBM model only as skops."""
    name = str(flavor.get("model_class", _LIGHTGBM_BOOSTER))
    if name == _LIGHTGBM_BOOSTER:
        import lightgbm

        booster = lightgbm.Booster(model_file=str(folder / str(flavor["data"])))
        return BoosterPredictor(booster, spec, "lightgbm")
    if flavor.get("serialization_format") != "skops" and spec.allow_pickled_code:
        import mlflow.lightgbm

        model = mlflow.lightgbm.load_model(str(folder))
    else:
        model = load_skops(folder, flavor, trusted_types(spec))
    check_estimator(model, spec, str(folder))
    return EstimatorPredictor(model, spec)
