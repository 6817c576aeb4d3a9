"""Tree ensembles compiled to native code (Treelite + TL2cgen + gcc), behind a parity gate.

A supported tree model (bare, or the last step of a scikit-learn Pipeline) is imported into
Treelite, turned into C by TL2cgen and compiled with gcc into a shared library, once per
model version. The artifact folder holds that library and `compiled.json`: the inputs, the
preprocessing plan in front of the trees (`scoring.model.vectorised`, JSON, applied on numpy),
the task's classes and the post-transform, the versions and the key. Nothing is pickled.

Why TL2cgen, measured single-threaded (the workers run one per core) on 1M rows of 20 float
features (5 % NaN) with `bench/compiled_predict.py` on a quiet 2-core machine: on a
100-iteration HistGradientBoosting classifier the compiled library runs at 1.26x
scikit-learn's own predict, Treelite's interpreter (GTIL) at 0.44x; on a 100-tree random
forest (depth 8) the library runs at 0.45x and GTIL at 0.27x, so a forest is better left
native. The demo-like Pipeline (impute + one-hot + HistGradientBoosting) runs at 1.61x native,
most of it from the vectorised preprocessing. gcc runs with -O1: as fast as -O3 here at about
half the compile time (the HistGradientBoosting: 1.4 s; the 41k-node forest: 13 s).

TL2cgen's C code is used, its runtime is not: the generated code reads a row as `union Entry
{int missing; double fvalue; ...}` and its runtime marks a missing value by setting that int
to -1, so a float64 whose low 32 bits are all ones reads as missing (`_MISSING_TEST`). The
missing tests are rewritten to `isnan`, thresholds are not quantized (quantizing goes through
the same int), and the library gets its own batch entry point (`_BATCH`) that reads the
float64 (or float32) matrix in place through ctypes.

The compiled model returns margins; the post-transform (sigmoid, softmax, exp) is applied
here in float64 with the functions scikit-learn uses (scipy's `expit`), so a HistGradient-
Boosting or random forest model matches its native outputs within 1e-12. Inputs go to the
trees in the type the native library compares in: float64 (HistGradientBoosting, LightGBM),
float32 (scikit-learn's other trees cast X to float32; XGBoost). XGBoost sums in float32 in
another order than Treelite: its outputs may differ by ~1e-7, which `parity` reports, and the
caller then scores with the native model.

Supported: scikit-learn HistGradientBoosting, RandomForest, ExtraTrees, GradientBoosting
(classifier and regressor), XGBoost Booster / XGBClassifier / XGBRegressor, LightGBM Booster /
LGBMClassifier / LGBMRegressor. Anything else, or a categorical split, raises NotCompilable.

Example:
    >>> folder = compile_model(predictor, names, cache / artifact_key(model_dir))  # doctest: +SKIP
    >>> compiled = load_compiled(folder, spec)  # doctest: +SKIP
    >>> parity(predictor, compiled, golden, spec.task).ok  # doctest: +SKIP
    True
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring.core.errors import ModelError, NotCompilable
from scoring.model.predictors import (
    BoosterPredictor,
    EstimatorPredictor,
    Predictor,
    class_index,
    from_probabilities,
    from_values,
)
from scoring.model.tasks import BINARY, MULTICLASS, REGRESSION, Outputs
from scoring.usecase.spec import ModelSpec

#: The artifact's description file and its compiled library, inside the artifact folder.
COMPILED_FILE = "compiled.json"
LIBRARY_FILE = "model.so"
#: Bumped when compiled.json or the library's calling convention changes (2: our own batch
#: entry point and NaN tests, `_build_library`).
FORMAT = 2
#: Post-transforms applied to the margins here (name -> what the native library does).
_POSTS = ("identity", "sigmoid", "softmax", "exp")
_SKLEARN_FLOAT32 = (
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
    "GradientBoostingClassifier",
    "GradientBoostingRegressor",
)
_SKLEARN_HGB = ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor")


def __getattr__(name: str) -> str:
    """`PLATFORM`, computed on first use (it runs gcc; workers that only load never ask)."""
    if name == "PLATFORM":
        return _platform()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _platform() -> str:
    """What a compiled library depends on: OS, CPU, Python, gcc, Treelite, TL2cgen."""
    import tl2cgen
    import treelite

    return (
        f"{_runtime()}-py{sys.version_info.major}.{sys.version_info.minor}"
        f"-gcc{_gcc_version()}-treelite{treelite.__version__}-tl2cgen{tl2cgen.__version__}"
    )


def _runtime() -> str:
    """The part of the platform a loaded library must share with its compiler's machine."""
    return f"{sys.platform}-{platform.machine()}"


