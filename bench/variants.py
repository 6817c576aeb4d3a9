"""The four timed ways to score one features partition (a, b and d here; c in inprocess.py).

(a), (b) and (d) read the same partition at a pinned version, produce the same `scores`
rows (keys, score, label, lineage), overwrite the same slice and MERGE it into their own
`scores_current`, under the same Spark settings and Arrow batch size. Only the UDF differs:
(a) our `run_score`; (b) `mlflow.pyfunc.spark_udf`; (d) an identity Arrow UDF (the floor).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from scoring.core import io
from scoring.core.errors import DataError
from scoring.model.adapter import ModelInput
from scoring.model.registry import MlflowTarget, ResolvedModel, resolve_model
from scoring.score.step import KEYS, ScoreTables, run_score, write_scores
from scoring.score.tables import Lineage

# The string the churn pipelines' imputer puts in place of a missing category.
MISSING_CATEGORY = "unknown"


@dataclass(frozen=True)
class Job:
    """One timed scoring of a features table by a model into a pair of output tables."""

    tables: ScoreTables
    target: MlflowTarget
    model_uri: str
    inputs: tuple[ModelInput, ...]
    run_date: date
    batch_size: int


def ours(spark: SparkSession, job: Job, run_id: str) -> None:
    """(a) our score step, end to end."""
    run_score(spark, job.tables, job.target, job.model_uri, job.run_date, run_id, job.batch_size)


def spark_udf(spark: SparkSession, job: Job, run_id: str) -> None:
    """(b) `mlflow.pyfunc.spark_udf` the way users call it, then the same writes as (a).

    The models are logged with `pyfunc_predict_fn="predict_proba"`, so the UDF returns both
    class probabilities as an array; score = element 1, label = the more probable class. Users
    fill missing categories with the imputer's value in Spark (the pyfunc receives None,
    which the pipeline's NaN imputer does not recognise), and cast numbers to double to match
    the signature: both are done here so the scores equal (a)'s.
    """
    import mlflow.pyfunc

    features, model, lineage = _pinned(spark, job, run_id)
    udf = mlflow.pyfunc.spark_udf(spark, model.pinned_uri, result_type="array<double>")
    names = [i.name for i in job.inputs]
    proba = udf(*(_as_signature(F.col(i.name), i).alias(i.name) for i in job.inputs))
    scored = (
        features.select(*KEYS, *names)
        .select(*KEYS, proba.alias("_proba"))
        .select(
            *KEYS,
            F.col("_proba")[1].alias("score"),
            F.when(F.col("_proba")[1] > F.col("_proba")[0], 1).otherwise(0).alias("label"),
        )
    )
    write_scores(spark, scored, job.tables, model, lineage, job.run_date, job.batch_size)


def floor(spark: SparkSession, job: Job, run_id: str) -> None:
    """(d) the Spark floor: the same read and writes, an identity Arrow UDF instead of a model."""
    features, model, lineage = _pinned(spark, job, run_id)
    columns = [*KEYS, *(i.name for i in job.inputs)]
    schema = T.StructType(
        [
            *(features.schema[k] for k in KEYS),
            T.StructField("score", T.DoubleType(), True),
            T.StructField("label", T.IntegerType(), True),
        ]
    )

    def identity(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            rows = batch.num_rows
            yield pa.RecordBatch.from_arrays(
                [
                    *(batch.column(k) for k in KEYS),
                    pa.array(np.full(rows, 0.5)),
                    pa.array(np.zeros(rows, dtype="int32")),
                ],
                names=[*KEYS, "score", "label"],
            )

    scored = features.select(*columns).mapInArrow(identity, schema)  # type: ignore[arg-type]
    write_scores(spark, scored, job.tables, model, lineage, job.run_date, job.batch_size)


def _as_signature(column: Column, item: ModelInput) -> Column:
    """A features column as the pyfunc signature wants it (see `spark_udf`)."""
    if item.type == "string":
        return F.coalesce(column, F.lit(MISSING_CATEGORY))
    return column.cast("double")


def _pinned(spark: SparkSession, job: Job, run_id: str) -> tuple[DataFrame, ResolvedModel, Lineage]:
    """The features partition at the current version, the model and the run's lineage.

    One registry call and one pinned read, as `run_score` does.
    """
    model = resolve_model(job.target, job.model_uri)
    version = io.current_version(spark, job.tables.features)
    if version is None:
        raise DataError(f"{job.tables.features}: features table does not exist")
    features = io.read_partition(spark, job.tables.features, "as_of_date", job.run_date, version)
    lineage = Lineage(model.name, model.version, model.run_id, version, run_id, datetime.now(UTC))
    return features, model, lineage
