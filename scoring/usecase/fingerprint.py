"""The fingerprint of a use case's code: recorded by every score run, checked by a replay.

A score run stamps its commits with the engine's version (`scoring.core.io.code_version`)
and this fingerprint of the use case folder; `scoring replay` recomputes both and warns when
the code it runs is not the code that scored. The fingerprint covers the folder's code and
configuration files (`CODE_SUFFIXES`, in every sub-folder), by relative path and content;
hidden files and folders and `__pycache__` are left out, so data or caches kept next to the
code do not change it.

Example:
    >>> code_fingerprint(Path("tests/usecases/claims"))  # doctest: +SKIP
    'sha256:3f0c9a7e51d2b6c4'
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

#: The files that make up a use case's code: feature code, SQL, usecase.yaml and contracts.
CODE_SUFFIXES = (".py", ".sql", ".yaml", ".yml", ".toml", ".cfg", ".ini")
_SKIPPED_FOLDERS = ("__pycache__",)


def code_fingerprint(folder: str | Path) -> str:
    """`sha256:<16 hex digits>` over the relative path and bytes of each code file of `folder`.

    The same files with the same content give the same fingerprint on any machine (paths
    are taken relative to `folder`, with `/`, in sorted order).
    """
    root = Path(folder)
    digest = hashlib.sha256()
    for relative in code_files(root):
        content = hashlib.sha256((root / relative).read_bytes()).digest()
        digest.update(relative.encode("utf-8") + b"\0" + content)
    return "sha256:" + digest.hexdigest()[:16]


def code_files(root: Path) -> list[str]:
    """The code files under `root` (relative, `/`-separated, sorted); symlinked folders are
    not followed."""
    found = []
    for here, folders, files in os.walk(root):
        folders[:] = [f for f in folders if not f.startswith(".") and f not in _SKIPPED_FOLDERS]
        base = Path(here).relative_to(root)
        found += [
            (base / name).as_posix()
            for name in files
            if not name.startswith(".") and name.endswith(CODE_SUFFIXES)
        ]
    return sorted(found)
