"""`scoring score`: one features partition scored by one pinned model version.

Read the features partition at a pinned Delta version → resolve the model once → check the
features against the model signature and the model against the use case's task, on the
driver, before anything is written → ship the model → score with the model UDF → replace
this (date, model, version) slice of `scores` → check the error budget → replace the slice
of `score_errors` → MERGE the slice into `scores_current` when the model is the use case's
serving alias. Rerunning the same date and version gives the same rows.

The error budget: rows the model raises on, or returns NaN / out-of-range outputs for, never
reach `scores` or `scores_current`. The scores write counts all rows and the bad ones on its
own pass (an Observation); with no bad row that is all it costs. With bad rows, the step
fails past `ErrorBudget` (the scores write undone: every table as before the run), or else
finds the bad rows again as the features rows the slice lacks, scores only those again for
their error, and writes them to `score_errors`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from scoring.core import io
from scoring.core.contracts import load_contract
from scoring.core.errors import DataError, ModelError
from scoring.core.faults import fault_point
from scoring.core.session import temporary_conf
from scoring.core.tables import TableRef, Tables
from scoring.model.reasons import (
    TOP_K_KEY,
    ReasonsPlan,
    build_explainer,
    linear_reference,
    needs_reference,
)
from scoring.model.registry import MlflowTarget, ResolvedModel, download_model, resolve_model
from scoring.model.signature import bind_inputs, check_inputs, model_inputs
from scoring.model.tasks import outputs_contract
from scoring.monitor.baseline import download_baseline
from scoring.runs.result import StepResult
from scoring.score.guard import OUTPUT_PROBLEMS, guarded_predict
from scoring.score.tables import NEWER_SCORE, Lineage, ScoresLayout, slice_predicate, with_lineage
from scoring.score.udf import (
    ERROR,
    INPUT,
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
class ErrorBudget:
    """How many features rows a run may fail to score (scoring.max_error_rows / _share).

    The run fails when its bad rows are more than `max_rows` OR more than `max_share` of
    its rows: the defaults (0, 0.0) fail it on any bad row.
    """

    max_rows: int = 0
    max_share: float = 0.0

    def exceeded(self, bad: int, rows: int) -> bool:
        """Whether `bad` of `rows` rows is more than the budget allows."""
        return bad > self.max_rows or (bad > 0 and bad > self.max_share * rows)

    def __str__(self) -> str:
        return f"scoring.max_error_rows={self.max_rows}, scoring.max_error_share={self.max_share}"


@dataclass(frozen=True)
class ErrorCount:
    """What the scoring pass's Observation counted: rows, bad rows, the first error."""

    rows: int
    bad: int
    first_error: str | None


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
    reasons_top_k: int = 0  # scoring.reasons.top_k: reason codes per row; 0 is off

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
    budget: ErrorBudget | None = None,
) -> StepResult:
    """Score the features of `run_date` with the requested model; write the scored tables.

    Rows the model raises on or returns NaN / out-of-range outputs for go to `score_errors`
    instead, within `budget` (default: none allowed); past it, nothing is written.

    Raises:
        ModelError: the model cannot be resolved or loaded, lacks a signature column, or
            cannot serve the use case's task; or more rows failed than `budget` allows.
        DataError: the features table or its partition of `run_date` is missing.
    """
    budget = budget or ErrorBudget()
    model = resolve_model(target, request.model_uri)  # the only registry lookup of the run
    feature_version = _features_version(spark, tables["features"])
    features = io.read_partition(
        spark, tables["features"], request.as_of_column, run_date, feature_version
    )
    scoring = score_features(
        spark, target, request, model, features, tables["features"], budget.max_rows
    )
    lineage = Lineage(
        model.name,
        model.version,
        model.run_id,
        feature_version,
        run_id,
        datetime.now(UTC),
        request.usecase_code,
    )
    observation = Observation()
    scored = scoring.scored.observe(
        observation,
        F.count(F.lit(1)).alias("rows"),
        F.count(F.col(ERROR)).alias("bad"),
        F.min(F.col(ERROR)).alias("first_error"),
    )
    good = scored.where(F.col(ERROR).isNull()).drop(ERROR, INPUT)
    errors = ScoreErrors(
        spark, tables, model, lineage, run_date, scoring.shipped, scoring.keyed, scoring.keys
    )
    counted: list[ErrorCount] = []

    def within_budget(commit: dict[str, Any], before: int | None) -> None:
        count = _counted(observation)
        counted.append(count)
        errors.settle(count, budget, commit, before)

    current = request.feeds_current(model)
    commit = write_scores(
        spark,
        good,
        tables,
        scoring.layout,
        model,
        lineage,
        run_date,
        batch_size,
        update_current=current,
        after_scores=within_budget,
    )
    count = counted[0]
    rows = int(commit["operationMetrics"].get("numOutputRows", 0))
    log.info(
        "scored %d rows of %s with %s (%s); %d rows could not be scored%s",
        rows,
        run_date,
        model.pinned_uri,
        model.requested_uri,
        count.bad,
        f" (score_errors; first error: {count.first_error})" if count.bad else "",
    )
    versions = {"scores": commit["version"]}
    if errors.version is not None:
        versions["score_errors"] = errors.version
    if current:
        own = io.own_commit(spark, tables["scores_current"], run_id)
        if own is not None:  # no commit when the MERGE found nothing newer to write
            versions["scores_current"] = own["version"]
    warnings: tuple[str, ...] = ()
    if count.bad:
        warnings = (
            f"{count.bad} of {count.rows} rows could not be scored and are in score_errors "
            f"(first error: {count.first_error}); within the error budget ({budget})",
        )
    return StepResult(
        step="score",
        run_id=run_id,
        run_date=run_date,
        rows_in=count.rows,
        rows_out=rows,
        rows_quarantined=count.bad,
        table_versions=versions,
        details={
            "model_uri": model.pinned_uri,
            "model_version": model.version,
            "feature_table_version": feature_version,
            "scores_current": current,
            "error_rows": count.bad,
        },
        warnings=warnings,
    )


