"""One benchmark run: tables, models, then every variant timed, alternating the order.

For each size: a features table per shape (few large files, many small files) is written
fresh; the two models are registered once for the whole run (trained on a sample of the first
table). For each (size, shape, model) and repetition, the four variants run in order a, b, c,
d on even repetitions and d, c, b, a on odd ones, each on fresh output tables.
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
from scoring.core import io
from scoring.core.config import Config, load_config
from scoring.core.tables import TableRef
from scoring.model.adapter import ModelInput, model_inputs
from scoring.model.registry import MlflowTarget, download_model, mlflow_target, resolve_model
from scoring.score.step import ScoreTables
from scoring.core.session import build_session

SHAPES = {"few-large": 4, "many-small": 400}
VARIANTS = ("a", "b", "c", "d")
SparkVariant = Callable[[SparkSession, variants.Job, str], None]
SPARK_VARIANTS: dict[str, SparkVariant] = {
    "a": variants.ours,
    "b": variants.spark_udf,
    "d": variants.floor,
}


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
    target = mlflow_target(config)
    results: list[Measurement] = []
    uris: dict[str, str] = {}
    for rows in settings.sizes:
        for shape in settings.shapes:
            ref = write_bench_features(spark, config, rows, shape, settings.seed)
            progress(f"wrote {rows} rows, {shape} -> {ref}")
            if not uris:
                trained = models.register_models(
                    spark.read.format("delta").load(str(ref.path)),
                    target,
                    settings.train_rows,
                    settings.seed,
                )
                uris = {k: v for k, v in trained.items() if k in settings.models}
                _warm_up(spark, target, settings, ref, trained["tree"])
                progress("warmed up the JVM with one untimed run of (d)")
            for kind, uri in uris.items():
                results += _measure(
                    spark, config, target, settings, ref, rows, shape, kind, uri, progress
                )
    return results


def _measure(
    spark: SparkSession,
    config: Config,
    target: MlflowTarget,
    settings: Settings,
    features: TableRef,
    rows: int,
    shape: str,
    kind: str,
    uri: str,
    progress: Callable[[str], None],
) -> list[Measurement]:
    """Every repetition of the four variants on one table and model."""
    model_dir = download_model(target, resolve_model(target, uri))
    inputs = model_inputs(model_dir)
    out: list[Measurement] = []
    for rep in range(settings.reps):
        chosen = tuple(v for v in VARIANTS if v in settings.variants)
        order = chosen if rep % 2 == 0 else tuple(reversed(chosen))
        for variant in order:
            job = fresh_job(settings, variant, features, target, uri, inputs)
            measured = _timed(spark, job, variant, Path(model_dir), settings.work)
            out.append(Measurement(rows, shape, kind, variant, rep, *measured, os.getloadavg()[0]))
            progress(json.dumps(asdict(out[-1])))
    return out


def fresh_job(
    settings: Settings,
    name: str,
    features: TableRef,
    target: MlflowTarget,
    uri: str,
    inputs: tuple[ModelInput, ...],
) -> variants.Job:
    """A scoring of `features` by `uri` into `scores_<name>` / `current_<name>` of the work folder.

    Both output tables are removed first, so every timed run writes fresh tables.
    """
    scores = TableRef("scores", path=str(settings.work / f"scores_{name}"))
    current = TableRef("scores_current", path=str(settings.work / f"current_{name}"))
    for ref in (scores, current):
        _remove(ref)
    tables = ScoreTables(features, scores, current)
    return variants.Job(tables, target, uri, inputs, data.AS_OF, settings.batch_size)


def write_bench_features(
    spark: SparkSession, config: Config, rows: int, shape: str, seed: int
) -> TableRef:
    """A fresh synthetic features table of `rows` rows in `shape`, its snapshot loaded."""
    ref = _features_ref(config, shape)
    _remove(ref)
    data.write_features(spark, data.synthetic_features(spark, rows, SHAPES[shape], seed), ref)
    _touch(spark, ref)
    return ref


def _touch(spark: SparkSession, features: TableRef) -> None:
    """Load a new features table's Delta snapshot once, untimed.

    Otherwise the first variant to read it pays the log replay and file listing that later
    readers get from Delta's snapshot cache (seen: (a), first in the order, was the slowest
    at 100k rows in a run without this).
    """
    version = io.current_version(spark, features)
    io.read_partition(spark, features, "as_of_date", data.AS_OF, version or 0)


def _warm_up(
    spark: SparkSession, target: MlflowTarget, settings: Settings, features: TableRef, uri: str
) -> None:
    """One untimed run of the floor (d), so no variant pays the JVM's first-use costs.

    The first Delta write, MERGE and Arrow UDF of an application load classes and compile
    code for tens of seconds; without this, whichever variant runs first looks slow. (d)
    loads no model, so no variant's model cache is warmed by it.
    """
    job = fresh_job(settings, "warmup", features, target, uri, ())
    variants.floor(spark, job, f"bench-warmup-{time.time_ns()}")


def _timed(
    spark: SparkSession, job: variants.Job, variant: str, model_dir: Path, work: Path
) -> tuple[float, float | None, float, float]:
    """(seconds, predict seconds, worker peak MiB, workers' summed peak MiB) of one run."""
    if variant == "c":
        return _in_process(job, model_dir, work)
    run_id = f"bench-{variant}-{time.time_ns()}"
    with WorkerMemory() as peak:
        started = time.perf_counter()
        SPARK_VARIANTS[variant](spark, job, run_id)
        seconds = time.perf_counter() - started
    return seconds, None, peak.max_worker_mib, peak.sum_workers_mib


def _in_process(
    job: variants.Job, model_dir: Path, work: Path
) -> tuple[float, float, float, float]:
    """Variant (c) in its own process; its own peak memory is its only worker's."""
    assert job.tables.features.path is not None
    partition = Path(job.tables.features.path) / f"as_of_date={job.run_date.isoformat()}"
    out = work / "scores_c.parquet"
    command = [
        sys.executable,
        "-m",
        "bench.inprocess",
        "--partition",
        str(partition),
        "--model-dir",
        str(model_dir),
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
