"""`make dist`: the wheel, the `--py-files` zip, job entry points, use case archives, a venv.

Artifacts (all under the output folder, `dist/` by default):

- `scoring-<version>-py3-none-any.whl`: the engine only, for Databricks (`python_wheel_task`)
  and `pip install`.
- `scoring.zip`: the `scoring` package exactly as in the wheel (with `_resources/conf` and
  `_resources/schemas`), for `spark-submit --py-files` on clusters that have the dependencies.
- `jobs/<command>.py`: the thin spark-submit entry points (upload next to the zip).
- `usecases/<name>.zip`: one per example use case folder `examples/<name>/`, its files at the
  zip root, for `--archives usecases/<name>.zip#usecase` and the job argument
  `--usecase ./usecase` (the wheel holds no use case).
- `scoring-env.tar.gz`: a venv-pack archive with the wheel and its pinned dependencies, for
  `--archives scoring-env.tar.gz#environment` on clusters that lack them. PySpark and py4j are
  removed from it: the cluster's own Spark provides them and must match its JVM.

Usage: `python deploy/build.py [--dist DIR] [--no-env] [--build-isolation]`. This script runs
on the machine that deploys (also from `databricks bundle deploy`, with `--build-isolation`:
Python and pip are all it needs there), so it imports nothing from `scoring` and nothing
outside the standard library.
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
USECASES_DIR = "usecases"
EXAMPLES = ROOT / "examples"
# What marks a folder as a use case (scoring.usecase.USECASE_FILE, not imported: see above).
USECASE_FILE = "usecase.yaml"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# Provided by the cluster's Spark installation; a second copy in the venv would shadow it.
PLATFORM_PACKAGES = ("pyspark", "py4j")
# The wheel's extras in the packed venv: `spark` for delta-spark's Python side (pyspark
# itself is removed again), `mlflow` for the full MLflow, whose SQL tracking store the local
# sqlite file needs (a run against a tracking server needs only the wheel's mlflow-skinny).
ENV_EXTRAS = "spark,mlflow"


def build_wheel(dist: Path, isolated: bool = False) -> Path:
    """Build the wheel with pip and hatchling, replacing any older `scoring-*.whl` in `dist`.

    By default hatchling comes from the installed dev tools (`make dist`: no download). With
    `isolated`, pip installs the build backend of `[build-system]` into a temporary
    environment from the package index, so a machine with only Python and pip can build it
    (the Databricks bundle's build).
    """
    dist.mkdir(parents=True, exist_ok=True)
    for old in dist.glob("scoring-*.whl"):
        old.unlink()
    isolation = [] if isolated else ["--no-build-isolation"]
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation,
         "-w", str(dist), str(ROOT))  # fmt: skip
    (wheel,) = dist.glob("scoring-*.whl")
    return wheel


def pyfiles_zip(wheel: Path, target: Path) -> Path:
    """Copy the `scoring/` tree of the wheel into a zip importable with `--py-files`.

    Every package folder has an `__init__.py`: zipimport does not find a namespace package
    (a folder without one) in a zip that, like a wheel, has no entries for folders.
    """
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


def example_usecases(examples: Path = EXAMPLES) -> list[Path]:
    """The example use case folders: each `examples/<name>/` that holds a `usecase.yaml`."""
    return sorted(marker.parent for marker in examples.glob(f"*/{USECASE_FILE}"))


def usecase_archive(folder: Path, target: Path) -> Path:
    """Zip a use case folder with its files at the zip root (caches and dot files left out).

    Spark unpacks `--archives <target>#usecase` into the folder `usecase` of the driver's and
    each executor's working directory, so the job finds it as `--usecase ./usecase`.
    """
    files = sorted(p for p in folder.rglob("*") if p.is_file() and _shipped(p.relative_to(folder)))
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for path in files:
            # A fixed time and mode: the same folder always gives the same bytes.
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), _ZIP_TIME)
            info.external_attr = 0o644 << 16
            out.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return target


def usecase_archives(dist: Path, examples: Path = EXAMPLES) -> Path:
    """Build `usecases/<name>.zip` for every example use case, replacing the old ones."""
    target = dist / USECASES_DIR
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for folder in example_usecases(examples):
        usecase_archive(folder, target / f"{folder.name}.zip")
    return target


def _shipped(relative: Path) -> bool:
    """A file of a use case folder that belongs in its archive (no caches, no dot files)."""
    hidden = any(part.startswith(".") or part == "__pycache__" for part in relative.parts)
    return not hidden and relative.suffix != ".pyc"


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
             "-c", str(ROOT / "constraints.txt"), f"{wheel}[{ENV_EXTRAS}]")  # fmt: skip
        _run(pip, "uninstall", "-q", "-y", *PLATFORM_PACKAGES)
        target.unlink(missing_ok=True)
        _run(sys.executable, "-m", "venv_pack", "-q", "-p", str(venv), "-o", str(target))
    return target


def main(argv: list[str] | None = None) -> int:
    """Build every artifact into `--dist`; `--no-env` skips the (slow) packed venv."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument("--no-env", action="store_true", help="skip the packed virtualenv")
    parser.add_argument(
        "--build-isolation",
        action="store_true",
        help="let pip fetch the build backend (hatchling) from the index: no dev venv needed",
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter of the packed venv")
    args = parser.parse_args(argv)
    wheel = build_wheel(args.dist, isolated=args.build_isolation)
    built = [
        wheel,
        pyfiles_zip(wheel, args.dist / PYFILES_ZIP),
        copy_jobs(args.dist),
        usecase_archives(args.dist),
    ]
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
