"""The timed ways to score one features partition (a, n, b, d and r here; c in inprocess.py).

(a) is the score step with `scoring.compiled: auto`, the default (compiled tree inference
where its parity gate passes); (n) the same step with `scoring.compiled: off`, the native
model (`with_compiled`). (a), (n), (b) and (d) read the same partition at a pinned version, produce the same `scores`
rows (keys, score, label, lineage), overwrite the same slice and MERGE it into their own
`scores_current`, under the same Spark settings and Arrow batch size. Only the UDF differs:
(a) our `run_score`; (b) `mlflow.pyfunc.spark_udf`; (d) an identity Arrow UDF (the floor).
(r) is (a) with reason codes on (`scoring.reasons.top_k` = `REASONS_TOP_K`): the same rows
plus `reasons`, so r against a is what reason codes cost.
The keys are the use case's entity and `as_of_date`; score and label follow its model spec.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from scoring.core import io
from scoring.core.errors import DataError, ModelError
from scoring.core.tables import Tables
from scoring.model.loading import load_predictor
from scoring.model.predictors import EstimatorPredictor, class_index
from scoring.model.registry import MlflowTarget, ResolvedModel, parse_model_uri, resolve_model
from scoring.model.signature import ModelInput
from scoring.model.tasks import output_fields
from scoring.score.step import ScoreRequest, run_score, write_scores
from scoring.score.tables import Lineage, ScoresLayout
from scoring.usecase import AS_OF_DATE, ModelSpec, UseCase

# The string the churn pipelines' imputer puts in place of a missing category.
MISSING_CATEGORY = "unknown"
#: The reasons per row variant (r) asks for, as a use case would (`scoring.reasons.top_k`).
REASONS_TOP_K = 3


@dataclass(frozen=True)
class Job:
    """One timed scoring of a features table by a model into a pair of output tables.

    `tables` holds `features`, `scores` and `scores_current`; `positive` is the position of
    the use case's positive class among the model's probabilities (what (b) reads).
    """

    tables: Tables
    target: MlflowTarget
    request: ScoreRequest
    inputs: tuple[ModelInput, ...]
    positive: int
    run_date: date
    batch_size: int

    @property
    def keys(self) -> tuple[str, ...]:
        """The columns every variant passes through: the entity key and `as_of_date`."""
        return (*self.request.entity, AS_OF_DATE)


def score_request(usecase: UseCase, model_uri: str) -> ScoreRequest:
    """What (a) asks `run_score` for: the use case's model spec and entity, and the MERGE.

    Every variant feeds its `scores_current`, as a run of the serving alias does, although
    the bench's models are named by version. `scoring.compiled` is `auto` (the compiled
    path where its gate passes), as configured by default, set here so that a changed
    default does not change what (a) measures.
    """
    return ScoreRequest(
        model_uri=model_uri,
        spec=usecase.model,
        registered_name=parse_model_uri(model_uri)[0],
        entity=usecase.entity,
        as_of_column=usecase.features.as_of_column,
        update_current=True,
        compiled="auto",
    )


def with_compiled(request: ScoreRequest, mode: str) -> ScoreRequest:
    """`request` with `scoring.compiled` set to `mode` (auto | off)."""
    return replace(request, compiled=mode)


def positive_index(model_dir: str | Path, spec: ModelSpec) -> int:
    """Where `spec.positive_class` is among the probabilities of a downloaded classifier.

    Raises:
        ModelError: the model is not a scikit-learn-like classifier, or lacks the class.
    """
    predictor = load_predictor(model_dir, spec)
    if not isinstance(predictor, EstimatorPredictor):
        raise ModelError(f"{model_dir}: the bench's models are scikit-learn classifiers")
    return class_index(list(predictor.model.classes_), spec.positive_class)


def ours(spark: SparkSession, job: Job, run_id: str) -> None:
    """(a) our score step, end to end."""
    run_score(spark, job.tables, job.target, job.request, job.run_date, run_id, job.batch_size)


def native(spark: SparkSession, job: Job, run_id: str) -> None:
    """(n) our score step with `scoring.compiled: off`: the native model, end to end."""
    request = with_compiled(job.request, "off")
    run_score(spark, job.tables, job.target, request, job.run_date, run_id, job.batch_size)


def ours_with_reasons(spark: SparkSession, job: Job, run_id: str) -> None:
    """(r) our score step with `REASONS_TOP_K` reason codes per row, end to end."""
    request = replace(job.request, reasons_top_k=REASONS_TOP_K)
    run_score(spark, job.tables, job.target, request, job.run_date, run_id, job.batch_size)


def spark_udf(spark: SparkSession, job: Job, run_id: str) -> None:
    """(b) `mlflow.pyfunc.spark_udf` the way users call it, then the same writes as (a).

    The models are logged with `pyfunc_predict_fn="predict_proba"`, so the UDF returns both
    class probabilities as an array; score = the positive class's element, label = 1 when
    score >= the use case's threshold (as (a) computes them). Users fill missing categories
    with the imputer's value in Spark (the pyfunc receives None, which the pipeline's NaN
    imputer does not recognise), and cast numbers to double to match the signature: both are
    done here so the scores equal (a)'s.
    """
    import mlflow.pyfunc

    features, model, lineage, layout = _pinned(spark, job, run_id)
    udf = mlflow.pyfunc.spark_udf(spark, model.pinned_uri, result_type="array<double>")
    keys, names = job.keys, [i.name for i in job.inputs]
    proba = udf(*(_as_signature(F.col(i.name), i).alias(i.name) for i in job.inputs))
    score = F.col("_proba")[job.positive]
    positive = score >= F.lit(job.request.spec.threshold)
    scored = (
        features.select(*keys, *names)
        .select(*keys, proba.alias("_proba"))
        .select(*keys, score.alias("score"), F.when(positive, 1).otherwise(0).alias("label"))
    )
    _write(spark, scored, job, layout, model, lineage)


def floor(spark: SparkSession, job: Job, run_id: str) -> None:
    """(d) the Spark floor: the same read and writes, an identity Arrow UDF instead of a model.

    The keys pass through as Arrow arrays; the binary outputs (`score`, `label`, the task
    `bench.usecase.churn_usecase` checks) are constants made with numpy and pyarrow alone,
    so the workers import nothing of the engine.
    """
    features, model, lineage, layout = _pinned(spark, job, run_id)
    keys = job.keys
    columns = [*keys, *(i.name for i in job.inputs)]
    schema = T.StructType(
        [*(features.schema[k] for k in keys), *output_fields(job.request.spec.task)]
    )
    names = schema.fieldNames()

    def identity(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            rows = batch.num_rows
            yield pa.RecordBatch.from_arrays(
                [
                    *(batch.column(k) for k in keys),
                    pa.array(np.full(rows, 0.5)),
                    pa.array(np.zeros(rows, dtype="int32")),
                ],
                names=names,
            )

    scored = features.select(*columns).mapInArrow(identity, schema)  # type: ignore[arg-type]
    _write(spark, scored, job, layout, model, lineage)


def _as_signature(column: Column, item: ModelInput) -> Column:
    """A features column as the pyfunc signature wants it (see `spark_udf`)."""
    if item.type == "string":
        return F.coalesce(column, F.lit(MISSING_CATEGORY))
    return column.cast("double")


def _pinned(
    spark: SparkSession, job: Job, run_id: str
) -> tuple[DataFrame, ResolvedModel, Lineage, ScoresLayout]:
    """The features partition at the current version, the model, the run's lineage, the layout.

    One registry call and one pinned read, as `run_score` does; the date column is renamed
    to `as_of_date` and the scored tables' layout comes from the features' entity types.
    """
    request, ref = job.request, job.tables["features"]
    model = resolve_model(job.target, request.model_uri)
    version = io.current_version(spark, ref)
    if version is None:
        raise DataError(f"{ref}: features table does not exist")
    features = io.read_partition(spark, ref, request.as_of_column, job.run_date, version)
    lineage = Lineage(model.name, model.version, model.run_id, version, run_id, datetime.now(UTC))
    layout = ScoresLayout(tuple(features.schema[k] for k in request.entity), request.spec.task)
    keyed = features.withColumnRenamed(request.as_of_column, AS_OF_DATE)
    return keyed, model, lineage, layout


def _write(
    spark: SparkSession,
    scored: DataFrame,
    job: Job,
    layout: ScoresLayout,
    model: ResolvedModel,
    lineage: Lineage,
) -> None:
    """The writes of (a): the `scores` slice, then the MERGE into `scores_current` (or, with
    `--current-write overwrite`, what `scoring.current_write: overwrite` writes).

    Whether `scores_current` is fed is decided as in `run_score` (`ScoreRequest.feeds_current`).
    """
    write_scores(
        spark,
        scored,
        job.tables,
        layout,
        (model,),
        (lineage,),
        job.run_date,
        job.batch_size,
        update_current=job.request.feeds_current(model),
        current_write=job.request.current_write,
    )
