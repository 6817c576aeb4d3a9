"""The benchmark's two registered models per features table: a tree model and a linear one.

Both are trained on a sample of the synthetic table with a synthetic target, logged the
way `scoring train` logs (`scoring.train.register.log_model`: skops with the engine's and the
use case's trusted types, signature, input example) and registered in the bench's own sqlite
registry. On the churn demo's table (`DEMO`) the tree pipeline is the demo's own
(`build_pipeline` of examples/churn/train.py: imputer + one-hot in front of the trees) and the
linear one adds a median imputer and a scaler (`linear_pipeline`). On the all-float table
(`FLOAT`) the tree is a bare HistGradientBoostingClassifier, no preprocessing, and the linear
model is a median imputer, a StandardScaler and a LogisticRegression (the imputer because the
table has missing values, which LogisticRegression refuses).
`pyfunc_predict_fn="predict_proba"` makes the pyfunc flavour (used by
mlflow.pyfunc.spark_udf in variant b) return probabilities like ours. Each version is
tagged with a baseline of its training sample, as `scoring train` does: variant r's linear
model measures its reason codes from the baseline's means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from bench.usecase import features_contract
from scoring.model.loading import trusted_types
from scoring.model.predictors import EstimatorPredictor
from scoring.model.registry import MlflowTarget, ensure_experiment
from scoring.model.signature import ModelInput, bind_inputs, contract_inputs
from scoring.monitor.baseline import BASELINE_TAG, baseline_rows, log_baseline, tag_version
from scoring.train.register import log_model
from scoring.usecase import AS_OF_DATE, FEATURE_RUN_ID, ModelSpec, UseCase, import_module

MODELS = ("tree", "linear")
DEMO, FLOAT = "demo", "float"
#: kind -> an unfitted model, from the training frame, its inputs and the seed.
Builders = dict[str, Callable[[pd.DataFrame, tuple[ModelInput, ...], int], Any]]


def linear_pipeline(inputs: tuple[ModelInput, ...], seed: int) -> Pipeline:
    """The churn pipeline's preprocessing with a logistic regression (numbers imputed, scaled)."""
    categorical = [i.name for i in inputs if i.type == "string"]
    numeric = [i.name for i in inputs if i.type != "string"]
    encode = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="unknown")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    scale = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    prepare = ColumnTransformer([("categorical", encode, categorical), ("numeric", scale, numeric)])
    classifier = LogisticRegression(max_iter=500, random_state=seed)
    return Pipeline([("prepare", prepare), ("classify", classifier)])


def float_linear(seed: int) -> Pipeline:
    """Median imputer, StandardScaler and LogisticRegression over every (float) input."""
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
            ("classify", LogisticRegression(max_iter=500, random_state=seed)),
        ]
    )


def float_tree(seed: int) -> HistGradientBoostingClassifier:
    """A bare HistGradientBoostingClassifier (its own missing-value handling, no steps)."""
    return HistGradientBoostingClassifier(random_state=seed)


def builders(table: str, usecase: UseCase) -> Builders:
    """The tree and linear models of a bench table (`DEMO` or `FLOAT`), unfitted.

    Raises:
        ValueError: `table` is neither.
    """
    if table == DEMO:
        demo = import_module(usecase, "train")
        return {
            "tree": lambda frame, _inputs, seed: demo.build_pipeline(frame, seed),
            "linear": lambda _frame, inputs, seed: linear_pipeline(inputs, seed),
        }
    if table == FLOAT:
        return {
            "tree": lambda _frame, _inputs, seed: float_tree(seed),
            "linear": lambda _frame, _inputs, seed: float_linear(seed),
        }
    raise ValueError(f"bench.models: no models for table '{table}' (known: {DEMO}, {FLOAT})")


def float_target(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """A label that depends on a few standardised features (missing counts as the mean),
    with noise, so the models have something to learn."""
    rng = np.random.default_rng(seed)
    logit = np.full(len(frame), -0.5)
    for column, weight in (("f01", 0.9), ("f04", -0.6), ("f07", 0.7), ("f10", -0.4)):
        values = frame[column].to_numpy(dtype="float64")
        logit += weight * np.nan_to_num((values - np.nanmean(values)) / np.nanstd(values))
    return (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype("int64")


def synthetic_target(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """A churn label that depends on recency, activity and segment, with noise."""
    rng = np.random.default_rng(seed)
    recency = frame["days_since_last_txn"].fillna(120.0).to_numpy()
    logit = -1.5 + 0.03 * recency - 0.15 * frame["txn_count_30d"].to_numpy()
    logit = logit + np.where(frame["segment"].to_numpy() == "enterprise", -0.8, 0.0)
    return (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype("int64")


def register_models(
    features: DataFrame,
    usecase: UseCase,
    target: MlflowTarget,
    train_rows: int,
    seed: int,
    table: str = DEMO,
) -> dict[str, str]:
    """Fit and register both models of `table`; return {kind: models:/NAME/VERSION}.

    The inputs are those `scoring train` gives a trainer: every column of the features
    contract but the entity key (strings stay strings, numbers become doubles). The demo's
    models are named `bench_<kind>`, the all-float table's `bench_float_<kind>`.
    """
    exclude = (*usecase.entity, AS_OF_DATE, FEATURE_RUN_ID)
    inputs = contract_inputs(features_contract(usecase), exclude)
    # Bench set-up only: a bounded sample to fit on, collected to the driver.
    rows = features.limit(train_rows).toPandas()
    frame = bind_inputs(rows, inputs)
    labels = synthetic_target(frame, seed) if table == DEMO else float_target(frame, seed)
    prefix = "bench" if table == DEMO else f"bench_{table}"
    uris = {}
    for kind, build in builders(table, usecase).items():
        fitted = build(frame, inputs, seed).fit(frame, labels)
        uris[kind] = _log(target, usecase.model, f"{prefix}_{kind}", fitted, frame)
    return uris


def _log(
    target: MlflowTarget, spec: ModelSpec, name: str, pipeline: Any, frame: pd.DataFrame
) -> str:
    """Log and register `pipeline` as `name` the way `scoring train` does; return its URI.

    `pyfunc_predict_fn="predict_proba"` lets variant (b), `mlflow.pyfunc.spark_udf`, return
    probabilities instead of labels.
    """
    import mlflow

    with mlflow.start_run(experiment_id=ensure_experiment(target), run_name=name):
        info = log_model(
            pipeline,
            frame,
            spec.task,
            name,
            trusted_types(spec),
            pyfunc_predict_fn="predict_proba",
        )
        outputs = EstimatorPredictor(pipeline, spec).predict(frame)
        keys = pd.DataFrame(index=frame.index)  # the bench's baseline needs no entity key
        baseline = log_baseline(baseline_rows(keys, frame, outputs, spec.task))
    version = str(info.registered_model_version)
    tag_version(target, name, version, {BASELINE_TAG: baseline})
    return f"models:/{name}/{version}"
