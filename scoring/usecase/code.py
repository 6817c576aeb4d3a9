"""A use case's Python files, imported as one package so they can import each other.

The folder is imported as the package `scoring_usecases.<name>` (no `__init__.py` needed):
`features.py` becomes `scoring_usecases.<name>.features`, and a use case file may use
relative imports (`from .generator import knobs`). Modules are registered with
cloudpickle by value, so a function a use case hands to Spark (a UDF) travels to executors
that have no copy of the folder.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scoring.core.errors import UseCaseError
from scoring.usecase.spec import CodeRef, UseCase

ROOT_PACKAGE = "scoring_usecases"


def package_name(usecase: UseCase) -> str:
    """The package name the use case's folder is imported under."""
    return f"{ROOT_PACKAGE}.{usecase.name}"


def import_module(usecase: UseCase, relative: str) -> types.ModuleType:
    """Import `<folder>/<relative>.py` (dots for sub-folders) of the use case.

    Raises:
        UseCaseError: the file cannot be imported (syntax error, failing import, ...).
    """
    package = _ensure_package(usecase)
    name = f"{package}.{relative}"
    try:
        module = importlib.import_module(name)
    except Exception as exc:  # any failure of user code at import is a use case problem
        file = usecase.folder / (relative.replace(".", "/") + ".py")
        raise UseCaseError(f"{file}: cannot be imported: {type(exc).__name__}: {exc}") from exc
    _pickle_by_value(module)
    return module


def load_function(usecase: UseCase, ref: CodeRef) -> Callable[..., Any]:
    """The function `ref` names (`features.py:build`), imported from the use case folder.

    Raises:
        UseCaseError: naming the file and key when the file cannot be imported or has no
            such function.
    """
    relative = ref.file.relative_to(usecase.folder).with_suffix("")
    module = import_module(usecase, ".".join(relative.parts))
    function = getattr(module, ref.function, None)
    if not callable(function):
        raise UseCaseError(
            f"{usecase.path}: {ref.key}: {ref.file} has no function '{ref.function}'"
        )
    return function


def _ensure_package(usecase: UseCase) -> str:
    """Register the root package and the use case's package (idempotent)."""
    if ROOT_PACKAGE not in sys.modules:
        root = types.ModuleType(ROOT_PACKAGE)
        root.__path__ = []
        sys.modules[ROOT_PACKAGE] = root
    name = package_name(usecase)
    existing = sys.modules.get(name)
    if existing is not None and Path(getattr(existing, "__path__", [""])[0]) == usecase.folder:
        return name
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]  # another folder of the same name was imported before
    spec = importlib.util.spec_from_loader(name, loader=None, is_package=True)
    assert spec is not None
    package = importlib.util.module_from_spec(spec)
    package.__path__ = [str(usecase.folder)]
    sys.modules[name] = package
    return name


def _pickle_by_value(module: types.ModuleType) -> None:
    """Make cloudpickle ship the module's functions by value (executors lack the folder)."""
    from pyspark import cloudpickle

    with contextlib.suppress(ValueError):  # already registered
        cloudpickle.register_pickle_by_value(module)
