"""The model on the executors: shipped once per run, loaded once per Python worker.

The driver downloads the pinned model version, zips the folder and hands the zip to Spark
with `SparkContext.addArchive`: each executor fetches and unpacks it once, on any master (a
folder given to `addFile` works with a local master only: UNSUPPORTED_ADD_FILE on a
cluster); a later run of the same registered version in the same application reuses it. In a worker, the first batch loads it into the
module-level `_LOADED` cache, keyed by the shipped folder's unique name; later batches and
tasks in the same reused Python worker find it there. The scoring function is an iterator
Arrow UDF (`mapInArrow`): only the signature's inputs are converted (Arrow -> pandas, each
column once, straight to its final dtype); the key columns pass through as Arrow arrays and
the outputs are built as Arrow arrays, so no pandas frame of the whole batch is ever made
(see bench/RESULTS.md for what that saves). With reason codes on, the same pass adds the
`reasons` column (`scoring.model.reasons.batch_reasons`: the worker's explainer, built on its
first batch, explains the rows scored without error). Each batch goes through `scoring.score.guard`:
rows the model raises on (found by bisecting the batch) or returns NaN / out-of-range
outputs for come out flagged in `ERROR`, with their inputs as JSON in `INPUT`, and the rest
of the batch is scored in the same pass.

Several models (the serving alias and its shadows) are scored in the same pass: each input
batch is read once and goes through every model (`score_batch`), one output batch per model.

Set `SCORING_MODEL_LOAD_LOG=<folder>` on the driver to make each worker append
`load <pid> <name>/<version> <how>` / `batch <pid> <rows> <name>/<version> <how>` lines (how:
`compiled` or `native`) to
`<folder>/model-loads.log` (used by the tests to prove that loads happen once per worker
and model, not per batch).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
from pyspark import SparkFiles
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from scoring.core.worker import lazy_zip_invalidation, zip_invalidation_is_lazy
from scoring.model.loading import load_predictor
from scoring.model.predictors import Predictor
from scoring.model.reasons import REASONS, ReasonsPlan, batch_reasons, reasons_field
from scoring.model.signature import ModelInput, bind_arrow
from scoring.model.tasks import output_fields, output_names, outputs_contract
from scoring.score.guard import guarded_predict, rows_json
from scoring.usecase.spec import ModelSpec

LOAD_LOG_ENV = "SCORING_MODEL_LOAD_LOG"
#: The columns `score_frame` adds: a bad row's error text, its model inputs as JSON, and
#: which of the models scored the row (its position in the models given).
ERROR, INPUT, MODEL = "_score_error", "_score_input", "_score_model"
# Loaded predictors of this Python worker process, by ShippedModel.key.
_LOADED: dict[str, Predictor] = {}
# Models shipped by this driver, by (application id, registry URI, name, version).
_SHIPPED: dict[tuple[str, str, str, str], ShippedModel] = {}


@dataclass(frozen=True)
class ShippedModel:
    """What the UDF closure carries: the shipped folder's name, never the model itself."""

    name: str
    version: str
    file_name: str  # the shipped zip's name: SparkFiles.get(file_name) is the unpacked folder
    inputs: tuple[ModelInput, ...]
    spec: ModelSpec
    load_log: str | None = None
    local_dir: str | None = None  # the driver's copy
    # The compiled artifact's shipped zip (`scoring.score.gate`): set, the workers score with
    # it; None, with the native model.
    compiled_file: str | None = None

    @property
    def key(self) -> str:
        """The worker cache key: the unique shipped folder name and how it is read."""
        return f"{self.file_name}|{self.compiled_file}|{self.spec!r}"


def already_shipped(
    spark: SparkSession, registry_uri: str, name: str, version: str, spec: ModelSpec
) -> ShippedModel | None:
    """The model version this application shipped before (a registered version is immutable);
    `spec` (task, threshold, trusted types) is the caller's, not the earlier run's."""
    shipped = _SHIPPED.get((spark.sparkContext.applicationId, registry_uri, name, version))
    if shipped is None:
        return None
    return replace(shipped, spec=spec, load_log=os.environ.get(LOAD_LOG_ENV))


