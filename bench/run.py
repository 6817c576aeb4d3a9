"""One benchmark run: tables, models, prepared states, then every variant timed, alternating
the order.

Variant (n) is (a) with `scoring.compiled: off` (the native model); after (a) and (n) ran in
a repetition their `scores` slices are compared row by row (`bench.parity`). Variant (s) is
(a) with a shadow: the tree model and the linear model scored in one pass (champion and
challenger), to set against (a) of each model (two separate runs).

For each features table (`--tables`: the churn demo's mixed types, the all-float table; each
its own use case, `bench.tables`), size and shape (few large files, many small files) a
features table is written fresh; the table's two models are registered once for the whole
run (trained on a sample of its first features table). For each scenario (`--scenarios`):
"first" scores into empty tables, "steady" into a copy of a prepared state (`bench.steady`:
`scores` holding `history` earlier dates, `scores_current` full). For each (scenario, model)
and repetition, the variants run in order a, n, b, c, d, r, s on even repetitions and in the
reverse order on odd ones, each on fresh output tables. (c) writes no table, so it runs in
the first scenario listed only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from bench import data, models, variants
from bench.memory import WorkerMemory
from bench.parity import ScoreParity, compare_slices
from bench.results import SCENARIOS, BenchResults, Measurement, ParityCheck
from bench.steady import HISTORY_DAYS, State, clone_table, prepare_state
from bench.tables import TABLES, BenchTable, bench_table
from scoring.core import io
from scoring.core.config import Config, load_config
from scoring.core.session import build_session, job_group
from scoring.core.tables import TableRef, Tables
from scoring.model.registry import MlflowTarget, download_model, mlflow_target, resolve_model
from scoring.model.signature import ModelInput, model_inputs
from scoring.score.current import MERGE
from scoring.usecase import AS_OF_DATE, ModelSpec, UseCase

SHAPES = {"few-large": 4, "many-small": 400}
VARIANTS = ("a", "n", "b", "c", "d", "r", "s")
SparkVariant = Callable[[SparkSession, variants.Job, str], None]
SPARK_VARIANTS: dict[str, SparkVariant] = {
    "a": variants.ours,
    "n": variants.native,
    "b": variants.spark_udf,
    "d": variants.floor,
    "r": variants.ours_with_reasons,
    "s": variants.ours,  # with the linear model as the tree's shadow: two models, one pass
}
#: Variant (s) runs for the tree model only: the tree serves, the linear model is its shadow,
#: so (s) compares with (a) of the tree plus (a) of the linear model (two separate runs).
SHADOWED, SHADOW = "tree", "linear"
#: The pair whose scores must be equal on every row: compiled (a) and native (n).
COMPILED, NATIVE = "a", "n"


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
    tables: tuple[str, ...] = TABLES
    scenarios: tuple[str, ...] = SCENARIOS
    history: int = HISTORY_DAYS
    # scoring.current_write of every variant's writes (`scoring.score.current`)
    current_write: str = MERGE
    # Spark settings of the bench's session, set when it starts (`--conf`): JVM options too
    spark_conf: Mapping[str, str] = field(default_factory=dict)
    train_rows: int = 20_000
    seed: int = 7


@dataclass(frozen=True)
class BenchModel:
    """A registered bench model as the variants use it: URI, local copy, inputs, positive class."""

    uri: str
    folder: Path
    inputs: tuple[ModelInput, ...]
    positive: int


@dataclass(frozen=True)
class Cell:
    """What the variants of one (table, rows, shape, scenario, model) share.

    `uris`: the model, then the shadow variant (s) scores with it, when it runs for this
    model; `state`: the prepared tables a steady run starts from (None: a first run).
    """

    table: BenchTable
    features: TableRef
    rows: int
    shape: str
    scenario: str
    kind: str
    uris: tuple[str, ...]
    state: State | None


def download_bench_model(target: MlflowTarget, uri: str, spec: ModelSpec) -> BenchModel:
    """Download `uri` once, untimed: (c) reads this copy, (b) the positive class's position."""
    folder = download_model(target, resolve_model(target, uri))
    return BenchModel(
        uri, Path(folder), model_inputs(folder), variants.positive_index(folder, spec)
    )


def precompile(model: BenchModel, spec: ModelSpec) -> str:
    """Build the model's compiled artifact into the compiled cache, untimed, as a second run
    of a version finds it (`scoring.score.gate`): (a) times scoring, not gcc. Compiling is a
    once-per-version cost, printed here. Returns what happened, in words."""
    from scoring.core.errors import NotCompilable
    from scoring.model import compiled
    from scoring.model.loading import load_predictor
    from scoring.score.gate import cache_dir, into_cache

    key = compiled.artifact_key(model.folder)
    cached = cache_dir() / key
    if (cached / compiled.COMPILED_FILE).exists():
        return f"cached ({cached})"
    predictor = load_predictor(model.folder, spec)
    started = time.perf_counter()
    try:
        compiled.worth_compiling(predictor)
        names = [i.name for i in model.inputs]
        built = compiled.compile_model(predictor, names, model.folder.parent / key, key=key)
    except NotCompilable as exc:
        return f"not compiled ({exc})"
    into_cache(built, cached)
    return f"compiled in {time.perf_counter() - started:.1f} s ({cached})"


