"""`scoring score`: one features partition scored by one pinned model version.

Read the features partition at a pinned Delta version → resolve the model once → check the
features against the model signature (before anything is written) → ship the model → score
with the model UDF → replace this (date, model, version) slice of `scores` → MERGE the slice
into `scores_current`. Rerunning the same date and model version gives the same rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from scoring import io
from scoring.config import TableRef
from scoring.contracts import load_contract, spark_schema
from scoring.errors import DataError
from scoring.model_adapter import check_inputs, model_inputs
from scoring.model_udf import ShippedModel, already_shipped, score_frame, ship_model
from scoring.registry import MlflowTarget, ResolvedModel, download_model, resolve_model
from scoring.scores import (
    CURRENT_PROPERTIES,
    NEWER_SCORE,
    PARQUET_STRING_STATS_OFF,
    SCORES_PROPERTIES,
    Lineage,
    slice_predicate,
    with_lineage,
)
from scoring.session import temporary_conf
from scoring.steps import StepResult

log = logging.getLogger(__name__)
KEYS = ("customer_id", "as_of_date")
BATCH_SIZE_CONF = "spark.sql.execution.arrow.maxRecordsPerBatch"
# Spark 4.0 also caps Arrow batches at 256 MB (SPARK-51316) and, to do so, measures the batch
# after every row it adds: for mapInArrow's struct of all input columns that was 13 % of the
# JVM's time in a scoring write (bench/RESULTS.md, finding 12). Int.MaxValue turns the
# check off; batches are then bounded by scoring.batch_size rows alone.
MAX_BYTES_CONF = "spark.sql.execution.arrow.maxBytesPerBatch"
NO_BYTE_LIMIT = str(2**31 - 1)


@dataclass(frozen=True)
class ScoreTables:
    """The tables `scoring score` reads and writes."""

    features: TableRef
    scores: TableRef
    scores_current: TableRef


def run_score(
    spark: SparkSession,
    tables: ScoreTables,
    target: MlflowTarget,
    model_uri: str,
    run_date: date,
    run_id: str,
    batch_size: int,
) -> StepResult:
    """Score the features of `run_date` with `model_uri` and write `scores`, `scores_current`.

    Raises:
        ModelError: the model cannot be resolved, or the features lack a signature column.
        DataError: the features table or its partition of `run_date` is missing.
    """
    model = resolve_model(target, model_uri)  # the only registry lookup of the run
    feature_version = _features_version(spark, tables.features)
    features = io.read_partition(spark, tables.features, "as_of_date", run_date, feature_version)
    shipped = _shipped(spark, target, model)
    check_inputs(features.schema, shipped.inputs, str(tables.features))
    lineage = Lineage(
        model.name, model.version, model.run_id, feature_version, run_id, datetime.now(UTC)
    )
    scored = score_frame(features, shipped, KEYS)
    commit = write_scores(spark, scored, tables, model, lineage, run_date, batch_size)
    rows = int(commit["operationMetrics"].get("numOutputRows", 0))
    log.info("scored %d rows of %s with %s (%s)", rows, run_date, model.pinned_uri, model_uri)
    return StepResult(
        step="score",
        run_id=run_id,
        run_date=run_date,
        rows_in=rows,
        rows_out=rows,
        table_versions={
            "scores": commit["version"],
            "scores_current": io.last_commit(spark, tables.scores_current)["version"],
        },
        details={
            "model_uri": model.pinned_uri,
            "model_version": model.version,
            "feature_table_version": feature_version,
        },
    )


def write_scores(
    spark: SparkSession,
    scored: DataFrame,
    tables: ScoreTables,
    model: ResolvedModel,
    lineage: Lineage,
    run_date: date,
    batch_size: int,
) -> dict[str, Any]:
    """Stamp `scored` with `lineage`, replace its slice of `scores`, MERGE it into scores_current.

    `scored` holds the keys, `score` and `label`; it is computed once, by the overwrite of the
    (run_date, model version) slice, in Arrow batches of exactly `batch_size` rows (no byte
    cap). `scores_current` is fed from the committed slice read back at its version, not from
    `scored` again. Both writes leave out Parquet's statistics of the string columns
    (`PARQUET_STRING_STATS_OFF`); the session's settings are restored afterwards. Every
    commit carries `commit_metadata`. Returns the `scores` commit (`io.last_commit`).
    """
    metadata = commit_metadata(model, lineage, tables.features, run_date)
    predicate = slice_predicate(run_date, model.name, model.version)
    schema = spark_schema(load_contract("scores"))
    io.ensure_table(spark, tables.scores, schema, ("as_of_date",), SCORES_PROPERTIES)
    stamped = with_lineage(scored, lineage)
    batches = {BATCH_SIZE_CONF: str(batch_size), MAX_BYTES_CONF: NO_BYTE_LIMIT}
    with temporary_conf(spark, {**batches, **PARQUET_STRING_STATS_OFF}):
        io.write_delta(stamped, tables.scores, "overwrite", metadata, replace_where=predicate)
    commit = io.last_commit(spark, tables.scores)
    written = io.read_table(spark, tables.scores, commit["version"]).where(predicate)
    io.ensure_table(spark, tables.scores_current, schema, properties=CURRENT_PROPERTIES)
    with temporary_conf(spark, PARQUET_STRING_STATS_OFF):
        io.merge_newer(
            spark, written, tables.scores_current, ("customer_id",), NEWER_SCORE, metadata
        )
    return commit


def commit_metadata(
    model: ResolvedModel, lineage: Lineage, features: TableRef, run_date: date
) -> dict[str, Any]:
    """The userMetadata of every commit of a scoring run (io.to_json adds the code version)."""
    return {
        "run_id": lineage.run_id,
        "step": "score",
        "run_date": run_date.isoformat(),
        "model_uri": model.requested_uri,
        "model_pinned_uri": model.pinned_uri,
        "model_name": model.name,
        "model_version": model.version,
        "model_run_id": model.run_id,
        "source_tables": {str(features): lineage.feature_table_version},
        "feature_table_version": lineage.feature_table_version,
    }


def _shipped(spark: SparkSession, target: MlflowTarget, model: ResolvedModel) -> ShippedModel:
    """The model version on the executors: shipped before in this application, or now."""
    found = already_shipped(spark, target.registry_uri, model.name, model.version)
    if found is not None:
        return found
    folder = download_model(target, model)
    inputs = model_inputs(folder)
    return ship_model(spark, target.registry_uri, folder, model.name, model.version, inputs)


def _features_version(spark: SparkSession, ref: TableRef) -> int:
    """The features table's current version, pinned for the whole run."""
    version = io.current_version(spark, ref)
    if version is None:
        raise DataError(f"{ref}: features table does not exist")
    return version
