"""YAML files that must hold a mapping: configuration, contracts, usecase.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from scoring.core.errors import ScoringError


def read_mapping(
    path: Path, error: type[ScoringError], missing: str, empty_ok: bool = False
) -> dict[str, Any]:
    """The mapping at the top of a YAML file; `error` names the file otherwise.

    Args:
        path: the file.
        error: the exception type to raise (ConfigError, ContractError, UseCaseError).
        missing: what to say when the file does not exist.
        empty_ok: an empty file is an empty mapping (else an error).
    """
    if not path.is_file():
        raise error(f"{path}: {missing}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({exc})".replace("\n", " ")) from exc
    if data is None and empty_ok:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path}: the top level must be a mapping of keys")
    return data