@dataclass(frozen=True)
class Scoring:
    """One date's features scored (lazily): `scored` has the keys, `as_of_date`, the task's
    outputs, then ERROR and INPUT (null for a good row; see `score_frame`)."""

    scored: DataFrame
    layout: ScoresLayout
    shipped: ShippedModel
    keyed: DataFrame  # the features with the as-of column named `as_of_date`
    keys: tuple[str, ...]


def score_features(
    spark: SparkSession,
    target: MlflowTarget,
    request: ScoreRequest,
    model: ResolvedModel,
    features: DataFrame,
    table: TableRef,
    error_limit: int = 0,
) -> Scoring:
    """The features of one date scored by the resolved `model`.

    Ships the model, checks it on the driver (`_check_model`) and applies the model UDF;
    lazy apart from those checks. The score step and `scoring replay` both score through
    here, so a replay runs the same scoring code as the run it reproduces. `error_limit`:
    the bad rows past which a batch is no longer bisected (`score_frame`).
    """
    shipped = _shipped(spark, target, model, request.spec)
    _check_model(features, shipped, request, str(table), model)
    reasons = _reasons_plan(target, model, shipped, request.reasons_top_k)
    entity = tuple(features.schema[k] for k in request.entity)
    layout = ScoresLayout(entity, request.spec.task, reasons=reasons is not None)
    keyed = features.withColumnRenamed(request.as_of_column, AS_OF_DATE)
    keys = (*request.entity, AS_OF_DATE)
    scored = score_frame(keyed, shipped, keys, error_limit=error_limit, reasons=reasons)
    return Scoring(scored, layout, shipped, keyed, keys)


def _counted(observation: Observation) -> ErrorCount:
    """The Observation's counts: the scores write computed the scored rows once, and counted
    all of them and the bad ones on that same pass (no count() over the data)."""
    metrics = observation.get
    first = metrics.get("first_error")
    return ErrorCount(int(metrics["rows"]), int(metrics["bad"]), str(first) if first else None)


