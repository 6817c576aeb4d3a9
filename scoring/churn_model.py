"""The demo churn model: its label, its inputs and its scikit-learn pipeline (no I/O).

Label: a customer churns (1) when they make no purchase in the 30 days after the run date D.
Only the features table is needed for that: the features of D + 30 days count the purchases
of the 30 days ending on D + 30, so `txn_count_30d == 0` there is exactly "no purchase in
(D, D + 30]". Training on D therefore needs the features partition of D + 30.
"""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from scoring.contracts import Contract
from scoring.model_adapter import ModelInput

LABEL_HORIZON_DAYS = 30
TARGET = "target"
_NOT_INPUTS = ("customer_id", "as_of_date", "feature_run_id")


def label_date(run_date: date) -> date:
    """The as_of_date whose features tell whether a customer churned after `run_date`."""
    return run_date + timedelta(days=LABEL_HORIZON_DAYS)


def model_inputs_of(contract: Contract) -> tuple[ModelInput, ...]:
    """The model's inputs from the features contract: strings stay strings, numbers doubles."""
    return tuple(
        ModelInput(c.name, "string" if c.type == "string" else "double")
        for c in contract.columns
        if c.name not in _NOT_INPUTS
    )


def with_churn_target(features: DataFrame, later: DataFrame) -> DataFrame:
    """Add `target` (1 = no purchase in the 30 days after as_of_date) from the later features.

    `later` is the features partition of `label_date(as_of_date)`. Customers missing from it
    have no known outcome and are dropped (inner join).
    """
    outcome = later.select(
        "customer_id",
        F.when(F.col("txn_count_30d") == 0, 1).otherwise(0).cast("int").alias(TARGET),
    )
    return features.join(outcome, on="customer_id", how="inner")


def build_pipeline(inputs: tuple[ModelInput, ...], seed: int) -> Pipeline:
    """Impute + one-hot the categorical inputs, pass numbers through, gradient boosting.

    HistGradientBoosting handles missing numbers itself, so numbers need no imputer.
    """
    categorical = [i.name for i in inputs if i.type == "string"]
    numeric = [i.name for i in inputs if i.type != "string"]
    encode = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="unknown")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    prepare = ColumnTransformer(
        [("categorical", encode, categorical), ("numeric", "passthrough", numeric)]
    )
    classifier = HistGradientBoostingClassifier(
        max_iter=100, learning_rate=0.1, min_samples_leaf=10, random_state=seed
    )
    return Pipeline([("prepare", prepare), ("classify", classifier)])
