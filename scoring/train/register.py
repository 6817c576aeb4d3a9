"""Log a fitted model to MLflow and register it, in the format the engine loads safely.

- scikit-learn estimators (and scikit-learn pipelines around anything): skops, with the
  engine's reviewed types plus the use case's (`model.skops_trusted_types`); a model that
  needs any other type is refused here, at training, naming the types, instead of at the
  first scoring run;
- XGBoost models: XGBoost's own format (`mlflow.xgboost`);
- LightGBM boosters: LightGBM's own format (`mlflow.lightgbm`).

The signature is inferred from the model's inputs and its output (probabilities for a
classifier, predictions for a regressor); pip requirements are pinned explicitly (no slow
inference of them).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

import pandas as pd

from scoring.core.errors import ModelError
from scoring.model.tasks import REGRESSION

_SKLEARN_REQUIREMENTS = ("scikit-learn", "skops", "pandas", "numpy")


def log_model(
    model: Any,
    inputs: pd.DataFrame,
    task: str,
    registered_name: str,
    trusted: tuple[str, ...],
    **extra: Any,
) -> Any:
    """Log `model` in the active MLflow run and register it; return MLflow's ModelInfo.

    `extra` goes to the flavour's `log_model` (e.g. the benchmark's `pyfunc_predict_fn`).

    Raises:
        ModelError: a scikit-learn model needs skops types nobody reviewed.
    """
    from mlflow.models import infer_signature

    output = model.predict(inputs) if task == REGRESSION else model.predict_proba(inputs)
    common = {
        "name": "model",
        "signature": infer_signature(inputs, output),
        "input_example": inputs.head(5),
        "registered_model_name": registered_name,
        **extra,
    }
    module = type(model).__module__.split(".")[0]
    if module == "xgboost":
        import mlflow.xgboost

        return mlflow.xgboost.log_model(model, pip_requirements=_pins("xgboost"), **common)
    if module == "lightgbm" and type(model).__name__ == "Booster":
        import mlflow.lightgbm

        return mlflow.lightgbm.log_model(model, pip_requirements=_pins("lightgbm"), **common)
    return log_sklearn(model, trusted, common)


def log_sklearn(model: Any, trusted: tuple[str, ...], common: dict[str, Any]) -> Any:
    """Log a scikit-learn model as skops, after checking it needs only `trusted` types."""
    import mlflow.sklearn
    import skops.io

    needed = sorted(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    refused = [t for t in needed if t not in trusted]
    if refused:
        raise ModelError(
            f"the trained model needs skops types {refused} that are not trusted; review them "
            "and list them in usecase.yaml model.skops_trusted_types"
        )
    return mlflow.sklearn.log_model(
        model,
        serialization_format="skops",
        skops_trusted_types=needed,
        pip_requirements=_pins(*_SKLEARN_REQUIREMENTS),
        **common,
    )


def _pins(*names: str) -> list[str]:
    """`name==version` of each installed package (skipped when not installed)."""
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={package_version(name)}")
        except PackageNotFoundError:
            continue
    return pins
