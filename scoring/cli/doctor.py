"""`scoring doctor`: is this machine ready to run the jobs?

It reports the versions of Python, Java, Spark, Delta and MLflow and where the tables and
the model registry live; then it proves the chain works: a session starts (with no
download), a small Delta table is written twice, read back, and time-travelled to version 0,
and the MLflow tracking store answers. Every check is reported; any failure exits non-zero.
"""

from __future__ import annotations

import logging
import platform
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pyspark.sql import SparkSession

import scoring
from scoring.cli.usecase_checks import Check, usecase_checks
from scoring.core import io
from scoring.core.config import Config, join_path
from scoring.core.session import session_for
from scoring.core.tables import TableRef
from scoring.runs.steps import usecase_tables
from scoring.usecase.spec import UseCase

log = logging.getLogger(__name__)


def run_doctor(
    config: Config,
    usecase: UseCase,
    session_factory: Callable[[], SparkSession] | None = None,
) -> int:
    """Print the environment report and run every check; return the process exit code."""
    for label, value in environment_report(config, usecase):
        print(f"{label:<26} {value}")
    checks = [check_java()]
    spark = None
    try:
        spark = (session_factory or (lambda: session_for(config)))()
        checks.append(Check("spark session", True, f"Spark {spark.version} started"))
    except Exception as exc:  # any start failure is the doctor's answer, not a crash
        checks.append(Check("spark session", False, _one_line(exc)))
    if spark is not None:
        checks.append(check_delta_round_trip(spark, config))
    checks.append(check_mlflow(config))
    checks += usecase_checks(spark, config, usecase)
    print()
    for check in checks:
        print(f"[{check.label}] {check.name}: {check.detail}")
    failed = [c.name for c in checks if not c.ok]
    if failed:
        print(f"\ndoctor: {len(failed)} check(s) failed: {', '.join(failed)}")
        return 1
    print("\ndoctor: all checks passed")
    return 0


def environment_report(config: Config, usecase: UseCase) -> list[tuple[str, str]]:
    """Versions and locations, as (label, value) lines."""
    lines = [
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("java", java_version() or "not found"),
        ("pyspark", _package_version("pyspark")),
        ("delta-spark", _package_version("delta-spark")),
        ("mlflow", _package_version("mlflow")),
        ("scoring", f"{scoring.__version__} ({Path(scoring.__file__).parent})"),
        ("environment", f"{config.env} ({config.spark.platform})"),
        ("config files", ", ".join(config.sources)),
        ("storage root", config.storage.root),
        ("use case", f"{usecase.name} ({usecase.folder})"),
        ("raw drops", config.raw_root(usecase.name)),
        ("mlflow tracking", config.tracking_uri),
        ("mlflow registry", config.registry_uri),
    ]
    if config.spark.platform == "local":
        lines.append(("delta jars", str(config.spark.jars_dir)))
    tables = usecase_tables(config, usecase)
    lines += [(f"table {name}", str(tables[name])) for name in tables]
    return lines


def java_version() -> str | None:
    """The `java -version` line of the Java on PATH, or None when there is none."""
    if shutil.which("java") is None:
        return None
    result = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
    match = re.search(r'version "([^"]+)"', result.stderr + result.stdout)
    return match.group(1) if match else (result.stderr.strip().splitlines() or ["?"])[0]


def check_java() -> Check:
    """Java 17 or newer is on PATH (Spark 4 needs it)."""
    found = java_version()
    if found is None:
        return Check("java", False, "no `java` on PATH: install Java 17")
    major = int(found.split(".")[0]) if found.split(".")[0].isdigit() else 0
    return Check("java", major >= 17, f"Java {found}" + ("" if major >= 17 else " (need 17+)"))


def check_delta_round_trip(spark: SparkSession, config: Config) -> Check:
    """Write a Delta table twice, read it back and time-travel to version 0."""
    ref = TableRef("doctor", path=join_path(config.storage.root, "_doctor", uuid.uuid4().hex))
    try:
        first = spark.createDataFrame([(1, "a"), (2, "b"), (3, None)], "id INT, value STRING")
        io.write_delta(first, ref, "overwrite", {"step": "doctor"})
        io.write_delta(first.limit(1), ref, "append", {"step": "doctor"})
        now = io.read_table(spark, ref).count()
        at_zero = sorted(io.read_table(spark, ref, version=0).collect())
        expected = sorted(first.collect())
        ok = now == 4 and at_zero == expected and io.current_version(spark, ref) == 1
        detail = f"wrote v0 (3 rows) and v1 (+1 row) at {ref.path}; read {now} rows; v0 "
        detail += "matches" if at_zero == expected else f"differs: {at_zero}"
        return Check("delta write/read/time travel", ok, detail)
    except Exception as exc:  # the doctor reports every failure instead of raising
        return Check("delta write/read/time travel", False, _one_line(exc))
    finally:
        _remove_local(ref)


def check_mlflow(config: Config) -> Check:
    """The MLflow tracking store answers (creating the local sqlite file if needed)."""
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.registry_uri)
        client.search_experiments(max_results=1)
        return Check("mlflow", True, f"tracking store answers at {config.tracking_uri}")
    except Exception as exc:  # the doctor reports every failure instead of raising
        return Check("mlflow", False, f"{config.tracking_uri}: {_one_line(exc)}")


def _remove_local(ref: TableRef) -> None:
    """Delete the doctor's scratch table when it is on the local file system."""
    path = str(ref.path)
    if "://" not in path and not path.startswith("dbfs:"):
        shutil.rmtree(path, ignore_errors=True)


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