def ship_model(
    spark: SparkSession,
    registry_uri: str,
    model_dir: str,
    name: str,
    version: str,
    inputs: tuple[ModelInput, ...],
    spec: ModelSpec,
) -> ShippedModel:
    """Add the downloaded model folder, zipped, to the application's archives under a unique
    name.

    Executors fetch and unpack it once; the unique name is the workers' cache key, so two
    registries with the same model name and version never share a cache entry. The driver
    keeps the folder (`local_dir`) for its own predictor.
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    base = f"scoring-model-{safe}-v{version}-{uuid.uuid4().hex[:8]}"
    staged = os.path.join(os.path.dirname(model_dir.rstrip("/")), base)
    os.rename(model_dir, staged)
    archive = shutil.make_archive(staged, "zip", root_dir=staged)  # <staged>.zip
    spark.sparkContext.addArchive(archive)  # unpacked as SparkFiles.get("<base>.zip")
    file_name = os.path.basename(archive)
    shipped = ShippedModel(name, version, file_name, inputs, spec, local_dir=staged)
    _SHIPPED[(spark.sparkContext.applicationId, registry_uri, name, version)] = shipped
    return replace(shipped, load_log=os.environ.get(LOAD_LOG_ENV))


def score_frame(
    df: DataFrame,
    shipped: ShippedModel | Sequence[ShippedModel],
    keys: tuple[str, ...],
    error_limit: int = 0,
    reasons: Sequence[ReasonsPlan | None] = (),
) -> DataFrame:
    """Score `df` with one shipped model or several in one pass: `keys` passed through, the
    task's outputs, with `reasons` (one plan per model; reason codes on when any is set) the
    `REASONS` column (`scoring.model.reasons`, null for a bad row), then `ERROR`, `INPUT`,
    then `MODEL` (the row's model: its position in `shipped`).

    Several models (champion and shadows, one task) read each input batch once and emit one
    output batch per model: a long frame, one row per input row and model. A row the model
    raises on or returns NaN / out-of-range outputs for (`scoring.score.guard`) has null
    outputs, its error text in `ERROR` and its model inputs as JSON in `INPUT`; both are null
    for a good row. `error_limit`: the bad rows past which a batch is no longer bisected (the
    step fails past them anyway). Batches are Arrow record batches of
    `spark.sql.execution.arrow.maxRecordsPerBatch` rows.
    """
    models = (shipped,) if isinstance(shipped, ShippedModel) else tuple(shipped)
    task = models[0].spec.task
    fields = [T.StructField(f.name, f.dataType, True) for f in output_fields(task)]
    plans = list(reasons) or [None] * len(models)
    explained = any(plan is not None for plan in plans)
    fields += [reasons_field()] if explained else []
    extra = [
        T.StructField(ERROR, T.StringType(), True),
        T.StructField(INPUT, T.StringType(), True),
        T.StructField(MODEL, T.IntegerType(), False),
    ]
    schema = T.StructType([*(df.schema[k] for k in keys), *fields, *extra])
    names = [*keys, *output_names(task), *([REASONS] if explained else []), ERROR, INPUT, MODEL]
    types = [c.type for c in outputs_contract(task).columns]  # the outputs' types, once
    inputs = list(dict.fromkeys(i.name for m in models for i in m.inputs))
    columns = [*keys, *(name for name in inputs if name not in keys)]

    def apply(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        lazy_zip_invalidation()  # the worker's next tasks start without re-reading zips
        zips = "lazy-zips" if zip_invalidation_is_lazy() else "eager-zips"  # for the load log
        predictors = [_cached_predictor(model) for model in models]
        # With reasons on, a compiled model is explained by its native predictor (TreeSHAP
        # needs the trees' own structure), loaded once next to it.
        explainers = [
            _cached_predictor(replace(m, compiled_file=None))
            if plan is not None and m.compiled_file is not None
            else predictor
            for m, predictor, plan in zip(models, predictors, plans, strict=True)
        ]
        for batch in batches:
            scorers = zip(models, predictors, explainers, plans, strict=True)
            for index, (model, predictor, explainer, plan) in enumerate(scorers):
                how = "compiled" if model.compiled_file is not None else "native"
                _log(
                    model,
                    f"batch {os.getpid()} {batch.num_rows} {model.name}/{model.version} {how} {zips}",
                )
                position = pa.array(np.full(batch.num_rows, index, dtype="int32"))
                yield pa.RecordBatch.from_arrays(
                    [
                        *(batch.column(k) for k in keys),
                        *score_batch(predictor, model, batch, types, error_limit, plan, explainer),
                        position,
                    ],
                    names=names,
                )

    return df.select(*columns).mapInArrow(apply, schema)  # type: ignore[arg-type]


def score_batch(
    predictor: Predictor,
    shipped: ShippedModel,
    batch: pa.RecordBatch,
    types: list[str],
    error_limit: int,
    reasons: ReasonsPlan | None = None,
    explainer: Predictor | None = None,
) -> list[pa.Array]:
    """One Arrow batch through one model: the task's output arrays (of `types`, the task's
    output contract types), with `reasons` the `REASONS` array (explained by `explainer`,
    default `predictor`), then `ERROR` and `INPUT`.

    The whole of per-model scoring: the UDF calls it once per model and batch.
    """
    frame = bind_arrow(batch, shipped.inputs)
    guarded = guarded_predict(predictor, frame, shipped.spec.task, types, error_limit)
    bad = guarded.bad_rows
    if bad:
        inputs = [i.name for i in shipped.inputs]
        values = dict(zip(bad, rows_json(batch, inputs, bad), strict=True))
        input_json = pa.array([values.get(i) for i in range(batch.num_rows)], pa.string())
        errors = pa.array(guarded.errors, pa.string())
    else:  # the happy path: two null columns, nothing looked at row by row
        input_json = errors = pa.nulls(batch.num_rows, pa.string())
    explained = batch_reasons(
        reasons, shipped.key, explainer or predictor, frame, batch, guarded.errors
    )
    return [*guarded.arrays, *explained, errors, input_json]


def driver_predictor(shipped: ShippedModel) -> Predictor:
    """The shipped model loaded on the driver (from its local copy), once per application."""
    key = f"driver|{shipped.key}"
    predictor = _LOADED.get(key)
    if predictor is None:
        predictor = load_predictor(
            shipped.local_dir or SparkFiles.get(shipped.file_name), shipped.spec
        )
        _LOADED[key] = predictor
    return predictor


def _cached_predictor(shipped: ShippedModel) -> Predictor:
    """This worker's predictor for `shipped`, loaded on first use only."""
    predictor = _LOADED.get(shipped.key)
    if predictor is None:
        if shipped.compiled_file is not None:
            from scoring.model.compiled import load_compiled

            folder = Path(SparkFiles.get(shipped.compiled_file))
            predictor = load_compiled(folder, shipped.spec)
        else:
            predictor = load_predictor(SparkFiles.get(shipped.file_name), shipped.spec)
        _LOADED[shipped.key] = predictor
        how = "compiled" if shipped.compiled_file is not None else "native"
        _log(shipped, f"load {os.getpid()} {shipped.name}/{shipped.version} {how}")
    return predictor


def _log(shipped: ShippedModel, line: str) -> None:
    """Append a line to the load log when the driver asked for one (tests only)."""
    if shipped.load_log:
        with open(os.path.join(shipped.load_log, "model-loads.log"), "a", encoding="utf-8") as f:
            f.write(line + "\n")
