"""The compiled path of one model version in a run: find or build its artifact, pass the
parity gate, ship it; else the native model scores, and the run says why.

`scoring.compiled: auto` (the default): for a tree ensemble (`scoring.model.compiled`), the
driver

1. keys the model version's compiled artifact by the model folder's content hash and the
   platform (`artifact_key`), and looks for it in this machine's cache
   (`$SCORING_COMPILED_CACHE`, default `~/.cache/scoring/compiled/<key>/`), then, when the
   use case trusts its registry to run code (`model.allow_pickled_code`), next to the model
   version (the artifacts of its MLflow run, under `scoring-compiled/<key>/`); only when
   neither has it, compiles it and stores it in both (a registry that refuses the upload is
   logged and the run goes on with the local copy);
2. runs the parity gate: a golden sample, the first `GOLDEN_ROWS` rows of the features being
   scored and up to `GOLDEN_ROWS` rows of the version's monitoring baseline, is scored by the
   native model and by the compiled one; any output differing by more than 1e-12 (or any
   label) and the native model scores, with a warning in `runs`;
3. ships the artifact folder once per application (`addArchive`), next to the model.

A model the compiled path does not handle (`NotCompilable`) is scored natively, with the
reason in `runs.details.compiled`. `off`: always native. The compiled library is native code
loaded into the driver and the workers: one stored in the registry is loaded only where the
use case already trusts the registry's writers to run code; otherwise the driver compiles its
own (docs/scoring.md, "Compiled tree inference").
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from pyspark.sql import SparkSession

from scoring.core.errors import ModelError, NotCompilable, ScoringError
from scoring.model import compiled
from scoring.model.predictors import Predictor
from scoring.model.registry import MlflowTarget, ResolvedModel, configure_mlflow
from scoring.model.signature import bind_inputs
from scoring.score.udf import ShippedModel, driver_predictor

log = logging.getLogger(__name__)
CACHE_ENV = "SCORING_COMPILED_CACHE"
#: Where, among the model version's run artifacts, its compiled artifacts are kept.
ARTIFACT_PATH = "scoring-compiled"
#: Rows of the golden sample taken from the features, and at most as many from the baseline.
GOLDEN_ROWS = 2000
AUTO, OFF = "auto", "off"
# Compiled artifacts this driver shipped, by (application id, artifact key): archive name.
_SHIPPED: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Choice:
    """How one model scores in a run: compiled or native, and the line that says why."""

    used: bool
    detail: str
    warning: bool = False  # the fallback is worth a warning in `runs` (gate refused, failure)


def choose(
    spark: SparkSession,
    target: MlflowTarget,
    model: ResolvedModel,
    shipped: ShippedModel,
    sample: pd.DataFrame,
    mode: str,
) -> tuple[ShippedModel, Choice]:
    """`shipped` with its compiled artifact when `mode` is auto and the gate passes, and the
    choice; unchanged, with the reason, otherwise. Runs on the driver before scoring;
    `sample`: the run's driver sample of the features (`GOLDEN_ROWS` rows)."""
    if mode == OFF:
        return shipped, Choice(False, "native: scoring.compiled is off")
    native = driver_predictor(shipped)
    names = [i.name for i in shipped.inputs]
    try:
        compiled.worth_compiling(native)
        key = compiled.artifact_key(Path(_local(shipped)))
        trusted = shipped.spec.allow_pickled_code
        folder, origin = artifact(target, model, native, names, key, trusted)
        candidate = compiled.load_compiled(folder, shipped.spec)
    except NotCompilable as exc:
        log.info("%s scores natively: %s", model.pinned_uri, exc)
        return shipped, Choice(False, f"native: not compilable: {exc}")
    except Exception as exc:  # a speed-up that fails never fails the run
        detail = f"native: compiling failed: {type(exc).__name__}: {exc}"
        log.warning("%s scores natively: %s", model.pinned_uri, detail, exc_info=True)
        return shipped, Choice(False, detail, warning=True)
    golden = golden_sample(target, model, shipped, sample)
    try:
        gate = compiled.parity(native, candidate, golden, shipped.spec.task)
    except Exception as exc:  # a golden row either model raises on: no evidence, native
        detail = f"native: the parity gate could not compare ({type(exc).__name__}: {exc})"
        log.warning("%s scores natively: %s", model.pinned_uri, detail)
        return shipped, Choice(False, detail, warning=True)
    if not gate.ok:
        detail = f"native: the parity gate refused the compiled model ({gate.describe()})"
        log.warning("%s scores natively: %s", model.pinned_uri, detail)
        return shipped, Choice(False, detail, warning=True)
    name = _ship(spark, folder, key)
    detail = f"compiled ({origin}; {gate.describe()})"
    log.info("%s scores compiled: %s", model.pinned_uri, detail)
    return replace(shipped, compiled_file=name), Choice(True, detail)


