"""`scoring score`: one features partition scored by pinned model versions, in one pass.

Resolve the model (and its shadows) once → read the features partition at a pinned Delta
version → check the features against each model's signature and each model against the use
case's task, on the driver, before anything is written → ship each model → score every
model with the one model UDF (each input batch read once) → replace every (date, model,
version) slice of `scores` in one commit → check the error budget per model
(`scoring.score.budget`) → replace the slices of `score_errors` → MERGE the requested
model's slice into `scores_current` when it is the use case's serving alias. Rerunning the
same date and versions gives the same rows.

Shadows (champion / challenger): `ScoreRequest.shadow` names models scored in the same pass
into `scores` only, each row with its own lineage. A shadow alias without a version, or at
the serving version, is skipped (INFO); a shadow that fails its checks is skipped with a
warning; a shadow over the error budget has its slice dropped, with a warning, while the
serving model's scores are written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from scoring.core import io
from scoring.core.errors import DataError, ModelError, ModelNotFoundError
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
from scoring.model.registry import (
    MlflowTarget,
    ResolvedModel,
    download_model,
    parse_model_uri,
    resolve_model,
)
from scoring.model.signature import bind_inputs, check_inputs, model_inputs
from scoring.model.tasks import outputs_contract
from scoring.monitor.baseline import download_baseline
from scoring.runs.result import StepResult
from scoring.score import gate
from scoring.score.budget import (
    ErrorBudget,
    ErrorCount,
    Scored,
    Settlement,
    count_columns,
)
from scoring.score.current import MERGE, feed_current
from scoring.score.guard import OUTPUT_PROBLEMS, guarded_predict
from scoring.score.tables import (
    Lineage,
    ScoresLayout,
    commit_metadata,
    slice_predicate,
    slices_predicate,
    with_lineage,
)
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

__all__ = ["ErrorBudget", "ErrorCount", "ScoreRequest", "commit_metadata", "run_score"]
log = logging.getLogger(__name__)
BATCH_SIZE_CONF = "spark.sql.execution.arrow.maxRecordsPerBatch"
# Spark 4.0 also caps Arrow batches at 256 MB (SPARK-51316) and, to do so, measures the batch
# after every row it adds: for mapInArrow's struct of all input columns that was 13 % of the
# JVM's time in a scoring write (bench/RESULTS.md, finding 12). Int.MaxValue turns the
# check off; batches are then bounded by scoring.batch_size rows alone.
MAX_BYTES_CONF = "spark.sql.execution.arrow.maxBytesPerBatch"
NO_BYTE_LIMIT = str(2**31 - 1)
# Before a partitioned write Spark sorts each task's rows by the partition columns, and holds
# every row of the task in memory to do so. A `scores` slice is one as_of_date, so one open
# file per task needs no sort: with this setting Spark's writer keeps files open and writes
# the rows as they come. It falls back to sorting the rest of a task's rows as soon as the
# number of open files *reaches* the setting, so one date needs 2 (with 1 the writer opens
# its file, then sorts every following row: bench/RESULTS.md, findings 27 and 29). A second
# date in a task still comes out right, sorted.
WRITERS_CONF = "spark.sql.maxConcurrentOutputFileWriters"
ONE_DATE_UNSORTED = "2"
#: Rows of the real features the model predicts on the driver before the run (task check).
CHECK_ROWS = 20


@dataclass(frozen=True)
class ScoreRequest:
    """What one scoring run scores with: the model URI, the use case's model and features,
    and the shadow models scored in the same pass (into `scores` only)."""

    model_uri: str
    spec: ModelSpec
    registered_name: str
    entity: tuple[str, ...]
    as_of_column: str = AS_OF_DATE
    update_current: bool | None = None  # None: only the use case's serving alias does
    usecase_code: str | None = None  # the use case folder's fingerprint, recorded in commits
    reasons_top_k: int = 0  # scoring.reasons.top_k: reason codes per row; 0 is off
    shadow: tuple[str, ...] = ()  # model URIs scored in the same pass (`resolve_models`)
    compiled: str = "auto"  # scoring.compiled: auto | off (`scoring.score.gate`)
    current_write: str = MERGE  # scoring.current_write: merge | overwrite (`score.current`)

    def feeds_current(self, model: ResolvedModel) -> bool:
        """Whether this run's slice goes into `scores_current` (decision systems read it)."""
        if self.update_current is not None:
            return self.update_current
        return model.name == self.registered_name and model.alias == self.spec.alias

    def shadow_key(self, model: ResolvedModel) -> str:
        """How `details.shadow_versions` names a shadow: its alias of the use case's model,
        else the URI it was asked for."""
        if model.alias is not None and model.name == self.registered_name:
            return model.alias
        return model.requested_uri


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
    """Score the features of `run_date` with the requested model and its shadows, in one
    pass; write the scored tables.

    Rows a model raises on or returns NaN / out-of-range outputs for go to `score_errors`
    instead, within `budget` (default: none allowed); past it, nothing is written for the
    requested model, and a shadow's slice is dropped (`scoring.score.budget`).

    Raises:
        ModelError: the model cannot be resolved or loaded, lacks a signature column, or
            cannot serve the use case's task; or more rows failed than `budget` allows.
        DataError: the features table or its partition of `run_date` is missing.
    """
    budget = budget or ErrorBudget()
    resolved = resolve_models(target, request)  # the only registry lookups of the run
    feature_version = _features_version(spark, tables["features"])
    features = io.read_partition(
        spark, tables["features"], request.as_of_column, run_date, feature_version
    )
    scoring = score_features(
        spark, target, request, resolved, features, tables["features"], budget.max_rows
    )
    models, scored_at = scoring.models, datetime.now(UTC)
    lineages = tuple(
        Lineage(
            m.name, m.version, m.run_id, feature_version, run_id, scored_at, request.usecase_code
        )
        for m in models
    )
    observation = Observation()
    scored = scoring.scored.observe(observation, *count_columns(len(models)))
    good = scored.where(F.col(ERROR).isNull()).drop(ERROR, INPUT)
    settle = Settlement(
        spark,
        tables,
        Scored(models, scoring.shipped, lineages, scoring.keyed, scoring.keys, scoring.layout),
        run_date,
        budget,
        observation,
    )
    current = request.feeds_current(models[0])
    commit = write_scores(
        spark,
        good,
        tables,
        scoring.layout,
        models,
        lineages,
        run_date,
        batch_size,
        update_current=current,
        after_scores=settle,
        current_write=request.current_write,
    )
    done = Done(commit, current, feature_version, run_id, run_date)
    return _result(spark, tables, request, scoring, settle, done)


