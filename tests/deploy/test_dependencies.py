"""The wheel requires mlflow-skinny; the full mlflow is the `mlflow` extra (local sqlite store).

The dev venv has the full mlflow. Its Python files are mlflow-skinny's (the two
distributions ship the same `mlflow` package); what it adds are distributions (Flask,
SQLAlchemy, alembic, ...). So a run "with mlflow-skinny alone" is this venv with those
distributions made unimportable (`sys.modules[name] = None`, which is also how
`importlib.util.find_spec` reports a missing module), computed from the installed
metadata rather than listed by hand.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from deploy.build import ENV_EXTRAS

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# The engine's MLflow code end to end on a store mlflow-skinny serves (a local file store
# stands in for a tracking server): every module imported, a model logged, registered,
# resolved by alias, downloaded and loaded as the engine does.
ENGINE_WITH_SKINNY = """
import importlib, pkgutil, sys, tempfile
for name in sys.argv[1].split(","):
    sys.modules[name] = None
import scoring
for module in pkgutil.walk_packages(scoring.__path__, "scoring."):
    importlib.import_module(module.name)
import mlflow, pandas as pd
from sklearn.linear_model import LogisticRegression
from scoring.model.loading import load_predictor, trusted_types
from scoring.model.registry import (
    MlflowTarget, configure_mlflow, download_model, ensure_experiment, resolve_model)
from scoring.train.register import log_model
from scoring.usecase.spec import ModelSpec
store = "file://" + tempfile.mkdtemp() + "/mlruns"
target = MlflowTarget(store, store, None, "skinny")
spec = ModelSpec("m", "champion", "binary")
inputs = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
with mlflow.start_run(experiment_id=ensure_experiment(target)):
    info = log_model(LogisticRegression().fit(inputs, [0, 0, 1, 1]), inputs, "binary", "m",
                     trusted_types(spec))
configure_mlflow(target).set_registered_model_alias("m", "champion", info.registered_model_version)
resolved = resolve_model(target, "models:/m@champion")
print(type(load_predictor(download_model(target, resolved), spec)).__name__)
"""
SQLITE_WITH_SKINNY = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
from mlflow import MlflowClient
MlflowClient("sqlite:///" + sys.argv[2]).search_experiments()
"""


def names(requirements: Iterable[str]) -> list[str]:
    return [canonicalize_name(Requirement(r).name) for r in requirements]


def installed_closure(roots: Iterable[str]) -> set[str]:
    """The installed distributions `roots` need, themselves included (markers evaluated)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    found: set[str] = set()
    todo = [(root, frozenset[str]()) for root in roots]
    while todo:
        name, extras = todo.pop()
        if (canonicalize_name(name), extras) in seen:
            continue
        seen.add((canonicalize_name(name), extras))
        try:
            needs = requires(name) or []
        except PackageNotFoundError:  # not for this platform, so not installed here
            continue
        found.add(canonicalize_name(name))
        for text in needs:
            need = Requirement(text)
            if need.marker is None or any(
                need.marker.evaluate({"extra": e}) for e in {"", *extras}
            ):
                todo.append((need.name, frozenset(need.extras)))
    return found


def full_mlflow_only_modules() -> list[str]:
    """Top-level modules that only the full mlflow's extra distributions provide."""
    only = installed_closure(["mlflow"]) - installed_closure(names(PYPROJECT["dependencies"]))
    return sorted(
        module
        for module, dists in packages_distributions().items()
        if all(canonicalize_name(d) in only for d in dists)
    )


def run_without(modules: list[str], script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"}  # MLflow 3 asks for the opt-in
    return subprocess.run(
        [sys.executable, "-c", script, ",".join(modules), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def without_full_mlflow() -> list[str]:
    modules = full_mlflow_only_modules()
    assert {"sqlalchemy", "alembic", "flask"} <= set(modules)
    assert "mlflow" not in modules
    return modules


def test_wheel_requires_mlflow_skinny_and_the_mlflow_extra_the_full_mlflow_of_the_same_range():
    base = {
        str(canonicalize_name(Requirement(r).name)): Requirement(r)
        for r in PYPROJECT["dependencies"]
    }
    assert "mlflow" not in base
    (full,) = [Requirement(r) for r in PYPROJECT["optional-dependencies"]["mlflow"]]
    assert full.name == "mlflow"
    assert full.specifier == base["mlflow-skinny"].specifier


def test_make_setup_and_the_packed_environment_install_the_mlflow_extra():
    assert set(ENV_EXTRAS.split(",")) == {"spark", "mlflow"}
    makefile = (ROOT / "Makefile").read_text()
    # `make setup`'s install (other targets, e.g. test-latest, have constraints of their own)
    (extras,) = re.findall(r"-c constraints\.txt -e '\.\[([^\]]*)\]'", makefile)
    assert set(extras.split(",")) == {"spark", "mlflow", "dev"}


def test_the_engine_logs_registers_and_loads_a_model_with_mlflow_skinny_alone(without_full_mlflow):
    result = run_without(without_full_mlflow, ENGINE_WITH_SKINNY)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1] == "EstimatorPredictor"


def test_the_local_sqlite_store_needs_the_mlflow_extra(without_full_mlflow, tmp_path):
    result = run_without(without_full_mlflow, SQLITE_WITH_SKINNY, str(tmp_path / "mlflow.db"))
    assert result.returncode != 0
    assert "unsupported URI 'sqlite:///" in result.stderr
