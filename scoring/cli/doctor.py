"""`scoring doctor`: is this machine ready to run the jobs?

It reports the versions of Python, Java, Spark, Delta and MLflow and where the tables and
the model registry live; then it proves the chain works: a session starts (with no
download), an executor starts a Python worker (and says which Python), a small Delta table
is written twice, read back, and time-travelled to version 0, and the MLflow tracking store
answers. Every check is reported; any failure exits non-zero.
"""

from __future__ import annotations

import logging
import platform
import re
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pyspark import SparkContext
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

DELTA_CHECK = "delta write/read/time travel"
# How long the worker check waits for an executor: a cluster without free cores never runs
# the task, and Spark waits for one for ever.
WORKER_TIMEOUT_S = 300.0
# Why a Python worker did not run, from the text of the Java error (first match wins): the
# program cannot be started; the worker process wrote an error and exited; a Python
# exception in the worker (the first unindented `Type: message` line of its traceback).
_WORKER_CAUSES = (
    (re.compile(r"(Cannot run program .+)"), "{}"),
    (re.compile(r"Error from python worker:\n\s*(.+)"), "the Python worker exited: {}"),
    (
        re.compile(r"PythonException: Traceback.*?^(?:\w+\.)*(\w+: .+?)$", re.M | re.S),
        "the Python worker failed: {}",
    ),
)


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
        worker = check_worker_python(spark)
        checks.append(worker)
        checks.append(
            check_delta_round_trip(spark, config)
            if worker.ok
            else Check(DELTA_CHECK, False, "not run: it needs Python workers (see worker python)")
        )
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


def check_worker_python(spark: SparkSession, timeout: float = WORKER_TIMEOUT_S) -> Check:
    """Run a trivial Python task on an executor: which Python runs there, or why none starts.

    Every Python UDF needs a worker, the model's included. When the executors cannot start
    one, the first action that needs it fails with a long Java error (for the Delta round
    trip, `Py4JJavaError ... o81.save`); this check names the cause in one line, with the
    `PYSPARK_PYTHON` in force (the driver's, which Spark hands to every executor).
    """
    context = spark.sparkContext
    setting = f"PYSPARK_PYTHON={context.pythonExec}, master {context.master}"
    try:
        found = _python_of_an_executor(spark, timeout)
    except TimeoutError:
        detail = f"no executor ran a task in {timeout:g} s: are workers up with free cores?"
        return Check("worker python", False, f"{detail} ({setting})")
    except Exception as exc:  # the doctor reports every failure instead of raising
        cause = _worker_failure(exc)
        return Check("worker python", False, f"{cause} ({setting}){_hint(context, cause)}")
    return Check("worker python", True, f"executors run {found} ({setting})")


def _python_of_an_executor(spark: SparkSession, timeout: float) -> str:
    """`sys.executable` and version of a Python worker; the job is cancelled after `timeout`.

    The job runs in a daemon thread, so a job that never gets an executor cannot hold the
    doctor's process open after it has answered.
    """
    context = spark.sparkContext
    group = f"scoring-doctor-{uuid.uuid4().hex[:8]}"
    found: list[str] = []
    errors: list[Exception] = []

    def describe(_: int) -> str:  # a closure travels by value: the worker imports no scoring
        return f"{sys.executable} (Python {platform.python_version()})"

    def run() -> None:
        try:
            context.setJobGroup(group, "scoring doctor: worker python", interruptOnCancel=True)
            found.extend(context.parallelize([0], 1).map(describe).collect())
        except Exception as exc:  # handed to the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="scoring-doctor-worker-python", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        context.cancelJobGroup(group)
        raise TimeoutError(f"no executor ran the task in {timeout:g} s")
    if errors:
        raise errors[0]
    return found[0]


def _worker_failure(exc: BaseException) -> str:
    """The line of a failed task's error that says why its Python worker did not run."""
    text = str(exc)
    for pattern, template in _WORKER_CAUSES:
        match = pattern.search(text)
        if match:
            return template.format(match.group(1).strip())
    return _one_line(exc)


def _hint(context: SparkContext, cause: str) -> str:
    """What to look at when the executors find no program at `PYSPARK_PYTHON`."""
    if "error=2" not in cause:
        return ""
    if context.pythonExec.startswith("/"):
        return "; every executor's node needs that program at that path"
    if (context.master or "").startswith("local"):
        return (
            "; local mode runs the executors in the driver's working folder, where Spark does"
            " not unpack --archives: use a cluster's master or an absolute PYSPARK_PYTHON"
        )
    return (
        "; is the packed environment shipped (--archives ...#environment)? Its bin/python links"
        " to the interpreter it was built with, which every node needs at that path"
        " (docs/deploy.md)"
    )


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
        return Check(DELTA_CHECK, ok, detail)
    except Exception as exc:  # the doctor reports every failure instead of raising
        return Check(DELTA_CHECK, False, _one_line(exc))
    finally:
        _remove_local(ref)


def check_mlflow(config: Config) -> Check:
    """The MLflow tracking store answers; a local store that does not exist yet is reported,
    not created (an empty sqlite file at a mistyped path would later read as "empty
    registry" instead of "registry not found")."""
    try:
        from mlflow.tracking import MlflowClient

        from scoring.core.mlflow_uris import check_local_store, local_store

        missing: dict[str, str] = {}  # path -> the first key naming it
        for key, uri in (
            ("mlflow.tracking_uri", config.tracking_uri),
            ("mlflow.registry_uri", config.registry_uri),
        ):
            store = local_store(uri)
            if store is not None and not store[0].exists():
                check_local_store(uri, key)  # its folder can be created: else a ConfigError
                missing.setdefault(str(store[0]), key)
        if missing:
            where = ", ".join(f"{path} ({key})" for path, key in missing.items())
            return Check(
                "mlflow",
                True,
                f"no store yet at {where}: the first `scoring "
                "train` (or `pipeline --train-if-missing`) creates it; if you expected one "
                "there, mlflow.tracking_uri / registry_uri / storage.root point elsewhere",
            )
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
