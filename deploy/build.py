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
  removed from it: the cluster's own Spark provides them and must match its JVM. It holds no
  interpreter: its `bin/python` links to the one named by `--python` (by its real path), which
  every node must have at that same path; the build runs the unpacked archive to prove it.

Usage: `python deploy/build.py [--dist DIR] [--no-env] [--build-isolation]`. This script runs
on the machine that deploys (also from `databricks bundle deploy`, with `--build-isolation`:
Python and pip are all it needs there), so it imports nothing from `scoring` and nothing
outside the standard library.
"""

from __future__ import annotations

import argparse
import os
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
# Run by the unpacked archive's bin/python: the stack the jobs import, then where it runs.
_ENV_PROBE = (
    "import os, sys, pandas, pyarrow, sklearn, mlflow, scoring\n"
    "print(sys.prefix, os.path.realpath(sys.executable))"
)


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
    """Install the wheel with the pinned dependencies in a fresh venv made by `python`; pack it.

    `python` is the real interpreter of the nodes (see `_base_python`): venv-pack copies no
    interpreter, and the archive's `bin/python` links to this one by its absolute path. The
    archive is written next to `target` and replaces it only once `check_env_archive` has
    run it unpacked, so a failed build never leaves a new-looking archive behind.
    """
    partial = target.with_name(f"{target.name}.partial")
    with tempfile.TemporaryDirectory(prefix="scoring-pack-") as tmp:
        venv = Path(tmp) / "env"
        _run(python, "-m", "venv", str(venv))
        pip = str(venv / "bin" / "pip")
        _run(pip, "install", "-q", "--disable-pip-version-check",
             "-c", str(ROOT / "constraints.txt"), f"{wheel}[{ENV_EXTRAS}]")  # fmt: skip
        _run(pip, "uninstall", "-q", "-y", *PLATFORM_PACKAGES)
        partial.unlink(missing_ok=True)
        _run(sys.executable, "-m", "venv_pack", "-q", "-p", str(venv), "-o", str(partial),
             "--format", "tar.gz")  # fmt: skip
    try:
        check_env_archive(partial, python)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.chmod(0o644)  # venv-pack writes it readable by its owner only
    partial.replace(target)
    return target


def check_env_archive(archive: Path, python: str) -> str:
    """Unpack the archive as Spark does (`tar`, links kept) and run its `bin/python`.

    It must start as `python` with the unpacked folder as `sys.prefix` and import the engine
    and its stack, pyspark aside (the cluster's Spark puts its own on the workers' path).
    Returns what the probe printed.

    Raises:
        PackError: naming the archive and what the unpacked `bin/python` did instead.
    """
    with tempfile.TemporaryDirectory(prefix="scoring-unpack-") as folder:
        _run("tar", "-xzf", str(archive), "-C", folder)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        result = subprocess.run(
            [os.path.join(folder, "bin", "python"), "-c", _ENV_PROBE],
            capture_output=True, text=True, env=env, cwd=folder,
        )  # fmt: skip
        if result.returncode != 0:
            error = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise PackError(f"{archive}: bin/python does not run after unpacking: {error}")
        prefix, executable = result.stdout.split()
    if Path(prefix).resolve() != Path(folder).resolve() or executable != os.path.realpath(python):
        raise PackError(
            f"{archive}: unpacked bin/python runs {executable} with sys.prefix {prefix}, "
            f"expected {os.path.realpath(python)} with the unpacked folder"
        )
    return result.stdout


class PackError(RuntimeError):
    """The packed environment does not run as the nodes will run it."""


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
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter of the cluster's nodes, at the path they have it (e.g. "
        "/usr/bin/python3.11 on their image): the packed venv is made from it and links to it; "
        "a venv's python or a shim stands for the interpreter behind it (default: this one)",
    )
    args = parser.parse_args(argv)
    wheel = build_wheel(args.dist, isolated=args.build_isolation)
    built = [
        wheel,
        pyfiles_zip(wheel, args.dist / PYFILES_ZIP),
        copy_jobs(args.dist),
        usecase_archives(args.dist),
    ]
    if not args.no_env:
        python = _base_python(args.python)
        print(f"packing for {python}: every node needs this interpreter at this path")
        built.append(pack_env(wheel, args.dist / ENV_ARCHIVE, python))
    for path in built:
        print(f"built {path}")
    return 0


def _base_python(python: str) -> str:
    """The interpreter behind `python` (a venv's python or a shim such as pyenv's): its
    `sys._base_executable`, the path the packed venv's `bin/python` will link to.

    A venv made from a venv's python would link into that venv, which the nodes lack.

    Raises:
        PackError: when `python` does not run.
    """
    try:
        out = _run(python, "-c", "import sys; print(sys._base_executable)", capture=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise PackError(f"--python {python}: does not run ({exc})") from exc
    return out.strip()


def _run(*command: str, capture: bool = False) -> str:
    result = subprocess.run(command, check=True, text=True, capture_output=capture)
    return result.stdout if capture else ""


if __name__ == "__main__":
    sys.exit(main())
