"""`scoring baseline`: the monitoring baseline of a model version trained elsewhere.

Resolve the model → read the features of D at a pinned version → a deterministic sample of
at most `training.baseline_max_rows` entities (ordered by a seeded hash of the key) →
predict on the driver with the same loading the workers use (trust rules included) → log
`baseline/baseline.parquet` in a new MLflow run of the use case's experiment → tag the
model version with its URI. No observed target: the model was trained elsewhere.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from scoring.core import io
from scoring.core.errors import DataError
from scoring.core.tables import Tables
from scoring.model.loading import load_predictor
from scoring.model.registry import MlflowTarget, download_model, ensure_experiment, resolve_model
from scoring.model.signature import bind_inputs, check_inputs, model_inputs
from scoring.monitor.baseline import BASELINE_TAG, baseline_rows, log_baseline, tag_version
from scoring.runs.result import StepResult
from scoring.usecase.spec import UseCase


def run_baseline(
    spark: SparkSession,
    tables: Tables,
    target: MlflowTarget,
    usecase: UseCase,
    model_uri: str,
    run_date: date,
    run_id: str,
    max_rows: int,
    seed: int,
) -> StepResult:
    """Record the baseline of `model_uri` from the features of `run_date`.

    Raises:
        ModelError: the model cannot be resolved, loaded, or bound to the features.
        DataError: the features table or its partition of `run_date` is missing.
    """
    import mlflow

    model = resolve_model(target, model_uri)
    features_ref = tables["features"]
    version = io.current_version(spark, features_ref)
    if version is None:
        raise DataError(f"{features_ref}: features table does not exist")
    column = usecase.features.as_of_column
    features = io.read_partition(spark, features_ref, column, run_date, version)
    folder = download_model(target, model)
    inputs = model_inputs(folder)
    check_inputs(features.schema, inputs, str(features_ref))
    predictor = load_predictor(folder, usecase.model)
    entity = list(usecase.entity)
    rows: pd.DataFrame = sample(
        features, entity, [i.name for i in inputs], max_rows, seed
    ).toPandas()
    frame = bind_inputs(rows, inputs)
    baseline = baseline_rows(rows[entity], frame, predictor.predict(frame), usecase.model.task)
    tags = {
        "run_id": run_id,
        "usecase": usecase.name,
        "baseline_run_date": run_date.isoformat(),
        "baseline_feature_table_version": str(version),
    }
    with mlflow.start_run(
        experiment_id=ensure_experiment(target), run_name=f"{run_id}-baseline", tags=tags
    ) as run:
        mlflow.log_params({"model_uri": model.pinned_uri, "baseline_rows": len(baseline)})
        uri = log_baseline(baseline)
    tag_version(target, model.name, model.version, {**tags, BASELINE_TAG: uri})
    return StepResult(
        step="baseline",
        run_id=run_id,
        run_date=run_date,
        rows_in=len(baseline),
        details={
            "model_uri": model.pinned_uri,
            "model_version": model.version,
            "baseline_uri": uri,
            "mlflow_run_id": run.info.run_id,
            "feature_table_version": version,
        },
    )


def sample(
    features: DataFrame, entity: list[str], inputs: list[str], max_rows: int, seed: int
) -> DataFrame:
    """At most `max_rows` rows, the same ones on every run: lowest seeded hash of the key."""
    order = F.xxhash64(*[F.col(c) for c in entity], F.lit(seed))
    columns = [*entity, *[c for c in inputs if c not in entity]]
    return features.select(*columns).orderBy(order, *entity).limit(max_rows)
