"""`scoring score`: one features partition scored by one pinned model version.

Read the features partition at a pinned Delta version → resolve the model once → check the
features against the model signature and the model against the use case's task, on the
driver, before anything is written → ship the model → score with the model UDF → replace
this (date, model, version) slice of `scores` → MERGE the slice into `scores_current` when
the model is the use case's serving alias. Rerunning the same date and version gives the
same rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from scoring.core import io
from scoring.core.errors import DataError, ModelError
from scoring.core.faults import fault_point
from scoring.core.session import temporary_conf
from scoring.core.tables import TableRef, Tables
from scoring.model.registry import MlflowTarget, ResolvedModel, download_model, resolve_model
from scoring.model.signature import bind_inputs, check_inputs, model_inputs
from scoring.runs.result import StepResult
from scoring.score.tables import NEWER_SCORE, Lineage, ScoresLayout, slice_predicate, with_lineage
from scoring.score.udf import (
    ShippedModel,
    already_shipped,
    driver_predictor,
    score_frame,
    ship_model,
)
from scoring.usecase.spec import AS_OF_DATE, ModelSpec

log = logging.getLogger(__name__)
BATCH_SIZE_CONF = "spark.sql.execution.arrow.maxRecordsPerBatch"
# Spark 4.0 also caps Arrow batches at 256 MB (SPARK-51316) and, to do so, measures the batch
# after every row it adds: for mapInArrow's struct of all input columns that was 13 % of the
# JVM's time in a scoring write (bench/RESULTS.md, finding 12). Int.MaxValue turns the
# check off; batches are then bounded by scoring.batch_size rows alone.
MAX_BYTES_CONF = "spark.sql.execution.arrow.maxBytesPerBatch"
NO_BYTE_LIMIT = str(2**31 - 1)
#: Rows of the real features the model predicts on the driver before the run (task check).
CHECK_ROWS = 20


@dataclass(frozen=True)
class ScoreRequest:
    """What one scoring run scores with: the model URI, the use case's model and features."""

    model_uri: str
    spec: ModelSpec
    registered_name: str
    entity: tuple[str, ...]
    as_of_column: str = AS_OF_DATE
    update_current: bool | None = None  # None: only the use case's serving alias does
    usecase_code: str | None = None  # the use case folder's fingerprint, recorded in commits

    def feeds_current(self, model: ResolvedModel) -> bool:
        """Whether this run's slice goes into `scores_current` (decision systems read it)."""
        if self.update_current is not None:
            return self.update_current
        return model.name == self.registered_name and model.alias == self.spec.alias


def run_score(
    spark: SparkSession,
    tables: Tables,
    target: MlflowTarget,
    request: ScoreRequest,
    run_date: date,
    run_id: str,
    batch_size: int,
) -> StepResult:
    """Score the features of `run_date` with the requested model; write the scored tables.

    Raises:
        ModelError: the model cannot be resolved or loaded, lacks a signature column, or
            cannot serve the use case's task.
        DataError: the features table or its partition of `run_date` is missing.
    """
    model = resolve_model(target, request.model_uri)  # the only registry lookup of the run
    feature_version = _features_version(spark, tables["features"])
    features = io.read_partition(
        spark, tables["features"], request.as_of_column, run_date, feature_version
    )
    scored, layout = score_features(spark, target, request, model, features, tables["features"])
    lineage = Lineage(
        model.name,
        model.version,
        model.run_id,
        feature_version,
        run_id,
        datetime.now(UTC),
        request.usecase_code,
    )
    current = request.feeds_current(model)
    commit = write_scores(
        spark, scored, tables, layout, model, lineage, run_date, batch_size, update_current=current
    )
    rows = int(commit["operationMetrics"].get("numOutputRows", 0))
    log.info(
        "scored %d rows of %s with %s (%s)", rows, run_date, model.pinned_uri, model.requested_uri
    )
    versions = {"scores": commit["version"]}
    if current:
        own = io.own_commit(spark, tables["scores_current"], run_id)
        if own is not None:  # no commit when the MERGE found nothing newer to write
            versions["scores_current"] = own["version"]
    return StepResult(
        step="score",
        run_id=run_id,
        run_date=run_date,
        rows_in=rows,
        rows_out=rows,
        table_versions=versions,
        details={
            "model_uri": model.pinned_uri,
            "model_version": model.version,
            "feature_table_version": feature_version,
            "scores_current": current,
        },
    )


def score_features(
    spark: SparkSession,
    target: MlflowTarget,
    request: ScoreRequest,
    model: ResolvedModel,
    features: DataFrame,
    table: TableRef,
) -> tuple[DataFrame, ScoresLayout]:
    """The features of one date scored by the resolved `model`: keys, `as_of_date`, outputs.

    Ships the model, checks it on the driver (`_check_model`) and applies the model UDF;
    lazy apart from those checks. The score step and `scoring replay` both score through
    here, so a replay runs the same scoring code as the run it reproduces.
    """
    shipped = _shipped(spark, target, model, request.spec)
    _check_model(features, shipped, request, str(table), model)
    layout = ScoresLayout(tuple(features.schema[k] for k in request.entity), request.spec.task)
    keyed = features.withColumnRenamed(request.as_of_column, AS_OF_DATE)
    return score_frame(keyed, shipped, (*request.entity, AS_OF_DATE)), layout