def _gcc_version() -> str:
    try:
        done = subprocess.run(
            ["gcc", "-dumpfullversion"], capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return "none"
    return done.stdout.strip()


def artifact_key(model_dir: Path) -> str:
    """The key of a model folder's compiled artifact: sha256 of its files and the platform.

    Every file under `model_dir` counts (sorted relative paths, each with its bytes), so a
    changed model file, another compiler or another artifact `FORMAT` gives another key.
    Returns 32 hex digits.
    """
    digest = hashlib.sha256()
    files = sorted(p for p in Path(model_dir).rglob("*") if p.is_file())
    for path in files:
        relative = path.relative_to(model_dir).as_posix().encode()
        digest.update(len(relative).to_bytes(8, "big") + relative)
        digest.update(path.stat().st_size.to_bytes(8, "big"))
        with path.open("rb") as stream:  # in chunks: a model file can be large
            for chunk in iter(functools.partial(stream.read, 1 << 20), b""):
                digest.update(chunk)
    digest.update(f"{_platform()}-format{FORMAT}".encode())
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class _Trees:
    """A tree model read for compiling: its Treelite model and what compiled.json records."""

    model: Any  # treelite.Model
    kind: str
    columns: list[str] | None  # the bare model's inputs in its feature order; None: a plan
    cast: str  # "float32" | "float64": what the native library rounds its inputs to
    post: str
    alpha: float
    classes: list[Any] | None  # None: regression
    nan_allowed: bool


def compile_model(
    predictor: Predictor, names: Sequence[str], out_dir: Path, *, key: str = ""
) -> Path:
    """Compile a predictor's tree model into the artifact folder `out_dir` (replaced whole).

    `names` are the model's inputs (the signature's, in order); `key` (`artifact_key`) is
    recorded in compiled.json. Returns `out_dir`.

    Raises:
        NotCompilable: the model, a step in front of it or a split is not supported; the
            message names it and why.
    """
    model, kind, spec = _unwrap(predictor)
    prefix = None
    if type(model).__name__ == "Pipeline":
        prefix, model = (model[:-1] if len(model.steps) > 1 else None), model.steps[-1][1]
    trees = _read_trees(model, kind, spec, names, bare=prefix is None)
    plan = _vectorise(prefix, names) if prefix is not None else None
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".compiling-", dir=out_dir.parent))
    try:
        _build_library(trees.model, work / LIBRARY_FILE)
        description = {
            "format": FORMAT,
            "key": key,
            "kind": trees.kind,
            "task": spec.task,
            "inputs": list(names),
            "columns": trees.columns,
            "plan": plan.to_json() if plan is not None else None,
            "cast": trees.cast,
            "dtype": str(trees.model.input_type),
            "nan_allowed": trees.nan_allowed,
            "classes": trees.classes,
            "positive_class_index": (
                class_index(trees.classes, spec.positive_class)
                if spec.task == BINARY and trees.classes is not None
                else None
            ),
            "post": {"name": trees.post, "alpha": trees.alpha},
            "num_feature": int(trees.model.num_feature),
            "platform": _platform(),
            "runtime": _runtime(),
            "versions": _versions(),
        }
        (work / COMPILED_FILE).write_text(json.dumps(description, indent=1), encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        work.rename(out_dir)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return out_dir


#: Tree models compiled and still left native by default, with the measurement that says why
#: (`worth_compiling`): the compiled code is slower, or never within the gate's 1e-12.
NOT_WORTH = {
    "RandomForestClassifier": "a compiled random forest predicted at 0.45-0.68x the native "
    "speed (bench/compiled_predict.py)",
    "RandomForestRegressor": "a compiled random forest predicted at 0.45-0.68x the native "
    "speed (bench/compiled_predict.py)",
    "ExtraTreesClassifier": "compiled extra trees, like a random forest, predict slower than "
    "native (bench/compiled_predict.py)",
    "ExtraTreesRegressor": "compiled extra trees, like a random forest, predict slower than "
    "native (bench/compiled_predict.py)",
    "xgboost": "XGBoost adds its trees in float32 in another order than the compiled code: "
    "outputs differ by 1e-7 to 2e-6, never within the parity gate's 1e-12",
}


def worth_compiling(predictor: Predictor) -> None:
    """Refuse, before any compile, a tree model the score step leaves native by measurement
    (`NOT_WORTH`); `compile_model` itself still compiles them (the tests and the bench do).

    Raises:
        NotCompilable: naming the model and the measurement.
    """
    model, kind, _ = _unwrap(predictor)
    if type(model).__name__ == "Pipeline":
        model = model.steps[-1][1]
    name = type(model).__name__
    module = type(model).__module__.split(".")[0]
    for key in (name, kind, module):
        if key in NOT_WORTH:
            raise NotCompilable(f"{module}.{name} is left native: {NOT_WORTH[key]}")


def _unwrap(predictor: Predictor) -> tuple[Any, str, ModelSpec]:
    """The model object inside a predictor, its library kind and the use case's spec."""
    if isinstance(predictor, BoosterPredictor):
        return predictor.model, predictor.kind, predictor.spec
    if isinstance(predictor, EstimatorPredictor):
        return predictor.model, "estimator", predictor.spec
    raise NotCompilable(
        f"{type(predictor).__name__}: only scikit-learn-like estimators and native XGBoost / "
        "LightGBM boosters are compiled"
    )


def _vectorise(prefix: Any, names: Sequence[str]) -> Any:
    """The preprocessing steps in front of the trees as a vectorised plan (NotCompilable)."""
    from scoring.model.vectorised import vectorise

    return vectorise(prefix, names)


def _read_trees(model: Any, kind: str, spec: ModelSpec, names: Sequence[str], bare: bool) -> _Trees:
    """Import a supported tree model into Treelite, with what its outputs need."""
    name = type(model).__name__
    module = type(model).__module__.split(".")[0]
    if kind == "xgboost" or module == "xgboost":
        return _xgboost(model, spec, names, bare)
    if kind == "lightgbm" or module == "lightgbm":
        return _lightgbm(model, spec, names, bare)
    if module == "sklearn" and name in (*_SKLEARN_HGB, *_SKLEARN_FLOAT32):
        return _sklearn(model, spec, names, bare)
    raise NotCompilable(
        f"{module}.{name}: not a supported tree ensemble (scikit-learn HistGradientBoosting / "
        "RandomForest / ExtraTrees / GradientBoosting, XGBoost, LightGBM)"
    )


def _sklearn(model: Any, spec: ModelSpec, names: Sequence[str], bare: bool) -> _Trees:
    """A scikit-learn tree ensemble; its link function decides the post-transform."""
    import treelite.sklearn

    name = type(model).__name__
    if name in _SKLEARN_HGB:
        categorical = getattr(model, "is_categorical_", None)
        if categorical is not None and bool(np.any(categorical)):
            raise NotCompilable(
                f"{name}: categorical_features {np.flatnonzero(categorical).tolist()} "
                "(categorical splits are not compiled)"
            )
        post = _HGB_LINKS.get(type(model._loss.link).__name__)
        if post is None:
            raise NotCompilable(f"{name}: link {type(model._loss.link).__name__} not supported")
        cast, nan_allowed = "float64", True
    else:
        post = _gradient_boosting_post(model) if name.startswith("GradientBoosting") else "identity"
        cast, nan_allowed = "float32", name.startswith(("RandomForest", "ExtraTrees"))
    classifier = name.endswith("Classifier")
    if classifier and getattr(model, "n_outputs_", 1) != 1:
        raise NotCompilable(f"{name}: multi-output classifiers are not compiled")
    trees = _import(name, lambda: treelite.sklearn.import_model(model))
    classes = [_plain(c) for c in model.classes_] if classifier else None
    _check_task(name, spec, classes)
    return _Trees(
        trees,
        f"sklearn.{name}",
        _columns(model, names, bare),
        cast,
        post,
        1.0,
        classes,
        nan_allowed,
    )


#: scikit-learn's HistGradientBoosting link classes -> the inverse applied to the margins.
_HGB_LINKS = {
    "IdentityLink": "identity",
    "LogLink": "exp",
    "LogitLink": "sigmoid",
    "MultinomialLogit": "softmax",
}


def _gradient_boosting_post(model: Any) -> str:
    """GradientBoosting's post-transform; only its log-loss classifier and default init."""
    name = type(model).__name__
    if model.init is not None:
        raise NotCompilable(f"{name}: init={model.init!r} is not compiled (the default only)")
    if name == "GradientBoostingRegressor":
        return "identity"
    if model.loss != "log_loss":
        raise NotCompilable(f"{name}: loss '{model.loss}' is not compiled (log_loss only)")
    return "sigmoid" if len(model.classes_) == 2 else "softmax"


def _xgboost(model: Any, spec: ModelSpec, names: Sequence[str], bare: bool) -> _Trees:
    """An XGBoost Booster or scikit-learn-style model (float32 inputs, its own objective)."""
    import treelite

    booster = model if type(model).__name__ == "Booster" else model.get_booster()
    if any(t == "c" for t in (booster.feature_types or [])):
        raise NotCompilable("XGBoost: categorical features are not compiled")
    trees = _import("XGBoost", lambda: treelite.frontend.from_xgboost(booster))
    post, alpha = _treelite_post("XGBoost", trees)
    classes = _booster_classes(model, spec, trees)
    _check_task("XGBoost", spec, classes)
    columns = _columns(model, names, bare, booster.feature_names)
    return _Trees(
        trees, f"xgboost.{type(model).__name__}", columns, "float32", post, alpha, classes, True
    )


def _lightgbm(model: Any, spec: ModelSpec, names: Sequence[str], bare: bool) -> _Trees:
    """A LightGBM Booster or scikit-learn-style model (float64 inputs)."""
    import treelite

    booster = model if type(model).__name__ == "Booster" else model.booster_
    trees = _import("LightGBM", lambda: treelite.frontend.from_lightgbm(booster))
    post, alpha = _treelite_post("LightGBM", trees)
    classes = _booster_classes(model, spec, trees)
    _check_task("LightGBM", spec, classes)
    columns = _columns(model, names, bare, booster.feature_name())
    return _Trees(
        trees, f"lightgbm.{type(model).__name__}", columns, "float64", post, alpha, classes, True
    )


def _booster_classes(model: Any, spec: ModelSpec, trees: Any) -> list[Any] | None:
    """The classes of a boosting model: its classes_, or 0..k-1 (as BoosterPredictor)."""
    if spec.task == REGRESSION:
        return None
    if hasattr(model, "classes_"):
        return [_plain(c) for c in model.classes_]
    header = _header(trees)
    count = max(2, int(np.ravel(header["num_class"])[0]))
    return [str(i) for i in range(count)]


def _treelite_post(where: str, trees: Any) -> tuple[str, float]:
    """The post-transform a booster's objective asks for, as Treelite imported it."""
    header = _header(trees)
    names = {
        "identity": "identity",
        "identity_multiclass": "identity",
        "sigmoid": "sigmoid",
        "softmax": "softmax",
        "exponential": "exp",
    }
    post = names.get(str(header["postprocessor"]))
    if post is None:
        raise NotCompilable(
            f"{where}: objective post-transform '{header['postprocessor']}' is not compiled"
        )
    return post, float(np.ravel(header["sigmoid_alpha"])[0])


def _header(trees: Any) -> dict[str, Any]:
    """The fields of Treelite's model header this module reads."""
    accessor = trees.get_header_accessor()
    fields = ("num_target", "num_class", "postprocessor", "sigmoid_alpha")
    values = {name: accessor.get_field(name) for name in fields}
    return {k: v if isinstance(v, str) else np.asarray(v).tolist() for k, v in values.items()}


#: Treelite's node type of a categorical split (its model format v4, TreeNodeType).
_CATEGORICAL_NODE = 2


def _refuse_categorical(where: str, trees: Any) -> None:
    """Categorical splits are not compiled (their missing / unseen category rules differ)."""
    for index in range(int(trees.num_tree)):
        types = np.asarray(trees.get_tree_accessor(index).get_field("node_type"))
        if (types == _CATEGORICAL_NODE).any():
            raise NotCompilable(f"{where}: tree {index} has a categorical split (not compiled)")


def _import(where: str, read: Any) -> Any:
    """Run a Treelite importer; its refusal becomes NotCompilable naming the model."""
    try:
        trees = read()
    except NotCompilable:
        raise
    except Exception as exc:
        raise NotCompilable(f"{where}: Treelite cannot import it ({exc})") from exc
    if int(np.ravel(_header(trees)["num_target"])[0]) != 1:
        raise NotCompilable(f"{where}: multi-target models are not compiled")
    _refuse_categorical(where, trees)
    return trees


def _check_task(where: str, spec: ModelSpec, classes: list[Any] | None) -> None:
    """The model must serve the task the way its native predictor does."""
    if (spec.task == REGRESSION) != (classes is None):
        raise NotCompilable(f"{where}: the model does not serve task {spec.task}")


def _columns(
    model: Any, names: Sequence[str], bare: bool, own: Sequence[str] | None = None
) -> list[str] | None:
    """A bare model's input columns in its feature order (by name when it knows names)."""
    if not bare:
        return None
    known = own if own is not None else getattr(model, "feature_names_in_", None)
    if known is not None and set(known) <= set(names):
        return [str(c) for c in known]
    return list(names)


def _plain(value: Any) -> Any:
    """A class label as a JSON value (numpy scalars to Python)."""
    return value.item() if isinstance(value, np.generic) else value


def _versions() -> dict[str, str]:
    import tl2cgen
    import treelite

    return {"treelite": treelite.__version__, "tl2cgen": tl2cgen.__version__, "gcc": _gcc_version()}


#: TL2cgen's generated code tests `data[k].missing != -1`, where `missing` is an int sharing
#: the union with the float64 value: a value whose low 32 bits are all ones (559.9999999999999
#: is 0x40817fffffffffff, a sum that misses a round number by one ulp) reads as missing and
#: takes the missing branch. On make run's demo model 30-35 rows in 3,000 did. The tests are
#: rewritten to test the value itself for NaN, and the rows are handed to the trees by our own
#: batch function (below), not TL2cgen's runtime, which marks missing values through that int.
_MISSING_TEST = re.compile(r"\(data\[(\d+)\]\.missing != -1\)")
#: Appended to the generated main.c: margins of a whole C-contiguous matrix whose rows are the
#: trees' inputs (NaN = missing), one `predict` per row into `out` (rows x width, in the leaf
#: output type `LEAF`: double, or float for XGBoost).
_PREDICT = re.compile(
    r"void predict\(union Entry\* data, int pred_margin, (float|double)\* result\)"
)
_BATCH = """

int32_t scoring_output_width(void) {
  return N_TARGET * MAX_N_CLASS;
}

void scoring_margins(union Entry* data, int64_t n_rows, int32_t n_feature, LEAF* out) {
  const int32_t width = N_TARGET * MAX_N_CLASS;
  for (int64_t row = 0; row < n_rows; ++row) {
    LEAF* result = out + row * width;
    for (int32_t k = 0; k < width; ++k) {
      result[k] = 0.0;
    }
    predict(data + row * n_feature, 1, result);
  }
}
"""


def _build_library(trees: Any, libpath: Path) -> None:
    """C code from TL2cgen with NaN tests for missing values, compiled with gcc -O1.

    Thresholds are not quantized: quantizing rewrites the rows through the same int that
    misreads values as missing (`_MISSING_TEST`); without it and with NaN tests the
    HistGradientBoosting ran at 1.26x native, against 1.24x quantized (module docstring).
    """
    import tl2cgen

    cores = os.cpu_count() or 1
    source = Path(tempfile.mkdtemp(prefix=".tl2cgen-", dir=libpath.parent))
    try:
        tl2cgen.generate_c_code(trees, dirpath=str(source), params={"parallel_comp": cores})
        for path in sorted(source.glob("*.c")):
            code = _MISSING_TEST.sub(r"(!isnan(data[\1].fvalue))", path.read_text())
            if ".missing" in code or ".qvalue" in code:
                raise NotCompilable(
                    f"TL2cgen wrote a missing-value test not rewritten ({path.name})"
                )
            if path.name == "main.c":
                leaf = _PREDICT.search(code)
                if leaf is None:
                    raise NotCompilable("TL2cgen wrote a predict function of another signature")
                code += _BATCH.replace("LEAF", leaf.group(1))
            path.write_text(code)
        built = tl2cgen.create_shared(
            "gcc",
            str(source),
            nthread=cores,
            options=["-O1"],  # as fast as -O3, half the time
        )
        shutil.move(built, libpath)
    except NotCompilable:
        raise
    except Exception as exc:  # a compiler failure: the native model scores instead
        raise NotCompilable(f"TL2cgen / gcc could not compile the model ({exc})") from exc
    finally:
        shutil.rmtree(source, ignore_errors=True)


def load_compiled(folder: Path, spec: ModelSpec) -> Predictor:
    """The compiled predictor of an artifact folder, checked against this machine and `spec`.

    Raises:
        NotCompilable: the artifact is of another format, machine or TL2cgen, or another task.
        ModelError: compiled.json is missing or unreadable (names the file).
    """
    path = Path(folder) / COMPILED_FILE
    try:
        description = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable compiled model description ({exc})") from exc
    import tl2cgen

    wanted = {"format": FORMAT, "runtime": _runtime()}
    for item, value in wanted.items():
        if description.get(item) != value:
            raise NotCompilable(
                f"{path}: {item} {description.get(item)!r}, this machine's is {value!r}"
            )
    if description.get("versions", {}).get("tl2cgen") != tl2cgen.__version__:
        raise NotCompilable(f"{path}: compiled with another TL2cgen than {tl2cgen.__version__}")
    if description["task"] != spec.task:
        raise NotCompilable(f"{path}: compiled for task {description['task']}, not {spec.task}")
    if description["post"]["name"] not in _POSTS:
        raise NotCompilable(f"{path}: unknown post-transform {description['post']['name']!r}")
    plan = None
    if description["plan"] is not None:
        from scoring.model.vectorised import Vectorised

        plan = Vectorised.from_json(description["plan"])
    library = _Library.open(Path(folder) / LIBRARY_FILE)
    return CompiledPredictor(library, description, plan, spec, str(folder))


@dataclass(frozen=True)
class _Library:
    """The compiled library's batch entry point (`_BATCH`), called through ctypes.

    ctypes releases the GIL for the call; the rows are read in place, not copied.
    """

    margins_of: Any  # ctypes function: (rows, n_rows, n_feature, out) -> None
    width: int  # outputs per row
    leaf: str  # the margins' type: float64, or float32 (XGBoost)
    num_feature: int  # the row width the trees read
    where: Path

    @classmethod
    def open(cls, path: Path) -> _Library:
        import ctypes

        try:
            library = ctypes.CDLL(str(path))
            margins_of = library.scoring_margins
            width = library.scoring_output_width
            leaf = library.get_leaf_output_type
            num_feature = library.get_num_feature
        except (OSError, AttributeError) as exc:  # not there, another machine, or old format
            raise NotCompilable(f"{path}: not a loadable compiled model ({exc})") from exc
        margins_of.restype = None
        margins_of.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_void_p]
        width.restype = ctypes.c_int32
        leaf.restype = ctypes.c_char_p
        num_feature.restype = ctypes.c_int32
        return cls(margins_of, int(width()), leaf().decode(), int(num_feature()), path)

    def margins(self, data: np.ndarray) -> np.ndarray:
        """Margins (rows, width) of a C-contiguous matrix in the trees' input type."""
        if data.ndim != 2 or data.shape[1] != self.num_feature or not data.flags.c_contiguous:
            raise ModelError(
                f"{self.where}: the trees read C-contiguous rows of {self.num_feature} values, "
                f"not an array of shape {data.shape}"
            )
        out = np.empty((data.shape[0], self.width), dtype=self.leaf)
        self.margins_of(data.ctypes.data, data.shape[0], data.shape[1], out.ctypes.data)
        return out.astype("float64", copy=False)