class ScoreErrors:
    """The run's `score_errors` slice: checked against the budget after the scores write,
    written (or cleared) before `scores_current` is fed."""

    def __init__(
        self,
        spark: SparkSession,
        tables: Tables,
        model: ResolvedModel,
        lineage: Lineage,
        run_date: date,
        shipped: ShippedModel,
        keyed: DataFrame,
        keys: tuple[str, ...],
    ) -> None:
        self.spark, self.tables, self.model, self.lineage = spark, tables, model, lineage
        self.run_date, self.shipped, self.keyed, self.keys = run_date, shipped, keyed, keys
        self.version: int | None = None  # the score_errors version this run committed
        self.scores_version: int | None = None  # the scores version this run committed

    def settle(
        self, count: ErrorCount, budget: ErrorBudget, commit: dict[str, Any], before: int | None
    ) -> None:
        """Over budget (or rows unaccounted for): undo the scores write and fail in one line.
        Otherwise replace the run's slice of score_errors with its bad rows (cleared when
        there are none); on any failure the scores write is undone too."""
        self.scores_version = int(commit["version"])
        scores = self.tables["scores"]
        written = int(commit["operationMetrics"].get("numOutputRows", 0))
        if written + count.bad != count.rows:
            undone = io.undo_own_commits(self.spark, scores, before, self.lineage.run_id, "score")
            raise DataError(
                f"{scores}: conservation broken: {count.rows} rows scored, {count.bad} bad, but "
                f"{written} written; {_undone(undone)}"
            )
        if budget.exceeded(count.bad, count.rows):
            undone = io.undo_own_commits(self.spark, scores, before, self.lineage.run_id, "score")
            raise ModelError(
                f"{self.model.pinned_uri}: {count.bad} of {count.rows} rows of {self.run_date} "
                f"could not be scored (first error: {count.first_error}), more than the error "
                f"budget allows ({budget}); {_undone(undone)}"
            )
        ref = self.tables["score_errors"]
        errors_before = io.current_version(self.spark, ref)
        try:
            if count.bad:
                self._write(count)
            elif errors_before is not None:
                self._clear()
        except Exception:
            io.undo_own_commits(self.spark, scores, before, self.lineage.run_id, "score")
            io.undo_own_commits(self.spark, ref, errors_before, self.lineage.run_id, "score")
            raise
        if count.bad or errors_before is not None:  # else the table does not exist
            own = io.own_commit(self.spark, ref, self.lineage.run_id, after=errors_before)
            self.version = None if own is None else int(own["version"])

    @property
    def _slice(self) -> str:
        return slice_predicate(self.run_date, self.model.name, self.model.version)

    def _write(self, count: ErrorCount) -> None:
        """The bad rows, found again by what the scores slice lacks; only they are scored
        again (for their error), so the happy path never pays for this pass."""
        spark, ref, lineage = self.spark, self.tables["score_errors"], self.lineage
        contract = load_contract("score_errors")
        entity = self.keys[:-1]
        scores = io.read_table(spark, self.tables["scores"], self.scores_version)
        written = scores.where(self._slice)
        missing = self.keyed.join(written.select(*self.keys), list(self.keys), "left_anti")
        again = score_frame(missing, self.shipped, self.keys, error_limit=count.bad)
        rows = again.select(
            F.col(AS_OF_DATE).alias("as_of_date"),
            F.to_json(F.struct(*[F.col(k) for k in entity])).alias("entity_key"),
            F.lit(lineage.model_name).alias("model_name"),
            F.lit(lineage.model_version).alias("model_version"),
            F.lit(lineage.run_id).alias("run_id"),
            F.coalesce(F.col(ERROR), F.lit(f"{NOT_REPRODUCED}{count.first_error}")).alias("error"),
            F.col(INPUT).alias("input_values"),
            F.lit(lineage.scored_at).alias("recorded_at"),
        ).select(*[F.col(c.name).cast(c.spark_type).alias(c.name) for c in contract.columns])
        io.ensure_table(spark, ref, io.contract_spec(contract))
        metadata = commit_metadata(
            self.model, lineage, self.tables["features"], self.run_date, self.tables.usecase
        )
        io.write_delta(rows, ref, "overwrite", metadata, self._slice, contract.partition_by)

    def _clear(self) -> None:
        """A rerun without bad rows removes the slice an earlier run of the date left."""
        ref = self.tables["score_errors"]
        if not io.read_table(self.spark, ref).where(self._slice).select(F.lit(1)).head(1):
            return  # nothing to clear: no commit
        contract = load_contract("score_errors")
        empty = self.spark.createDataFrame([], io.contract_spec(contract).schema)
        metadata = commit_metadata(
            self.model, self.lineage, self.tables["features"], self.run_date, self.tables.usecase
        )
        io.write_delta(empty, ref, "overwrite", metadata, self._slice, contract.partition_by)