@dataclass(frozen=True)
class Done:
    """What the writes left: the scores commit, whether scores_current was fed, and the
    run's identity."""

    commit: dict[str, Any]
    current: bool
    feature_version: int
    run_id: str
    run_date: date


def _result(
    spark: SparkSession,
    tables: Tables,
    request: ScoreRequest,
    scoring: Scoring,
    settle: Settlement,
    done: Done,
) -> StepResult:
    """The step's result: counts of the serving model, every model in `details`."""
    models, counts = scoring.models, settle.counts
    commit, current, run_id, run_date = done.commit, done.current, done.run_id, done.run_date
    serving = models[0]
    for model, count in zip(models, counts, strict=True):
        log.info(
            "scored %d rows of %s with %s (%s); %d rows could not be scored%s",
            count.rows - count.bad,
            run_date,
            model.pinned_uri,
            model.requested_uri,
            count.bad,
            f" (first error: {count.first_error})" if count.bad else "",
        )
    versions = {"scores": commit["version"]}
    if settle.errors_version is not None:
        versions["score_errors"] = settle.errors_version
    if current:
        own = io.own_commit(spark, tables["scores_current"], run_id)
        if own is not None:  # no commit when the MERGE found nothing newer to write
            versions["scores_current"] = own["version"]
    kept = [i for i in range(1, len(models)) if i not in settle.dropped]
    written = {request.shadow_key(models[i]): models[i].pinned_uri for i in (0, *kept)}
    return StepResult(
        step="score",
        run_id=run_id,
        run_date=run_date,
        rows_in=counts[0].rows,
        rows_out=counts[0].rows - counts[0].bad,
        rows_quarantined=counts[0].bad,
        table_versions=versions,
        details={
            "model_uri": serving.pinned_uri,
            "model_version": serving.version,
            "shadow_versions": {request.shadow_key(models[i]): models[i].version for i in kept},
            "shadow_dropped": {
                request.shadow_key(models[i]): models[i].version for i in settle.dropped
            },
            "models": written,
            "feature_table_version": done.feature_version,
            "scores_current": current,
            "error_rows": counts[0].bad,
            "shadow_error_rows": {
                request.shadow_key(models[i]): counts[i].bad for i in range(1, len(models))
            },
            "compiled": {
                request.shadow_key(m): c.detail
                for m, c in zip(models, scoring.compiled, strict=True)
            },
        },
        warnings=(
            *scoring.skipped,
            *(
                f"{m.pinned_uri} {c.detail}"
                for m, c in zip(models, scoring.compiled, strict=True)
                if c.warning
            ),
            *settle.warnings,
        ),
    )