def bench_config(work: Path, batch_size: int | None = None) -> Config:
    """The local configuration with every table and the registry under `work`.

    `batch_size` overrides `scoring.batch_size` (validated like any `--set`); None keeps it.
    """
    overrides = [f"storage.root={work}", "logging.level=WARNING"]
    if batch_size is not None:
        overrides.append(f"scoring.batch_size={batch_size}")
    return load_config("local", overrides)


def bench_session(config: Config, extra: Mapping[str, str] | None = None) -> SparkSession:
    """The project's local session, with a driver heap big enough for millions of rows, and
    the `extra` Spark settings (e.g. `spark.driver.extraJavaOptions`, which add to the
    project's JVM flags: `scoring.core.session.launch_conf`)."""
    conf = {**config.spark.conf, "spark.driver.memory": "4g", **(extra or {})}
    return build_session(replace(config.spark, conf=conf), str(config.storage.root) + "/_wh")


def parse_conf(pairs: Sequence[str]) -> dict[str, str]:
    """`--conf KEY=VALUE` arguments as a mapping; ValueError names the first malformed one."""
    conf = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if not key.strip() or not value:
            raise ValueError(f"--conf: expected KEY=VALUE, got {pair!r}")
        conf[key.strip()] = value
    return conf


def run_bench(settings: Settings, progress: Callable[[str], None]) -> BenchResults:
    """Run every measurement of `settings`; return them in the order they ran."""
    if settings.work.exists():
        shutil.rmtree(settings.work)
    settings.work.mkdir(parents=True)
    config = bench_config(settings.work)
    spark = bench_session(config, settings.spark_conf)
    results = BenchResults()
    warmed = False
    for name in settings.tables:
        table = bench_table(name)
        target = mlflow_target(config, table.usecase.name)
        uris: dict[str, str] = {}
        shadow = ""
        for rows in settings.sizes:
            for shape in settings.shapes:
                ref = write_bench_features(spark, config, table, rows, shape, settings.seed)
                progress(f"wrote {rows} rows of {name}, {shape} -> {ref}")
                if not uris:
                    trained = models.register_models(
                        spark.read.format("delta").load(str(ref.path)),
                        table.usecase,
                        target,
                        settings.train_rows,
                        settings.seed,
                        name,
                    )
                    uris = {k: v for k, v in trained.items() if k in settings.models}
                    shadow = trained[SHADOW]
                    if not warmed:
                        tree = download_bench_model(target, trained["tree"], table.usecase.model)
                        _warm_up(spark, table.usecase, target, settings, ref, tree)
                        progress("warmed up the JVM with one untimed run of (d)")
                        warmed = True
                state = None
                if "steady" in settings.scenarios:
                    folder = settings.work / f"state_{name}_{shape}"
                    started = time.perf_counter()
                    state = prepare_state(
                        spark, ref, table.usecase, data.AS_OF, settings.history, folder
                    )
                    took = time.perf_counter() - started
                    progress(
                        f"prepared {settings.history} dates of scores in {took:.0f} s -> {folder}"
                    )
                for scenario in settings.scenarios:
                    for kind, uri in uris.items():
                        pair = (uri, shadow) if kind == SHADOWED else (uri,)
                        prepared = state if scenario == "steady" else None
                        cell = Cell(table, ref, rows, shape, scenario, kind, pair, prepared)
                        _measure(spark, target, settings, cell, results, progress)
    return results


def cell_variants(settings: Settings, cell: Cell) -> tuple[str, ...]:
    """The variants that run in `cell`, in order: those asked for; (s) only with a shadow;
    (c), which writes no table, only in the first scenario asked for."""
    return tuple(
        v
        for v in VARIANTS
        if v in settings.variants
        and (v != "s" or len(cell.uris) > 1)
        and (v != "c" or cell.scenario == settings.scenarios[0])
    )


