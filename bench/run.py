"""One benchmark run: tables, models, then every variant timed, alternating the order.

Variant (s) is (a) with a shadow: the tree model and the linear model scored in one pass
(champion and challenger), to set against (a) of each model (two separate runs).

The use case is the churn demo (`bench.usecase.churn_usecase`): its features schema, entity
key and model spec. For each size: a features table per shape (few large files, many small
files) is written fresh; the two models are registered once for the whole run (trained on a
sample of the first table). For each (size, shape, model) and repetition, the variants run
in order a, b, c, d, r on even repetitions and r, d, c, b, a on odd ones, each on fresh
output tables.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from pyspark.sql import SparkSession

from bench import data, models, variants
from bench.memory import WorkerMemory
from bench.usecase import churn_usecase, features_table_schema
from scoring.core import io
from scoring.core.config import Config, load_config
from scoring.core.session import build_session
from scoring.core.tables import TableRef, Tables
from scoring.model.registry import MlflowTarget, download_model, mlflow_target, resolve_model
from scoring.model.signature import ModelInput, model_inputs
from scoring.usecase import AS_OF_DATE, ModelSpec, UseCase

SHAPES = {"few-large": 4, "many-small": 400}
VARIANTS = ("a", "b", "c", "d", "r", "s")
SparkVariant = Callable[[SparkSession, variants.Job, str], None]
SPARK_VARIANTS: dict[str, SparkVariant] = {
    "a": variants.ours,
    "b": variants.spark_udf,
    "d": variants.floor,
    "r": variants.ours_with_reasons,
    "s": variants.ours,  # with the linear model as the tree's shadow: two models, one pass
}
#: Variant (s) runs for the tree model only: the tree serves, the linear model is its shadow,
#: so (s) compares with (a) of the tree plus (a) of the linear model (two separate runs).
SHADOWED, SHADOW = "tree", "linear"


@dataclass(frozen=True)
class Settings:
    """What one `python -m bench` run measures."""

    sizes: tuple[int, ...]
    shapes: tuple[str, ...]
    models: tuple[str, ...]
    reps: int
    work: Path
    batch_size: int
    variants: tuple[str, ...] = VARIANTS
    train_rows: int = 20_000
    seed: int = 7


@dataclass(frozen=True)
class Measurement:
    """One timed run of one variant."""

    rows: int
    shape: str
    model: str
    variant: str
    rep: int
    seconds: float
    predict_seconds: float | None
    worker_peak_mib: float
    workers_sum_mib: float
    load1: float


@dataclass(frozen=True)
class BenchModel:
    """A registered bench model as the variants use it: URI, local copy, inputs, positive class."""

    uri: str
    folder: Path
    inputs: tuple[ModelInput, ...]
    positive: int


def download_bench_model(target: MlflowTarget, uri: str, spec: ModelSpec) -> BenchModel:
    """Download `uri` once, untimed: (c) reads this copy, (b) the positive class's position."""
    folder = download_model(target, resolve_model(target, uri))
    return BenchModel(
        uri, Path(folder), model_inputs(folder), variants.positive_index(folder, spec)
    )


def bench_config(work: Path, batch_size: int | None = None) -> Config:
    """The local configuration with every table and the registry under `work`.

    `batch_size` overrides `scoring.batch_size` (validated like any `--set`); None keeps it.
    """
    overrides = [f"storage.root={work}", "logging.level=WARNING"]
    if batch_size is not None:
        overrides.append(f"scoring.batch_size={batch_size}")
    return load_config("local", overrides)


def bench_session(config: Config) -> SparkSession:
    """The project's local session, with a driver heap big enough for millions of rows."""
    conf = {**config.spark.conf, "spark.driver.memory": "4g"}
    return build_session(replace(config.spark, conf=conf), str(config.storage.root) + "/_wh")


