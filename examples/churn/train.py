"""The churn demo's trainer: its label and its scikit-learn pipeline (no I/O of its own).

Label: a customer churns (1) when they make no purchase in the 30 days after the as-of
date D. Only the features are needed: the features of D + 30 count the purchases of the 30
days ending on D + 30, so `txn_count_30d == 0` there is exactly "no purchase in
(D, D + 30]". Training on D therefore needs the features of D + 30 (usecase.yaml:
`train.horizon_days: 30`).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from scoring.usecase import DataError, TrainingData

LABEL_HORIZON_DAYS = 30


def label_date(as_of: date) -> date:
    """The as_of_date whose features tell whether a customer churned after `as_of`."""
    return as_of + timedelta(days=LABEL_HORIZON_DAYS)


def label(data: TrainingData, as_of: date) -> DataFrame:
    """`customer_id` and `label` (1 = no purchase in the 30 days after `as_of`).

    Customers missing from the features of D + 30 have no known outcome: no row.
    """
    try:
        later = data.features(label_date(as_of))
    except DataError as exc:
        raise DataError(
            f"{exc}; the churn label of {as_of} needs the features of {label_date(as_of)} "
            "(no purchase in the 30 days after the as-of date)"
        ) from exc
    return later.select(
        "customer_id", F.when(F.col("txn_count_30d") == 0, 1).otherwise(0).alias("label")
    )


def fit(inputs: pd.DataFrame, labels: pd.Series, seed: int) -> Any:
    """Impute + one-hot the text inputs, pass numbers through, gradient boosting.

    HistGradientBoosting handles missing numbers itself, so numbers need no imputer.
    """
    return build_pipeline(inputs, seed).fit(inputs, labels.to_numpy())


def build_pipeline(inputs: pd.DataFrame, seed: int) -> Pipeline:
    """The unfitted pipeline for these input columns (text columns are categorical)."""
    categorical = [c for c in inputs.columns if inputs[c].dtype == object]
    numeric = [c for c in inputs.columns if c not in categorical]
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
