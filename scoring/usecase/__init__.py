"""Use cases: a folder with `usecase.yaml`, contracts and code, run by the engine unchanged.

This package is also the engine's public interface for use case code: a use case's files
import from `scoring.usecase` only (contracts, errors, the objects the engine hands them),
never from the engine's internals. See docs/usecases.md.
"""

from __future__ import annotations

import os
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
#: The demo, when running from a source checkout: `<clone>/examples/churn`.
_CHECKOUT_DEMO = Path(__file__).resolve().parents[2] / "examples" / "churn"


def default_usecase_dir() -> Path:
    """The use case of a command without `--usecase`: `$SCORING_USECASE`, else the demo.

    Raises:
        UseCaseError: neither is available (an installed wheel holds no example).
    """
    given = os.environ.get(USECASE_ENV)
    if given:
        return Path(given)
    if (_CHECKOUT_DEMO / USECASE_FILE).is_file():
        return _CHECKOUT_DEMO
    raise UseCaseError(
        f"no use case given: pass --usecase DIR or set {USECASE_ENV} "
        "(the churn demo is only the default in a source checkout)"
    )