def resolve_models(target: MlflowTarget, request: ScoreRequest) -> tuple[ResolvedModel, ...]:
    """The requested model, then each shadow, each resolved once to a version.

    A shadow alias without a version, or at a version already scored in the run (the
    serving version), is skipped with an INFO log: a use case may name `challenger` before
    one exists. A shadow named by version must exist.

    Raises:
        ModelNotFoundError: the requested model, or a shadow named by version, is missing.
    """
    models = [resolve_model(target, request.model_uri)]
    for uri in request.shadow:
        try:
            model = resolve_model(target, uri)
        except ModelNotFoundError as exc:
            if parse_model_uri(uri)[1] is None:
                raise
            log.info("shadow %s skipped: no version in the registry (%s)", uri, exc)
            continue
        same = next((m for m in models if (m.name, m.version) == (model.name, model.version)), None)
        if same is not None:
            log.info(
                "shadow %s skipped: it is %s, which this run scores already (as %s)",
                uri,
                model.pinned_uri,
                same.requested_uri,
            )
            continue
        models.append(model)
    return tuple(models)


@dataclass(frozen=True)
class Scoring:
    """One date's features scored (lazily) by one or more models: `scored` has the keys,
    `as_of_date`, the task's outputs, then ERROR, INPUT and MODEL (see `score_frame`)."""

    scored: DataFrame
    layout: ScoresLayout
    shipped: tuple[ShippedModel, ...]
    keyed: DataFrame  # the features with the as-of column named `as_of_date`
    keys: tuple[str, ...]
    models: tuple[ResolvedModel, ...]  # the models scored, the requested one first
    skipped: tuple[str, ...] = ()  # a line per shadow that failed its checks, not scored
    compiled: tuple[gate.Choice, ...] = ()  # per model: compiled or native, and why


def score_features(
    spark: SparkSession,
    target: MlflowTarget,
    request: ScoreRequest,
    model: ResolvedModel | Sequence[ResolvedModel],
    features: DataFrame,
    table: TableRef,
    error_limit: int = 0,
) -> Scoring:
    """The features of one date scored by the resolved `model` (or models: the requested
    one first, then its shadows), in one pass.

    Ships each model, checks it on the driver (`_check_model`) and applies the model UDF;
    lazy apart from those checks. A shadow that fails its checks is left out, with a
    warning line in `skipped`; the requested model failing them raises. The score step and
    `scoring replay` both score through here, so a replay runs the same scoring code as the
    run it reproduces. `error_limit`: the bad rows past which a batch is no longer bisected
    (`score_frame`).
    """
    models = [model] if isinstance(model, ResolvedModel) else list(model)
    kept: list[ResolvedModel] = []
    shipped: list[ShippedModel] = []
    skipped: list[str] = []
    plans: list[ReasonsPlan | None] = []
    choices: list[gate.Choice] = []

    def leave_out(candidate: ResolvedModel, exc: ModelError) -> None:
        if candidate is models[0]:  # the requested model: the step fails
            raise exc
        skipped.append(f"shadow {candidate.requested_uri} was not scored: {exc}")
        log.warning("%s", skipped[-1])

    ships: list[tuple[ResolvedModel, ShippedModel]] = []
    for candidate in models:
        try:
            ships.append((candidate, _shipped(spark, target, candidate, request.spec)))
        except ModelError as exc:
            leave_out(candidate, exc)
    sample = _driver_sample(features, [ship for _, ship in ships], request.compiled)
    for candidate, ship in ships:
        try:
            _check_model(features, sample, ship, request, str(table), candidate)
            plan = _reasons_plan(target, candidate, ship, request.reasons_top_k)
        except ModelError as exc:
            leave_out(candidate, exc)
            continue
        ship, choice = gate.choose(spark, target, candidate, ship, sample, request.compiled)
        kept.append(candidate)
        shipped.append(ship)
        plans.append(plan)
        choices.append(choice)
    entity = tuple(features.schema[k] for k in request.entity)
    layout = ScoresLayout(entity, request.spec.task, reasons=request.reasons_top_k > 0)
    keyed = features.withColumnRenamed(request.as_of_column, AS_OF_DATE)
    keys = (*request.entity, AS_OF_DATE)
    scored = score_frame(keyed, shipped, keys, error_limit=error_limit, reasons=plans)
    return Scoring(
        scored, layout, tuple(shipped), keyed, keys, tuple(kept), tuple(skipped), tuple(choices)
    )


