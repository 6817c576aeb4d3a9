"""`make dist`: the wheel, the `--py-files` zip, the job entry points and a packed venv.

Artifacts (all under the output folder, `dist/` by default):

- `scoring-<version>-py3-none-any.whl`: for Databricks (`python_wheel_task`) and `pip install`.
- `scoring.zip`: the `scoring` package exactly as in the wheel (with `_resources/conf` and
  `_resources/schemas`), for `spark-submit --py-files` on clusters that have the dependencies.
- `jobs/<command>.py`: the thin spark-submit entry points (upload next to the zip).
- `scoring-env.tar.gz`: a venv-pack archive with the wheel and its pinned dependencies, for
  `--archives scoring-env.tar.gz#environment` on clusters that lack them. PySpark and py4j are
  removed from it: the cluster's own Spark provides them and must match its JVM.

Usage: `python deploy/build.py [--dist DIR] [--no-env]`.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYFILES_ZIP = "scoring.zip"
ENV_ARCHIVE = "scoring-env.tar.gz"
JOBS_DIR = "jobs"
# Provided by the cluster's Spark installation; a second copy in the venv would shadow it.
PLATFORM_PACKAGES = ("pyspark", "py4j")


def build_wheel(dist: Path) -> Path:
    """Build the wheel with hatchling from the installed dev tools (no download)."""
    dist.mkdir(parents=True, exist_ok=True)
    for old in dist.glob("scoring-*.whl"):
        old.unlink()
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(dist), str(ROOT))  # fmt: skip
    (wheel,) = dist.glob("scoring-*.whl")
    return wheel


def pyfiles_zip(wheel: Path, target: Path) -> Path:
    """Copy the `scoring/` tree of the wheel into a zip importable with `--py-files`."""
    with (
        zipfile.ZipFile(wheel) as source,
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out,
    ):
        for info in source.infolist():
            if info.filename.startswith("scoring/"):
                out.writestr(info, source.read(info))
    return target


def copy_jobs(dist: Path) -> Path:
    """Copy `jobs/*.py` next to the zip: spark-submit needs the entry point as a file."""
    target = dist / JOBS_DIR
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for job in sorted((ROOT / "jobs").glob("*.py")):
        shutil.copy2(job, target / job.name)
    return target


def pack_env(wheel: Path, target: Path, python: str) -> Path:
    """Install the wheel with the pinned dependencies in a fresh venv and pack it.

    `python` must be the interpreter the cluster nodes have at the same path (venv-pack keeps
    `bin/python` as a link to it); see docs/deploy.md.
    """
    with tempfile.TemporaryDirectory(prefix="scoring-pack-") as tmp:
        venv = Path(tmp) / "env"
        _run(python, "-m", "venv", str(venv))
        pip = str(venv / "bin" / "pip")
        _run(pip, "install", "-q", "--disable-pip-version-check",
             "-c", str(ROOT / "constraints.txt"), f"{wheel}[spark]")  # fmt: skip
        _run(pip, "uninstall", "-q", "-y", *PLATFORM_PACKAGES)
        target.unlink(missing_ok=True)
        _run(sys.executable, "-m", "venv_pack", "-q", "-p", str(venv), "-o", str(target))
    return target


def main(argv: list[str] | None = None) -> int:
    """Build every artifact into `--dist`; `--no-env` skips the (slow) packed venv."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument("--no-env", action="store_true", help="skip the packed virtualenv")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the packed venv")
    args = parser.parse_args(argv)
    wheel = build_wheel(args.dist)
    built = [wheel, pyfiles_zip(wheel, args.dist / PYFILES_ZIP), copy_jobs(args.dist)]
    if not args.no_env:
        built.append(pack_env(wheel, args.dist / ENV_ARCHIVE, _base_python(args.python)))
    for path in built:
        print(f"built {path}")
    return 0


def _base_python(python: str) -> str:
    """The real interpreter behind a venv's python (a packed venv must not chain venvs)."""
    out = _run(python, "-c", "import sys; print(sys._base_executable)", capture=True)
    return out.strip() or python


def _run(*command: str, capture: bool = False) -> str:
    result = subprocess.run(command, check=True, text=True, capture_output=capture)
    return result.stdout if capture else ""


if __name__ == "__main__":
    sys.exit(main())