#: The error of a row that failed in the scoring pass but not when scored again (a model
#: that is not deterministic), followed by the run's first error.
NOT_REPRODUCED = "not reproduced when scored again; the run's first error: "


def _undone(undone: bool) -> str:
    """How an over-budget or broken run leaves the tables, for its one-line error."""
    if undone:
        return "nothing was written (the scores write was undone)"
    return "the scores write was not undone: another run committed since; rerun the date"


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
    after_scores: Callable[[dict[str, Any], int | None], None] | None = None,
) -> dict[str, Any]:
    """Stamp `scored` with `lineage`, replace its slice of `scores`, MERGE it into scores_current.

    `scored` holds the keys and the task's outputs; it is computed once, by the overwrite of
    the (run_date, model version) slice, in Arrow batches of exactly `batch_size` rows (no
    byte cap). `scores_current` (when `update_current`) is fed from the committed slice read
    back at its version, not from `scored` again. Both writes leave out Parquet's statistics
    of the string columns; the session's settings are restored afterwards. Every commit
    carries `commit_metadata`. `after_scores(commit, version before)` runs between the
    `scores` commit and the MERGE (the error budget: it may undo the commit and raise).
    Returns the `scores` commit (`io.own_commit`).
    """
    metadata = commit_metadata(model, lineage, tables["features"], run_date, tables.usecase)
    predicate = slice_predicate(run_date, model.name, model.version)
    scores, current = tables["scores"], tables["scores_current"]
    io.ensure_table(spark, scores, layout.table_spec(current=False))
    before = io.current_version(spark, scores)
    stamped = with_lineage(scored, lineage, layout)
    batches = {BATCH_SIZE_CONF: str(batch_size), MAX_BYTES_CONF: NO_BYTE_LIMIT}
    with temporary_conf(spark, {**batches, **layout.parquet_string_stats_off}):
        io.write_delta(stamped, scores, "overwrite", metadata, replace_where=predicate)
    commit = io.require_own_commit(spark, scores, lineage.run_id, after=before)
    if after_scores is not None:
        after_scores(commit, before)
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
        predictor = driver_predictor(shipped)
    except ModelError as exc:
        raise ModelError(f"{model.pinned_uri}: {exc}") from exc
    task = request.spec.task
    types = [c.type for c in outputs_contract(task).columns]
    errors = guarded_predict(predictor, frame, task, types, len(frame)).errors
    raised = [e for e in errors if e is not None and not e.startswith(OUTPUT_PROBLEMS)]
    if frame.shape[0] and len(raised) == len(errors):
        # Not a few bad rows (the error budget's business): the model serves no row at all.
        raise ModelError(
            f"{model.pinned_uri}: predicting {len(frame)} rows of {table} on the driver failed "
            f"for every row before scoring: {raised[0]}"
        )


def _reasons_plan(
    target: MlflowTarget, model: ResolvedModel, shipped: ShippedModel, top_k: int
) -> ReasonsPlan | None:
    """With reason codes on, the model's explainer built on the driver before anything is
    scored (a model that cannot be explained fails here, in one line) and, for a linear
    model, its reference means from the version's monitoring baseline."""
    if top_k == 0:
        return None
    predictor = driver_predictor(shipped)
    names = [i.name for i in shipped.inputs]
    reference = None
    try:
        if needs_reference(predictor):
            path = download_baseline(
                target.tracking_uri, target.registry_uri, model.name, model.version
            )
            baseline = bind_inputs(pd.read_parquet(path, columns=names), shipped.inputs)
            reference = tuple(float(v) for v in linear_reference(predictor, names, baseline))
        build_explainer(predictor, names, reference)
    except ModelError as exc:
        raise ModelError(f"{model.pinned_uri}: {exc} ({TOP_K_KEY} = {top_k})") from exc
    return ReasonsPlan(top_k, reference)


def _features_version(spark: SparkSession, ref: TableRef) -> int:
    """The features table's current version, pinned for the whole run."""
    version = io.current_version(spark, ref)
    if version is None:
        raise DataError(f"{ref}: features table does not exist")
    return version