def write_scores(
    spark: SparkSession,
    scored: DataFrame,
    tables: Tables,
    layout: ScoresLayout,
    models: Sequence[ResolvedModel],
    lineages: Sequence[Lineage],
    run_date: date,
    batch_size: int,
    update_current: bool = True,
    after_scores: Callable[[dict[str, Any], int | None], None] | None = None,
    current_write: str = MERGE,
) -> dict[str, Any]:
    """Stamp `scored` with each row's lineage, replace every model's slice of `scores` in
    one commit, feed the first model's slice into scores_current (MERGE, or with
    `current_write` overwrite, an overwrite when the slice covers it: `scoring.score.current`).

    `scored` holds the keys and the task's outputs (and, for several models, `MODEL`); it is
    computed once, by the overwrite of the (run_date, model version) slices (a replaceWhere
    OR-ing them), in Arrow batches of exactly `batch_size` rows (no byte cap).
    `scores_current` (when `update_current`) is fed from the first model's committed slice
    read back at its version, not from `scored` again. Both writes leave out Parquet's
    statistics of the string columns, and the slice is written unsorted (an open file per
    task and date: `WRITERS_CONF`); the session's settings are restored afterwards. Every
    commit carries `commit_metadata`. `after_scores(commit, version before)` runs between
    the `scores` commit and the MERGE (the error budget: it may undo the commit and raise).
    Returns the `scores` commit (`io.own_commit`).
    """
    metadata = commit_metadata(models, lineages[0], tables["features"], run_date, tables.usecase)
    predicate = slices_predicate(run_date, [(m.name, m.version) for m in models])
    scores, current = tables["scores"], tables["scores_current"]
    io.ensure_table(spark, scores, layout.table_spec(current=False))
    before = io.current_version(spark, scores)
    stamped = with_lineage(scored, lineages, layout)
    batches = {BATCH_SIZE_CONF: str(batch_size), MAX_BYTES_CONF: NO_BYTE_LIMIT}
    unsorted = {WRITERS_CONF: ONE_DATE_UNSORTED}
    with temporary_conf(spark, {**batches, **unsorted, **layout.parquet_string_stats_off}):
        io.write_delta(stamped, scores, "overwrite", metadata, replace_where=predicate)
    commit = io.require_own_commit(spark, scores, lineages[0].run_id, after=before)
    if after_scores is not None:
        after_scores(commit, before)
    fault_point("score.written")
    if not update_current:
        return commit
    serving = slice_predicate(run_date, models[0].name, models[0].version)
    written = io.read_table(spark, scores, commit["version"]).where(serving)
    io.ensure_table(spark, current, layout.table_spec(current=True))
    with temporary_conf(spark, layout.parquet_string_stats_off):
        feed_current(spark, written, current, layout.keys, metadata, current_write)
    return commit


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


def _driver_sample(
    features: DataFrame, shipped: Sequence[ShippedModel], compiled_mode: str
) -> pd.DataFrame:
    """The run's one bounded driver sample, of the columns the models read: every model's
    checks take `CHECK_ROWS` of it and, with the compiled path on, its parity gate all
    `GOLDEN_ROWS`. One Spark action per run, not one per model and check, and no column
    no model reads (a features table may be wide, or hold types no model takes)."""
    present = set(features.columns)
    names = list(dict.fromkeys(i.name for s in shipped for i in s.inputs if i.name in present))
    if not names:  # nothing to check on: check_inputs names what is missing
        return pd.DataFrame()
    rows = gate.GOLDEN_ROWS if compiled_mode == gate.AUTO else CHECK_ROWS
    return features.select(*[F.col(n) for n in names]).limit(rows).toPandas()


def _check_model(
    features: DataFrame,
    sample: pd.DataFrame,
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
        names = [i.name for i in shipped.inputs]
        frame = bind_inputs(sample[names].head(CHECK_ROWS), shipped.inputs)
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