@dataclass(frozen=True)
class CompiledPredictor:
    """A compiled tree model: plan (or columns) → trees' margins → the native outputs."""

    library: _Library
    description: dict[str, Any]
    plan: Any  # Vectorised | None
    spec: ModelSpec
    where: str

    def predict(self, frame: pd.DataFrame) -> Outputs:
        matrix = self.matrix(frame)
        margins = self.margins(matrix)
        values = _post(margins, self.description["post"])
        classes = self.description["classes"]
        if self.spec.task == REGRESSION:
            return from_values(values[:, 0])
        if values.shape[1] == 1:  # a binary model's trees give P(second class)
            values = np.column_stack([1.0 - values[:, 0], values[:, 0]])
        return from_probabilities(values, classes, self.spec)

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The trees' input matrix: the plan's output, or the bare model's columns."""
        if self.plan is not None:
            try:
                matrix = np.asarray(self.plan.transform(frame), dtype="float64")
            except ValueError as exc:
                raise ModelError(f"{self.where}: {exc}") from exc
        else:
            columns = self.description["columns"]
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise ModelError(f"{self.where}: input columns {missing} are not in the frame")
            matrix = frame[columns].to_numpy(dtype="float64", na_value=np.nan)
        if matrix.shape[1] != self.description["num_feature"]:
            raise ModelError(
                f"{self.where}: {matrix.shape[1]} input columns, the trees take "
                f"{self.description['num_feature']}"
            )
        if not self.description["nan_allowed"] and np.isnan(matrix).any():
            bad = np.flatnonzero(np.isnan(matrix).any(axis=0)).tolist()
            named = [self.description["columns"][i] for i in bad] if self.plan is None else bad
            raise ModelError(
                f"{self.where}: {self.description['kind']} does not accept missing values "
                f"(NaN in input {named})"
            )
        return matrix

    def margins(self, matrix: np.ndarray) -> np.ndarray:
        """The trees' raw outputs (n, outputs), in float64."""
        dtype = self.description["dtype"]  # the compiled code's input type
        rounded = np.asarray(matrix, dtype=self.description["cast"])
        return self.library.margins(np.ascontiguousarray(rounded, dtype=dtype))