def artifact(
    target: MlflowTarget,
    model: ResolvedModel,
    native: Predictor,
    names: list[str],
    key: str,
    trust_registry: bool,
) -> tuple[Path, str]:
    """The model version's compiled artifact folder (`key`: `compiled.artifact_key`) and where
    it came from: this machine's cache, the version's run artifacts (only with
    `trust_registry`), or compiled from `native` now (then stored in both).

    Raises:
        NotCompilable: the model is not one the compiled path handles.
    """
    cached = cache_dir() / key
    if (cached / compiled.COMPILED_FILE).exists():
        return cached, f"cached artifact {key}"
    # A library from the registry is code its writers chose: loaded only from a registry
    # trusted to run code (model.allow_pickled_code), like a pickled model.
    stored = _download(target, model, key) if trust_registry else None
    if stored is not None:
        into_cache(stored, cached)
        return cached, f"artifact {key} of run {model.run_id}"
    built = Path(tempfile.mkdtemp(prefix="scoring-compiled-")) / key
    compiled.compile_model(native, names, built, key=key)
    _upload(target, model, key, built)
    into_cache(built, cached)
    return cached, f"compiled now as {key}"


def golden_sample(
    target: MlflowTarget, model: ResolvedModel, shipped: ShippedModel, sample: pd.DataFrame
) -> pd.DataFrame:
    """The gate's rows: the run's driver sample of the features being scored (the first
    `GOLDEN_ROWS`), then up to as many of the version's baseline (the training distribution;
    skipped when the version has none, with an INFO line), bound to the model's inputs."""
    from scoring.monitor.baseline import download_baseline

    names = [i.name for i in shipped.inputs]
    frames = [bind_inputs(sample[names], shipped.inputs)]
    try:
        path = download_baseline(
            target.tracking_uri, target.registry_uri, model.name, model.version
        )
        baseline = pd.read_parquet(path, columns=names).head(GOLDEN_ROWS)
        frames.append(bind_inputs(baseline, shipped.inputs))
    except (ModelError, OSError, KeyError, ValueError) as exc:
        log.info("parity gate of %s without baseline rows: %s", model.pinned_uri, exc)
    return pd.concat(frames, ignore_index=True)


def cache_dir() -> Path:
    """This machine's cache of compiled artifacts (`$SCORING_COMPILED_CACHE`)."""
    default = Path.home() / ".cache" / "scoring" / "compiled"
    return Path(os.environ.get(CACHE_ENV) or default)


def _local(shipped: ShippedModel) -> str:
    if shipped.local_dir is None:
        raise ModelError(f"{shipped.name}/{shipped.version}: the driver has no copy of the model")
    return shipped.local_dir


def _download(target: MlflowTarget, model: ResolvedModel, key: str) -> Path | None:
    """The artifact stored next to the model version, downloaded; None when there is none
    (or the run cannot be read: then it is compiled here)."""
    if model.run_id is None:
        return None
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    configure_mlflow(target)
    uri = f"runs:/{model.run_id}/{ARTIFACT_PATH}/{key}"
    try:
        found = mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=tempfile.mkdtemp(prefix="scoring-compiled-")
        )
    except (MlflowException, OSError) as exc:
        log.debug("no compiled artifact at %s: %s", uri, exc)
        return None
    folder = Path(found)
    return folder if (folder / compiled.COMPILED_FILE).exists() else None


def _upload(target: MlflowTarget, model: ResolvedModel, key: str, folder: Path) -> None:
    """Store the artifact next to the model version; a refusal is logged, not fatal."""
    if model.run_id is None:
        return
    from mlflow.exceptions import MlflowException

    client = configure_mlflow(target)
    try:
        client.log_artifacts(model.run_id, str(folder), f"{ARTIFACT_PATH}/{key}")
    except (MlflowException, OSError) as exc:
        log.warning(
            "compiled artifact %s of %s not stored next to the model version (%s); kept in %s only",
            key,
            model.pinned_uri,
            exc,
            cache_dir(),
        )


def into_cache(source: Path, cached: Path) -> None:
    """Move an artifact folder into the cache, atomically (another run may race for it)."""
    cached.parent.mkdir(parents=True, exist_ok=True)
    staging = cached.parent / f".{cached.name}-{uuid.uuid4().hex[:8]}"
    shutil.copytree(source, staging)
    try:
        os.rename(staging, cached)
    except OSError:  # another run put it there first: theirs is the same artifact
        shutil.rmtree(staging, ignore_errors=True)
    if not (cached / compiled.COMPILED_FILE).exists():
        raise ScoringError(f"{cached}: the compiled artifact could not be cached")


def _ship(spark: SparkSession, folder: Path, key: str) -> str:
    """Add the artifact folder, zipped, to the application's archives once; its name."""
    app = spark.sparkContext.applicationId
    name = _SHIPPED.get((app, key))
    if name is None:
        base = os.path.join(tempfile.mkdtemp(prefix="scoring-ship-"), f"scoring-compiled-{key}")
        archive = shutil.make_archive(base, "zip", root_dir=folder)
        spark.sparkContext.addArchive(archive)
        name = os.path.basename(archive)
        _SHIPPED[(app, key)] = name
    return name
