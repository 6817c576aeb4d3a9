"""Use cases: a folder with `usecase.yaml`, contracts and code, run by the engine unchanged.

This package is also the engine's public interface for use case code: a use case's files
import from `scoring.usecase` only (contracts, errors, the objects the engine hands them),
never from the engine's internals. See docs/usecases.md.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from scoring.core.contracts import ColumnSpec, Contract, read_contract
from scoring.core.errors import ConfigError, ContractError, DataError, UseCaseError
from scoring.usecase.code import import_module, load_function
from scoring.usecase.interfaces import TrainingData
from scoring.usecase.spec import (
    AS_OF_DATE,
    FEATURE_RUN_ID,
    TASKS,
    USECASE_FILE,
    CodeRef,
    FeaturesSpec,
    ModelSpec,
    Source,
    TrainSpec,
    UseCase,
    load_usecase,
)

__all__ = [
    "AS_OF_DATE",
    "FEATURE_RUN_ID",
    "TASKS",
    "USECASE_ENV",
    "USECASE_FILE",
    "CodeRef",
    "ColumnSpec",
    "ConfigError",
    "Contract",
    "ContractError",
    "DataError",
    "FeaturesSpec",
    "ModelSpec",
    "Source",
    "TrainSpec",
    "TrainingData",
    "UseCase",
    "UseCaseError",
    "default_usecase_dir",
    "import_module",
    "load_function",
    "load_usecase",
    "read_contract",
]

USECASE_ENV = "SCORING_USECASE"
#: A source checkout's root: its pyproject.toml may name a default use case folder.
_CHECKOUT = Path(__file__).resolve().parents[2]


def default_usecase_dir() -> Path:
    """The use case of a command without `--usecase`: `$SCORING_USECASE`, else the folder
    a source checkout names in its pyproject.toml (`[tool.scoring] default_usecase`).

    Raises:
        UseCaseError: neither is available (an installed wheel holds no example).
    """
    given = os.environ.get(USECASE_ENV)
    if given:
        return Path(given)
    checkout_default = _checkout_default()
    if checkout_default is not None and (checkout_default / USECASE_FILE).is_file():
        return checkout_default
    raise UseCaseError(
        f"no use case given: pass --usecase DIR or set {USECASE_ENV} "
        "(only a source checkout has a default use case)"
    )


def _checkout_default() -> Path | None:
    """The `[tool.scoring] default_usecase` folder of the checkout's pyproject.toml, if any."""
    project = _CHECKOUT / "pyproject.toml"
    if not project.is_file():
        return None
    with project.open("rb") as handle:
        folder = tomllib.load(handle).get("tool", {}).get("scoring", {}).get("default_usecase")
    return _CHECKOUT / folder if isinstance(folder, str) else None