def _post(margins: np.ndarray, post: dict[str, Any]) -> np.ndarray:
    """The native library's post-transform of the margins, in float64."""
    from scipy.special import expit, softmax

    name, alpha = post["name"], float(post["alpha"])
    if name == "sigmoid":
        return np.asarray(expit(alpha * margins if alpha != 1.0 else margins), dtype="float64")
    if name == "softmax":
        return np.asarray(softmax(margins, axis=1), dtype="float64")
    if name == "exp":
        return np.exp(margins)
    if name == "identity":
        return margins
    raise ModelError(f"unknown post-transform {name!r}")


@dataclass(frozen=True)
class Parity:
    """How far a compiled predictor's outputs are from the native one's on a sample."""

    rows: int
    max_abs_diff: float
    label_mismatches: int
    tolerance: float

    @property
    def ok(self) -> bool:
        """Every number within the tolerance and every label equal (an empty sample: no)."""
        return self.rows > 0 and self.max_abs_diff <= self.tolerance and self.label_mismatches == 0

    def describe(self) -> str:
        """One line with the numbers, for logs and `runs`."""
        verdict = "ok" if self.ok else "FAILED"
        return (
            f"parity {verdict}: {self.rows} rows, max |diff| {self.max_abs_diff:.3g} "
            f"(tolerance {self.tolerance:.3g}), {self.label_mismatches} label mismatches"
        )


