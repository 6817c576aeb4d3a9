"""The benchmark's two registered models: the project's tree pipeline and a linear one.

Both are trained on a sample of the synthetic table with a synthetic churn target, logged the
way `scoring train` logs (`scoring.train.register.log_model`: skops with the engine's and the
use case's trusted types, signature, input example) and registered in the bench's own sqlite
registry. The tree pipeline is the churn demo's own (`build_pipeline` of
examples/churn/train.py). `pyfunc_predict_fn="predict_proba"` makes the pyfunc flavour (used
by mlflow.pyfunc.spark_udf in variant b) return probabilities like ours. Each version is
tagged with a baseline of its training sample, as `scoring train` does: variant r's linear
model measures its reason codes from the baseline's means.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from sklearn.compose import ColumnTransformer
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


def synthetic_target(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """A churn label that depends on recency, activity and segment, with noise."""
    rng = np.random.default_rng(seed)
    recency = frame["days_since_last_txn"].fillna(120.0).to_numpy()
    logit = -1.5 + 0.03 * recency - 0.15 * frame["txn_count_30d"].to_numpy()
    logit = logit + np.where(frame["segment"].to_numpy() == "enterprise", -0.8, 0.0)
    return (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype("int64")


def register_models(
    features: DataFrame, usecase: UseCase, target: MlflowTarget, train_rows: int, seed: int
) -> dict[str, str]:
    """Fit and register both models; return {kind: models:/NAME/VERSION}.

    The inputs are those `scoring train` gives a trainer: every column of the features
    contract but the entity key (strings stay strings, numbers become doubles).
    """
    exclude = (*usecase.entity, AS_OF_DATE, FEATURE_RUN_ID)
    inputs = contract_inputs(features_contract(usecase), exclude)
    # Bench set-up only: a bounded sample to fit on, collected to the driver.
    rows = features.limit(train_rows).toPandas()
    frame = bind_inputs(rows, inputs)
    labels = synthetic_target(frame, seed)
    demo = import_module(usecase, "train")
    uris = {}
    for kind, pipeline in (
        ("tree", demo.build_pipeline(frame, seed)),
        ("linear", linear_pipeline(inputs, seed)),
    ):
        fitted = pipeline.fit(frame, labels)
        uris[kind] = _log(target, usecase.model, f"bench_{kind}", fitted, frame)
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