def run_bench(settings: Settings, progress: Callable[[str], None]) -> list[Measurement]:
    """Run every measurement of `settings`; return them in the order they ran."""
    if settings.work.exists():
        shutil.rmtree(settings.work)
    settings.work.mkdir(parents=True)
    config = bench_config(settings.work)
    spark = bench_session(config)
    usecase = churn_usecase()
    target = mlflow_target(config, usecase.name)
    results: list[Measurement] = []
    uris: dict[str, str] = {}
    shadow = ""
    for rows in settings.sizes:
        for shape in settings.shapes:
            ref = write_bench_features(spark, config, usecase, rows, shape, settings.seed)
            progress(f"wrote {rows} rows, {shape} -> {ref}")
            if not uris:
                trained = models.register_models(
                    spark.read.format("delta").load(str(ref.path)),
                    usecase,
                    target,
                    settings.train_rows,
                    settings.seed,
                )
                uris = {k: v for k, v in trained.items() if k in settings.models}
                shadow = trained[SHADOW]
                tree = download_bench_model(target, trained["tree"], usecase.model)
                _warm_up(spark, usecase, target, settings, ref, tree)
                progress("warmed up the JVM with one untimed run of (d)")
            for kind, uri in uris.items():
                pair = (uri, shadow) if kind == SHADOWED else (uri,)
                results += _measure(
                    spark, usecase, target, settings, ref, rows, shape, kind, pair, progress
                )
    return results


def _measure(
    spark: SparkSession,
    usecase: UseCase,
    target: MlflowTarget,
    settings: Settings,
    features: TableRef,
    rows: int,
    shape: str,
    kind: str,
    uris: tuple[str, ...],
    progress: Callable[[str], None],
) -> list[Measurement]:
    """Every repetition of the variants on one table and model (`uris`: the model, then the
    shadow variant (s) scores with it, when it runs for this model)."""
    model = download_bench_model(target, uris[0], usecase.model)
    out: list[Measurement] = []
    for rep in range(settings.reps):
        chosen = tuple(
            v for v in VARIANTS if v in settings.variants and (v != "s" or len(uris) > 1)
        )
        order = chosen if rep % 2 == 0 else tuple(reversed(chosen))
        for variant in order:
            job = fresh_job(settings, usecase, variant, features, target, model)
            if variant == "s":
                job = replace(job, request=replace(job.request, shadow=uris[1:]))
            measured = _timed(spark, job, variant, model.folder, usecase.folder, settings.work)
            out.append(Measurement(rows, shape, kind, variant, rep, *measured, os.getloadavg()[0]))
            progress(json.dumps(asdict(out[-1])))
    return out


def fresh_job(
    settings: Settings,
    usecase: UseCase,
    name: str,
    features: TableRef,
    target: MlflowTarget,
    model: BenchModel,
) -> variants.Job:
    """A scoring of `features` by `model` into `scores_<name>` / `current_<name>` (and, for a
    row the model cannot score, `errors_<name>`) of the work folder.

    Keys, outputs and the MERGE are the use case's (`variants.score_request`). The output
    tables are removed first, so every timed run writes fresh tables.
    """
    scores = TableRef("scores", path=str(settings.work / f"scores_{name}"))
    current = TableRef("scores_current", path=str(settings.work / f"current_{name}"))
    errors = TableRef("score_errors", path=str(settings.work / f"errors_{name}"))
    for ref in (scores, current, errors):
        _remove(ref)
    tables = Tables(
        usecase.name,
        {"features": features, "scores": scores, "scores_current": current, "score_errors": errors},
    )
    request = variants.score_request(usecase, model.uri)
    return variants.Job(
        tables, target, request, model.inputs, model.positive, data.AS_OF, settings.batch_size
    )


def write_bench_features(
    spark: SparkSession, config: Config, usecase: UseCase, rows: int, shape: str, seed: int
) -> TableRef:
    """A fresh synthetic features table of `rows` rows in `shape`, its snapshot loaded."""
    ref = _features_ref(config, shape)
    _remove(ref)
    schema = features_table_schema(usecase)
    frame = data.synthetic_features(spark, schema, rows, SHAPES[shape], seed)
    data.write_features(spark, frame, schema, ref)
    _touch(spark, ref)
    return ref