def _measure(
    spark: SparkSession,
    target: MlflowTarget,
    settings: Settings,
    cell: Cell,
    results: BenchResults,
    progress: Callable[[str], None],
) -> None:
    """Every repetition of the variants of one cell; then, per repetition, (a) against (n)."""
    usecase = cell.table.usecase
    model = download_bench_model(target, cell.uris[0], usecase.model)
    progress(f"compiled artifact of {cell.uris[0]}: {precompile(model, usecase.model)}")
    chosen = cell_variants(settings, cell)
    for rep in range(settings.reps):
        order = chosen if rep % 2 == 0 else tuple(reversed(chosen))
        jobs = {}
        for variant in order:
            job = fresh_job(settings, usecase, variant, cell.features, target, model, cell.state)
            if variant == "s":
                job = replace(job, request=replace(job.request, shadow=cell.uris[1:]))
            jobs[variant] = job
            label = (
                f"{variant} rep {rep} | {cell.table.name} {cell.scenario} {cell.rows} rows "
                f"{cell.shape} {cell.kind}"
            )
            measured = _timed(
                spark, job, variant, model.folder, usecase.folder, settings.work, label
            )
            found = Measurement(
                cell.rows,
                cell.shape,
                cell.kind,
                variant,
                rep,
                *measured,
                os.getloadavg()[0],
                cell.table.name,
                cell.scenario,
            )
            results.measurements.append(found)
            progress(json.dumps(asdict(found)))
        if COMPILED in jobs and NATIVE in jobs:
            parity = compare_jobs(spark, jobs[COMPILED], jobs[NATIVE])
            check = ParityCheck(
                cell.rows, cell.table.name, cell.scenario, cell.shape, cell.kind, rep, parity
            )
            results.parity.append(check)
            progress(f"compiled parity {cell.table.name} {cell.scenario}: {parity.describe()}")


def compare_jobs(spark: SparkSession, left: variants.Job, right: variants.Job) -> ScoreParity:
    """The run date's `scores` slices of two finished jobs, compared row by row (untimed)."""
    slices = [
        io.read_table(spark, job.tables["scores"]).where(F.col(AS_OF_DATE) == F.lit(job.run_date))
        for job in (left, right)
    ]
    return compare_slices(slices[0], slices[1], left.keys)


def fresh_job(
    settings: Settings,
    usecase: UseCase,
    name: str,
    features: TableRef,
    target: MlflowTarget,
    model: BenchModel,
    state: State | None = None,
) -> variants.Job:
    """A scoring of `features` by `model` into `scores` / `scores_current` (and, for a row
    the model cannot score, `score_errors`) of the work folder, named after `name`.

    Keys, outputs and the MERGE are the use case's (`variants.score_request`). Without a
    `state`, the output tables (`scores_<name>`, ...) are removed first, so every timed run
    writes fresh tables. With one, the run gets its own copy of the prepared `scores` and
    `scores_current` under `steady/<name>/<n>/` (a new folder each time, so no Delta log
    cached for an earlier table at that path is read); the previous copy is removed.
    """
    folder = settings.work
    if state is not None:
        shutil.rmtree(settings.work / "steady" / name, ignore_errors=True)
        folder = settings.work / "steady" / name / str(time.time_ns())
        folder.mkdir(parents=True)
    scores = TableRef("scores", path=str(folder / f"scores_{name}"))
    current = TableRef("scores_current", path=str(folder / f"current_{name}"))
    errors = TableRef("score_errors", path=str(folder / f"errors_{name}"))
    for ref in (scores, current, errors):
        _remove(ref)
    if state is not None:
        clone_table(state.scores, Path(str(scores.path)))
        clone_table(state.current, Path(str(current.path)))
    tables = Tables(
        usecase.name,
        {"features": features, "scores": scores, "scores_current": current, "score_errors": errors},
    )
    request = replace(
        variants.score_request(usecase, model.uri), current_write=settings.current_write
    )
    return variants.Job(
        tables, target, request, model.inputs, model.positive, data.AS_OF, settings.batch_size
    )


def write_bench_features(
    spark: SparkSession, config: Config, table: BenchTable, rows: int, shape: str, seed: int
) -> TableRef:
    """A fresh synthetic features table of `rows` rows in `shape`, its snapshot loaded."""
    ref = _features_ref(config, table.name, shape)
    _remove(ref)
    frame = table.generate(spark, table.schema, rows, SHAPES[shape], seed)
    data.write_features(spark, frame, table.schema, ref)
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
    label: str,
) -> tuple[float, float | None, float, float]:
    """(seconds, predict seconds, worker peak MiB, workers' summed peak MiB) of one run.

    The run's Spark jobs carry `label` as their job group (`bench.stages` reads it from the
    event log); the group is cleared afterwards.
    """
    if variant == "c":
        return _in_process(job, model_dir, usecase_dir, work)
    run_id = f"bench-{variant}-{time.time_ns()}"
    with job_group(spark, label, f"bench {label}"), WorkerMemory() as peak:
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


def _features_ref(config: Config, table: str, shape: str) -> TableRef:
    """Where the features table of a bench table and shape lives."""
    return TableRef("features", path=f"{config.storage.root}/features_{table}_{shape}")


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
