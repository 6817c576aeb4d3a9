"""Where the files that ship with the code live: data contracts and configuration.

In a built wheel they are packaged under `scoring/_resources/`; in a source checkout they
are the top-level `schemas/` and `conf/` folders. Both are found the same way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

ResourceKind = Literal["schemas", "conf"]

_PACKAGE_DIR = Path(__file__).resolve().parent
_ENV_OVERRIDES = {"schemas": "SCORING_SCHEMAS_DIR", "conf": "SCORING_CONF_DIR"}


def resource_dir(kind: ResourceKind) -> Path:
    """Return the folder holding `kind` files, preferring an explicit environment override.

    Order: `$SCORING_SCHEMAS_DIR` / `$SCORING_CONF_DIR`, the wheel's packaged copy, the
    source tree's top-level folder.
    """
    override = os.environ.get(_ENV_OVERRIDES[kind])
    candidates = [Path(override)] if override else []
    candidates += [_PACKAGE_DIR / "_resources" / kind, _PACKAGE_DIR.parent / kind]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    searched = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"no '{kind}' folder found (searched: {searched})")