def _touch(spark: SparkSession, features: TableRef) -> None:
    """Load a new features table's Delta snapshot once, untimed.

    Otherwise the first variant to read it pays the log replay and file listing that later
    readers get from Delta's snapshot cache (seen: (a), first in the order, was the slowest
    at 100k rows in a run without this).
    """
    version = io.current_version(spark, features)
    io.read_partition(spark, features, AS_OF_DATE, data.AS_OF, version or 0)


def _warm_up(
    spark: SparkSession,
    usecase: UseCase,
    target: MlflowTarget,
    settings: Settings,
    features: TableRef,
    model: BenchModel,
) -> None:
    """One untimed run of the floor (d), so no variant pays the JVM's first-use costs.

    The first Delta write, MERGE and Arrow UDF of an application load classes and compile
    code for tens of seconds; without this, whichever variant runs first looks slow. (d)
    loads no model, so no variant's model cache is warmed by it.
    """
    keys_only = replace(model, inputs=())  # the keys alone warm up the UDF, writes and MERGE
    job = fresh_job(settings, usecase, "warmup", features, target, keys_only)
    variants.floor(spark, job, f"bench-warmup-{time.time_ns()}")


def _timed(
    spark: SparkSession,
    job: variants.Job,
    variant: str,
    model_dir: Path,
    usecase_dir: Path,
    work: Path,
) -> tuple[float, float | None, float, float]:
    """(seconds, predict seconds, worker peak MiB, workers' summed peak MiB) of one run."""
    if variant == "c":
        return _in_process(job, model_dir, usecase_dir, work)
    run_id = f"bench-{variant}-{time.time_ns()}"
    with WorkerMemory() as peak:
        started = time.perf_counter()
        SPARK_VARIANTS[variant](spark, job, run_id)
        seconds = time.perf_counter() - started
    return seconds, None, peak.max_worker_mib, peak.sum_workers_mib


def _in_process(
    job: variants.Job, model_dir: Path, usecase_dir: Path, work: Path
) -> tuple[float, float, float, float]:
    """Variant (c) in its own process; its own peak memory is its only worker's."""
    features = job.tables["features"]
    assert features.path is not None
    partition = Path(features.path) / f"{AS_OF_DATE}={job.run_date.isoformat()}"
    out = work / "scores_c.parquet"
    command = [
        sys.executable,
        "-m",
        "bench.inprocess",
        "--partition",
        str(partition),
        "--model-dir",
        str(model_dir),
        "--usecase",
        str(usecase_dir),
        "--out",
        str(out),
    ]
    started = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started  # including interpreter start and imports
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return seconds, float(result["predict_seconds"]), result["peak_mib"], result["peak_mib"]


def _features_ref(config: Config, shape: str) -> TableRef:
    """Where the features table of a shape lives."""
    return TableRef("features", path=f"{config.storage.root}/features_{shape}")


def _remove(ref: TableRef) -> None:
    """Delete a bench table's folder (bench tables are always local paths)."""
    if ref.path is not None and Path(ref.path).exists():
        shutil.rmtree(ref.path)


def parse_sizes(text: str) -> tuple[int, ...]:
    """`1000000,4000000` or `1M,4M,0.5M` -> row counts."""
    sizes = []
    for part in text.split(","):
        part = part.strip().upper()
        factor = 1_000_000 if part.endswith("M") else 1_000 if part.endswith("K") else 1
        sizes.append(int(float(part.rstrip("MK")) * factor))
    return tuple(sizes)


def as_rows(items: Sequence[Measurement]) -> list[dict[str, object]]:
    """Measurements as plain dicts (for the JSON dump)."""
    return [asdict(m) for m in items]
