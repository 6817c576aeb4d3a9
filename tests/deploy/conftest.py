"""Fixtures shared by the deploy tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, `scoring.zip`, the jobs and the use case archives, built once by the same
    script as `make dist` (no packed venv: `make test` builds that one in `dist/`). Tests
    only read them."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "build.py"), "--dist", str(out), "--no-env"],
        check=True,
        capture_output=True,
    )
    return out
