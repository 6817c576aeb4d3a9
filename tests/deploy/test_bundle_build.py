"""The bundle's artifact build needs only Python 3 and pip on the deploying machine.

`databricks bundle deploy` runs the artifact's `build:` command from the bundle root. It is
`deploy/build.py --build-isolation`: pip builds the wheel in an isolated environment and
fetches the build backend of `[build-system]` from the index, instead of the dev venv's
hatchling that `make dist` uses offline. Nothing here downloads: pip is stubbed out.
"""

from __future__ import annotations

import ast
import shlex
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from deploy import build
from tests.deploy.bundle import load_bundle

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = load_bundle()["artifacts"]["scoring_wheel"]


def pip_commands(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> list[list[str]]:
    """The commands `build.main(argv)` runs, with pip stubbed to write an empty wheel."""
    commands: list[list[str]] = []

    def run(*command: str, capture: bool = False) -> str:
        commands.append(list(command))
        out = Path(command[command.index("-w") + 1])
        zipfile.ZipFile(out / "scoring-0.1.0-py3-none-any.whl", "w").close()
        return ""

    monkeypatch.setattr(build, "_run", run)
    assert build.main(argv) == 0
    return commands


def test_bundle_build_is_the_build_script_with_build_isolation_and_no_packed_env():
    assert shlex.split(ARTIFACT["build"]) == [
        "python3",
        "deploy/build.py",
        "--dist",
        "dist",
        "--no-env",
        "--build-isolation",
    ]


def test_bundle_uploads_the_wheel_from_the_folder_the_build_writes_to():
    argv = shlex.split(ARTIFACT["build"])
    dist = argv[argv.index("--dist") + 1]
    assert ARTIFACT["path"] == "."
    assert [f["source"] for f in ARTIFACT["files"]] == [f"{dist}/scoring-*.whl"]


def test_build_script_imports_nothing_outside_the_standard_library():
    tree = ast.parse((ROOT / "deploy" / "build.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    outside = {m for m in imported if m.split(".")[0] not in sys.stdlib_module_names}
    assert outside == set()


def test_the_bundle_build_lets_pip_fetch_the_build_backend(monkeypatch, tmp_path):
    argv = shlex.split(ARTIFACT["build"])[2:]
    argv[argv.index("--dist") + 1] = str(tmp_path)
    (pip,) = pip_commands(monkeypatch, argv)
    assert pip == [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "-w",
        str(tmp_path),
        str(ROOT),
    ]


def test_make_dist_builds_offline_with_the_installed_hatchling(monkeypatch, tmp_path):
    (pip,) = pip_commands(monkeypatch, ["--dist", str(tmp_path), "--no-env"])
    assert "--no-build-isolation" in pip


def test_an_older_wheel_is_replaced_so_the_bundle_uploads_exactly_one(monkeypatch, tmp_path):
    (tmp_path / "scoring-0.0.9-py3-none-any.whl").write_bytes(b"old")
    pip_commands(monkeypatch, ["--dist", str(tmp_path), "--no-env", "--build-isolation"])
    assert [p.name for p in tmp_path.glob("scoring-*.whl")] == ["scoring-0.1.0-py3-none-any.whl"]


def test_build_isolation_fetches_hatchling_the_backend_pyproject_declares():
    system = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    assert system["build-backend"] == "hatchling.build"
    assert [r.split(">")[0] for r in system["requires"]] == ["hatchling"]