def parity(
    native: Predictor,
    compiled: Predictor,
    frame: pd.DataFrame,
    task: str,
    tolerance: float = 1e-12,
) -> Parity:
    """Score `frame` with both predictors and compare every output array of `Outputs`.

    Numbers (score, prediction, multiclass probabilities) give the largest absolute
    difference (NaN on one side only counts as infinite); labels are counted where they
    differ. An error of either predictor propagates.
    """
    if task not in (BINARY, MULTICLASS, REGRESSION):
        raise ModelError(f"unknown task {task!r}")
    expected, actual = native.predict(frame), compiled.predict(frame)
    worst, mismatches = 0.0, 0
    names = sorted(set(expected.columns) | set(actual.columns))
    for name in names:
        if name not in expected.columns or name not in actual.columns:
            return Parity(len(frame), float("inf"), len(frame), tolerance)
        left, right = np.asarray(expected.columns[name]), np.asarray(actual.columns[name])
        if name == "label":
            mismatches += int(np.sum(left.astype(str) != right.astype(str)))
        else:
            worst = max(worst, _max_diff(left, right))
    if task == MULTICLASS:
        if tuple(expected.classes) != tuple(actual.classes):
            mismatches = max(mismatches, len(frame))
        else:
            worst = max(worst, _max_diff(expected.probabilities, actual.probabilities))
    return Parity(len(frame), worst, mismatches, tolerance)


def _max_diff(left: Any, right: Any) -> float:
    """The largest |left - right|; NaN on both sides is equal, on one side infinite."""
    a, b = np.asarray(left, dtype="float64"), np.asarray(right, dtype="float64")
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    both = np.isnan(a) & np.isnan(b)
    diff = np.where(both, 0.0, np.abs(a - b))
    return float(np.nan_to_num(diff, nan=np.inf).max())