def write_scores(
    spark: SparkSession,
    scored: DataFrame,
    tables: Tables,
    layout: ScoresLayout,
    model: ResolvedModel,
    lineage: Lineage,
    run_date: date,
    batch_size: int,
    update_current: bool = True,
) -> dict[str, Any]:
    """Stamp `scored` with `lineage`, replace its slice of `scores`, MERGE it into scores_current.

    `scored` holds the keys and the task's outputs; it is computed once, by the overwrite of
    the (run_date, model version) slice, in Arrow batches of exactly `batch_size` rows (no
    byte cap). `scores_current` (when `update_current`) is fed from the committed slice read
    back at its version, not from `scored` again. Both writes leave out Parquet's statistics
    of the string columns; the session's settings are restored afterwards. Every commit
    carries `commit_metadata`. Returns the `scores` commit (`io.own_commit`).
    """
    metadata = commit_metadata(model, lineage, tables["features"], run_date, tables.usecase)
    predicate = slice_predicate(run_date, model.name, model.version)
    scores, current = tables["scores"], tables["scores_current"]
    io.ensure_table(spark, scores, layout.table_spec(current=False))
    stamped = with_lineage(scored, lineage, layout)
    batches = {BATCH_SIZE_CONF: str(batch_size), MAX_BYTES_CONF: NO_BYTE_LIMIT}
    with temporary_conf(spark, {**batches, **layout.parquet_string_stats_off}):
        io.write_delta(stamped, scores, "overwrite", metadata, replace_where=predicate)
    commit = io.require_own_commit(spark, scores, lineage.run_id)
    fault_point("score.written")
    if not update_current:
        return commit
    written = io.read_table(spark, scores, commit["version"]).where(predicate)
    io.ensure_table(spark, current, layout.table_spec(current=True))
    with temporary_conf(spark, layout.parquet_string_stats_off):
        io.merge_newer(spark, written, current, layout.keys, NEWER_SCORE, metadata)
    return commit


def commit_metadata(
    model: ResolvedModel, lineage: Lineage, features: TableRef, run_date: date, usecase: str
) -> dict[str, Any]:
    """The userMetadata of every commit of a scoring run (io.to_json adds the code version)."""
    return {
        "run_id": lineage.run_id,
        "usecase": usecase,
        "step": "score",
        "run_date": run_date.isoformat(),
        "model_uri": model.requested_uri,
        "model_pinned_uri": model.pinned_uri,
        "model_name": model.name,
        "model_version": model.version,
        "model_run_id": model.run_id,
        "source_tables": {str(features): lineage.feature_table_version},
        "feature_table_version": lineage.feature_table_version,
        "usecase_code": lineage.usecase_code,
    }


def _shipped(
    spark: SparkSession, target: MlflowTarget, model: ResolvedModel, spec: ModelSpec
) -> ShippedModel:
    """The model version on the executors: shipped before in this application, or now."""
    found = already_shipped(spark, target.registry_uri, model.name, model.version, spec)
    if found is not None:
        return found
    folder = download_model(target, model)
    inputs = model_inputs(folder)
    return ship_model(spark, target.registry_uri, folder, model.name, model.version, inputs, spec)


def _check_model(
    features: DataFrame,
    shipped: ShippedModel,
    request: ScoreRequest,
    table: str,
    model: ResolvedModel,
) -> None:
    """Before anything is scored: entity and inputs are columns; the model serves the task.

    The model is loaded on the driver and predicts a few rows of the real features, so a
    model that cannot serve the task fails here, in one line, not in the executors.
    """
    missing = [c for c in request.entity if c not in features.columns]
    if missing:
        raise DataError(f"{table}: entity column '{missing[0]}' is missing")
    try:
        check_inputs(features.schema, shipped.inputs, table)
        sample = features.select(*[F.col(i.name) for i in shipped.inputs]).limit(CHECK_ROWS)
        frame = bind_inputs(sample.toPandas(), shipped.inputs)
        outputs = driver_predictor(shipped).predict(frame)
    except ModelError as exc:
        raise ModelError(f"{model.pinned_uri}: {exc}") from exc
    except Exception as exc:  # the model's own failure, reported in one line
        raise ModelError(
            f"{model.pinned_uri}: predicting {CHECK_ROWS} rows of {table} on the driver failed "
            f"before scoring: {type(exc).__name__}: {exc}"
        ) from exc
    if len(outputs) != len(frame):
        raise ModelError(
            f"{model.pinned_uri}: returned {len(outputs)} rows for the {len(frame)} it was given"
        )


def _features_version(spark: SparkSession, ref: TableRef) -> int:
    """The features table's current version, pinned for the whole run."""
    version = io.current_version(spark, ref)
    if version is None:
        raise DataError(f"{ref}: features table does not exist")
    return version
