"""Single-thread predict throughput of tree models: native vs Treelite GTIL vs TL2cgen (.so).

The score step runs one Python worker per core, so every predictor is measured on one
thread (OMP_NUM_THREADS=1, threadpoolctl, nthread=1). Native and compiled runs alternate,
`--reps` times each, and the best of each is reported, so a busy machine slows both alike.
No Spark.

    .venv/bin/python -m bench.compiled_predict --rows 1000000 --reps 3
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np
import pandas as pd

FEATURES = 20


def _data(rows: int, seed: int) -> pd.DataFrame:
    """Float features (5 % missing) and two text columns (with nulls), demo-like."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        rng.normal(size=(rows, FEATURES)), columns=[f"x{i}" for i in range(FEATURES)]
    )
    frame = frame.mask(rng.random(frame.shape) < 0.05)
    for name, values in (("plan", ["basic", "plus", "premium", None]), ("region", list("abcdefg"))):
        frame[name] = rng.choice(np.array(values, dtype=object), size=rows)
    return frame


def _target(frame: pd.DataFrame, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    signal = frame[[f"x{i}" for i in range(5)]].fillna(0.0).to_numpy() @ rng.normal(size=5)
    return ((signal + (frame["plan"] == "premium") + rng.normal(size=len(frame))) > 0).astype(int)


def _best(reps: int, runs: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Seconds of each run, best of `reps`, the runs alternating."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(reps):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _report(model: str, rows: int, seconds: dict[str, float]) -> None:
    native = seconds["native"]
    for name, value in seconds.items():
        print(
            f"{model:28s} {name:22s} {value:7.2f} s {rows / value:10,.0f} rows/s "
            f"{native / value:5.2f}x native",
            flush=True,
        )


def main() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder
    from threadpoolctl import threadpool_limits

    from scoring.model.compiled import compile_model, load_compiled
    from scoring.model.predictors import EstimatorPredictor
    from scoring.usecase.spec import ModelSpec

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--models", default="hgb,rf,pipeline")
    args = parser.parse_args()
    train, data = _data(50_000, 1), _data(args.rows, 2)
    floats = [f"x{i}" for i in range(FEATURES)]
    y = _target(train, 3)
    spec = ModelSpec("bench", "champion", "binary")
    work = Path(tempfile.mkdtemp(prefix="compiled-bench-"))
    hgb = {"max_iter": 100, "learning_rate": 0.1, "min_samples_leaf": 10, "early_stopping": False}
    models: dict[str, tuple[Any, list[str]]] = {
        "hgb": (HistGradientBoostingClassifier(**hgb, random_state=0), floats),
        "rf": (RandomForestClassifier(100, max_depth=8, random_state=0), floats),
    }
    encode = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="unknown")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    prepare = ColumnTransformer(
        [("categorical", encode, ["plan", "region"]), ("numeric", "passthrough", floats)]
    )
    models["pipeline"] = (
        Pipeline([("prepare", prepare), ("classify", HistGradientBoostingClassifier(**hgb))]),
        ["plan", "region", *floats],
    )
    with threadpool_limits(1):
        for name in args.models.split(","):
            import treelite
            import treelite.sklearn

            model, names = models[name]
            model.fit(train[names], y)
            native = EstimatorPredictor(model, spec)
            start = time.perf_counter()
            compiled = load_compiled(compile_model(native, names, work / name), spec)
            print(
                f"{name}: compile {time.perf_counter() - start:.1f} s (gcc on {os.cpu_count()} cores)"
            )
            frame = data[names]
            expected = native.predict(frame).columns["score"]
            diff = np.abs(compiled.predict(frame).columns["score"] - expected).max()
            print(f"{name}: max |score diff| compiled vs native {diff:.3g}", flush=True)
            runs: dict[str, Callable[[], Any]] = {
                "native": partial(native.predict, frame),
                "tl2cgen .so": partial(compiled.predict, frame),
            }
            if name != "pipeline":
                trees = treelite.sklearn.import_model(model)
                matrix = frame.to_numpy(dtype="float64")
                if name == "rf":
                    matrix = matrix.astype("float32").astype("float64")
                runs["treelite gtil"] = partial(treelite.gtil.predict, trees, matrix, nthread=1)
            _report(name, len(frame), _best(args.reps, runs))


if __name__ == "__main__":
    main()
