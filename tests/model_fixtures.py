"""Hand-built feature tables and registered models for the train / score tests."""

from __future__ import annotations

from datetime import date
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel
from mlflow.pyfunc import log_model as log_pyfunc
from pyspark.sql import DataFrame, SparkSession

from scoring.core import io
from scoring.core.config import Config
from scoring.features.build import features_schema
from scoring.model.registry import MlflowTarget, ensure_experiment
from scoring.usecase import load_usecase
from tests.conftest import CHURN_DIR, churn_tables

RUN_DATE = date(2026, 3, 1)
LABEL_DATE = date(2026, 3, 31)


def feature_row(customer: int, as_of: date, **values: Any) -> dict[str, Any]:
    """One features row: customer `C<n>`, with readable defaults that depend on `customer`."""
    active = customer % 3 != 0
    row: dict[str, Any] = {
        "customer_id": f"C{customer:03d}",
        "as_of_date": as_of,
        "segment": ("consumer", "smb", "enterprise")[customer % 3],
        "country": None if customer % 7 == 0 else ("FR", "DE")[customer % 2],
        "tenure_days": 100 + customer,
        "days_since_last_txn": (customer % 11) if active else None,
        "days_since_first_txn": 90 if active else None,
        "txn_count_7d": customer % 2 if active else 0,
        "txn_count_30d": (customer % 5) + 1 if active else 0,
        "txn_count_90d": (customer % 5) + 3 if active else 0,
        "txn_count_365d": 20 if active else 0,
        "amount_sum_7d": 10.0 if active else 0.0,
        "amount_sum_30d": 35.5 + customer if active else 0.0,
        "amount_sum_90d": 99.0 + customer if active else 0.0,
        "amount_sum_365d": 400.0,
        "amount_avg_30d": 12.5 if active else None,
        "amount_avg_365d": 20.0,
        "amount_max_90d": 50.0 if active else None,
        "active_days_30d": (customer % 5) + 1 if active else 0,
        "active_days_90d": 6 if active else 0,
        "count_trend_30_90": 1.2 if active else None,
        "amount_trend_30_90": 0.8 if active else None,
        "category_count_90d": 2 if active else 0,
        "top_category_share_90d": 0.5 if active else None,
        "web_share_90d": 0.4 if active else None,
        "app_share_90d": 0.3 if active else None,
        "store_share_90d": 0.3 if active else None,
        "refund_count_90d": 0,
        "feature_run_id": "features-test",
    }
    row.update(values)
    return row


def churn_features_schema() -> Any:
    """The churn demo's features table schema (entity, as_of_date, contract, run id)."""
    churn = load_usecase(CHURN_DIR)
    assert churn.features.contract is not None
    return features_schema(churn.features.contract, churn.entity)


def features_frame(spark: SparkSession, rows: list[dict[str, Any]]) -> DataFrame:
    """A DataFrame with the churn features table's schema."""
    schema = churn_features_schema()
    return spark.createDataFrame([tuple(r[f.name] for f in schema.fields) for r in rows], schema)


def write_features(spark: SparkSession, config: Config, rows: list[dict[str, Any]]) -> int:
    """Append rows to the test's churn features table; return the new table version."""
    ref = churn_tables(config)["features"]
    io.ensure_table(spark, ref, io.TableSpec(churn_features_schema(), ("as_of_date",)))
    io.write_delta(features_frame(spark, rows), ref, "append", {"run_id": "features-test"})
    return int(io.last_commit(spark, ref)["version"])


def training_features(customers: int = 40) -> list[dict[str, Any]]:
    """Features of RUN_DATE and LABEL_DATE; inactive customers at RUN_DATE churn later."""
    rows = [feature_row(c, RUN_DATE) for c in range(customers)]
    for c in range(customers):
        churned = c % 3 == 0 or c % 4 == 0
        rows.append(feature_row(c, LABEL_DATE, txn_count_30d=0 if churned else 2))
    return rows


class InverseActivityModel(PythonModel):
    """A custom pyfunc: churn probability 1 / (1 + purchases in 30 days), named outputs."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        probability = 1.0 / (1.0 + model_input["txn_count_30d"])
        # Columns deliberately not in score/label order: they are chosen by name.
        return pd.DataFrame({"label": (probability >= 0.5).astype(int), "probability": probability})


def register_pyfunc(
    target: MlflowTarget, name: str, model: PythonModel, example: pd.DataFrame, output: Any
) -> str:
    """Log and register the custom pyfunc `model` under `name`, its signature inferred from
    `example` and `output`; return its version."""
    with mlflow.start_run(experiment_id=ensure_experiment(target)):
        info = log_pyfunc(
            name="model",
            python_model=model,
            signature=infer_signature(example, output),
            registered_model_name=name,
            pip_requirements=["pandas"],
        )
    return str(info.registered_model_version)


def register_custom_model(target: MlflowTarget, name: str) -> str:
    """Log and register InverseActivityModel under `name`; return its version."""
    example = pd.DataFrame({"segment": ["smb"], "txn_count_30d": [1.0]})
    model = InverseActivityModel()
    return register_pyfunc(target, name, model, example, model.predict(None, example))


class FaultyModel(PythonModel):
    """A custom pyfunc with bad rows, told by tenure_days (100 + customer number): it raises
    on any batch holding customer 3, returns NaN for customer 5 and 1.5 for customer 7."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        tenure = model_input["tenure_days"]
        if (tenure == 103).any():
            raise ValueError("cannot score tenure 103")
        probability = 1.0 / (1.0 + model_input["txn_count_30d"])
        probability = probability.where(tenure != 105, float("nan"))
        return pd.DataFrame({"score": probability.where(tenure != 107, 1.5)})


def register_faulty_model(target: MlflowTarget, name: str) -> str:
    """Log and register FaultyModel under `name`; return its version."""
    example = pd.DataFrame({"tenure_days": [101.0], "txn_count_30d": [1.0]})
    return register_pyfunc(target, name, FaultyModel(), example, pd.DataFrame({"score": [0.5]}))


class ArrayModel(PythonModel):
    """A custom pyfunc that returns a bare array of probabilities, not a frame."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return (1.0 / (1.0 + model_input["txn_count_30d"])).to_numpy()


class Reviewed:
    """A type of the tests' own, on no reviewed skops list."""


def register_bad_model(target: MlflowTarget, name: str, kind: str) -> str:
    """Register a model the driver-side check must refuse; return its version.

    `kind`: `array` (a custom pyfunc returning an array), `pickle` (a scikit-learn model
    saved with cloudpickle), `skops_type` (a skops model holding an unreviewed type).
    """
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    example = pd.DataFrame({"tenure_days": [101.0, 102.0, 103.0], "txn_count_30d": [0.0, 1.0, 4.0]})
    if kind == "array":
        return register_pyfunc(target, name, ArrayModel(), example, np.array([0.5, 0.5, 0.5]))
    with mlflow.start_run(experiment_id=ensure_experiment(target)):
        model = LogisticRegression().fit(example, [1, 0, 0])
        if kind == "skops_type":
            model.extra_ = Reviewed()
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(example, model.predict_proba(example)),
            serialization_format="cloudpickle" if kind == "pickle" else "skops",
            skops_trusted_types=[f"{__name__}.Reviewed"] if kind == "skops_type" else None,
            registered_model_name=name,
            pip_requirements=["scikit-learn"],
        )
    return str(info.registered_model_version)
