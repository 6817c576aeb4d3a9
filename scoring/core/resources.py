"""Where the files that ship with the code live: data contracts and configuration.

In a built wheel they are packaged under `scoring/_resources/`; in a source checkout they
are the top-level `schemas/` and `conf/` folders. When the package is imported from a zip
(`spark-submit --py-files scoring-*.zip`), `Path` cannot read inside the archive, so the
packaged folder is copied once per process to a temporary folder and that copy is used.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

ResourceKind = Literal["schemas", "conf"]

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the `scoring` package
_ENV_OVERRIDES = {"schemas": "SCORING_SCHEMAS_DIR", "conf": "SCORING_CONF_DIR"}


def resource_dir(kind: ResourceKind) -> Path:
    """Return the folder holding `kind` files, preferring an explicit environment override.

    Order: `$SCORING_SCHEMAS_DIR` / `$SCORING_CONF_DIR`, the wheel's packaged copy, the
    packaged copy inside a zip (extracted to a temporary folder), the source tree's
    top-level folder.
    """
    override = os.environ.get(_ENV_OVERRIDES[kind])
    candidates = [Path(override)] if override else []
    candidates.append(_PACKAGE_DIR / "_resources" / kind)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    if not override:
        extracted = _extracted_from_archive(kind)
        if extracted is not None:
            return extracted
    source_tree = _PACKAGE_DIR.parent / kind
    if source_tree.is_dir():
        return source_tree
    searched = ", ".join(str(c) for c in [*candidates, source_tree])
    raise FileNotFoundError(f"no '{kind}' folder found (searched: {searched})")


@cache
def _extracted_from_archive(kind: ResourceKind) -> Path | None:
    """Copy `scoring/_resources/<kind>` out of the zip the package was imported from."""
    packaged = resources.files("scoring").joinpath("_resources", kind)
    if isinstance(packaged, Path) or not packaged.is_dir():
        return None  # not in an archive (a real folder was already checked), or absent
    target = Path(tempfile.mkdtemp(prefix=f"scoring-{kind}-"))
    atexit.register(shutil.rmtree, target, True)
    _copy_tree(packaged, target)
    return target


def _copy_tree(source: Traversable, target: Path) -> None:
    """Copy a Traversable folder (e.g. a `zipfile.Path`) to a real folder, recursively."""
    for item in source.iterdir():
        if item.is_dir():
            (target / item.name).mkdir()
            _copy_tree(item, target / item.name)
        else:
            (target / item.name).write_bytes(item.read_bytes())
