"""The churn pipeline on a Spark standalone cluster: a master and two workers on loopback.

Each worker has its own work folder and one core. Nothing of the driver's Python reaches
them: they start with PYTHONPATH and PYSPARK_* cleared and an empty Spark conf folder, so
their executors run the Python of the packed environment of `make dist`
(`--archives scoring-env.tar.gz#environment`, `PYSPARK_PYTHON=./environment/bin/python`,
relative to each executor's own folder), get `scoring` only as `--py-files scoring.zip` and
the use case only as `--archives churn.zip#usecase`, and share nothing with the driver but
the folder of the tables. The driver runs in client mode with the dev venv's Python. Spark
unpacks `--archives` into each executor's working folder, but the driver's copy into a
temporary folder, so the driver's working folder holds the use case archive unpacked as
`./usecase`.

Packing the environment downloads the pinned dependencies from PyPI: that is set-up, and
`make test` builds `dist/scoring-env.tar.gz` before the tests (only when its inputs change).
The zip, the jobs and the use case archive are built here, like test_spark_submit.py does.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pyspark
import pytest

from deploy.build import ENV_ARCHIVE, USECASES_DIR
from scoring.core.session import delta_jars
from tests.conftest import CHURN_DIR, make_config

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SPARK_HOME = Path(pyspark.__file__).parent
LOOPBACK = "127.0.0.1"
WORKERS = 2
DATES = ["2026-03-01", "2026-03-02"]
# What the executors run: the packed environment, unpacked into each executor's folder.
EXECUTOR_PYTHON = "./environment/bin/python"
# How long a daemon may take to come up, and a job to finish, on a busy 2-core machine.
START_TIMEOUT_S = 180
JOB_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Cluster:
    """A running standalone cluster: its master URL, each worker's work folder, and the empty
    Spark conf folder that daemons and jobs read instead of the local spark-defaults.conf."""

    master: str
    workers: tuple[Path, ...]
    conf_dir: Path


@dataclass(frozen=True)
class Job:
    """A finished spark-submit run: its exit code, output and the driver's working folder."""

    returncode: int
    stdout: str
    stderr: str
    cwd: Path

    def failure(self) -> str:
        """The output to show when the job failed."""
        return f"exit {self.returncode}\n{self.stdout[-4000:]}\n{self.stderr[-6000:]}"


@pytest.fixture(scope="module")
def env_archive() -> Path:
    """The packed environment `make dist` (and `make test`) built from the current inputs."""
    archive = ROOT / "dist" / ENV_ARCHIVE
    if not archive.is_file():
        pytest.fail(f"{archive} missing: run `make dist` (`make test` builds it first)")
    inputs = [ROOT / "pyproject.toml", ROOT / "constraints.txt", ROOT / "deploy" / "build.py"]
    stale = [p.name for p in inputs if p.stat().st_mtime > archive.stat().st_mtime]
    if stale:
        pytest.fail(f"{archive} is older than {', '.join(stale)}: run `make dist`")
    return archive


def daemon_env(conf_dir: Path) -> dict[str, str]:
    """The environment of the master and workers: no Python settings, no Spark defaults."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "PYSPARK_", "SCORING_", "SPARK_", "VIRTUAL_ENV"))
    }
    env.update(SPARK_HOME=str(SPARK_HOME), SPARK_CONF_DIR=str(conf_dir), SPARK_LOCAL_IP=LOOPBACK)
    return env


def wait_for(log: Path, pattern: str, count: int, process: subprocess.Popen[bytes]) -> list[str]:
    """The first `count` matches of `pattern` in a daemon's log, once they are there."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        found = re.findall(pattern, log.read_text(errors="replace"))
        if len(found) >= count:
            return found[:count]
        if process.poll() is not None:
            break
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-3000:]
    raise AssertionError(f"{log}: no {count} x {pattern!r} in {START_TIMEOUT_S} s:\n{tail}")


@contextmanager
def running(
    command: Sequence[str], log: Path, env: Mapping[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a daemon (its own process group) until the block ends, then stop it by its id.

    SIGTERM lets a worker stop its executors; whatever of the group is left (an executor,
    its Python workers) gets SIGKILL.
    """
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=dict(env), start_new_session=True
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with suppress(ProcessLookupError):  # the group: this daemon and its children
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A master and two 1-core workers on 127.0.0.1, each with its own work folder."""
    folder = tmp_path_factory.mktemp("cluster")
    conf_dir = folder / "conf"  # empty: the daemons read no spark-defaults.conf
    conf_dir.mkdir()
    env = daemon_env(conf_dir)
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    ports = ["--host", LOOPBACK, "--port", "0", "--webui-port", "0"]
    with ExitStack() as stack:
        master_log = folder / "master.log"
        master = stack.enter_context(
            running([spark_class, "org.apache.spark.deploy.master.Master", *ports], master_log, env)
        )
        (url,) = wait_for(
            master_log, rf"Starting Spark master at (spark://{LOOPBACK}:\d+)", 1, master
        )
        workers = tuple(folder / f"worker-{i}" for i in range(1, WORKERS + 1))
        for work in workers:
            work.mkdir()
            command = [spark_class, "org.apache.spark.deploy.worker.Worker", *ports]
            command += ["--cores", "1", "--memory", "1g", "--work-dir", str(work), url]
            stack.enter_context(running(command, folder / f"{work.name}.log", env))
        wait_for(master_log, rf"Registering worker {LOOPBACK}:\d+ with 1 cores", WORKERS, master)
        yield Cluster(url, workers, conf_dir)


def submit(
    cluster: Cluster, dist: Path, archives: Sequence[str], job: str, args: Sequence[str], cwd: Path
) -> Job:
    """`spark-submit` a job of `dist` to the cluster, in client mode, from `cwd`."""
    jars_dir = make_config(Path("/unused")).spark.jars_dir
    assert jars_dir is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "SCORING_"))}
    env.update(
        SPARK_CONF_DIR=str(cluster.conf_dir),  # not the local spark-defaults of `make setup`
        SPARK_LOCAL_IP=LOOPBACK,
        PYSPARK_PYTHON=EXECUTOR_PYTHON,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        SCORING_JARS_DIR=jars_dir,
        # Relative: each Python worker logs its model loads in its own working folder.
        SCORING_MODEL_LOAD_LOG=".",
    )
    conf = {
        "spark.driver.host": LOOPBACK,
        "spark.driver.bindAddress": LOOPBACK,
        "spark.ui.enabled": "false",
        "spark.executor.cores": "1",
    }
    command = [
        str(SPARK_HOME / "bin" / "spark-submit"),
        *("--master", cluster.master, "--deploy-mode", "client"),
        *(flag for key, value in conf.items() for flag in ("--conf", f"{key}={value}")),
        *("--jars", ",".join(str(p) for p in delta_jars(jars_dir))),
        *("--py-files", str(dist / "scoring.zip"), "--archives", ",".join(archives)),
        str(dist / "jobs" / f"{job}.py"),
        *args,
        *("--set", f"spark.master={cluster.master}"),
    ]
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=JOB_TIMEOUT_S
    )
    for stream in ("stdout", "stderr"):  # kept next to the driver's folder, for a CI failure
        (cwd.parent / f"{job}.{stream}").write_text(getattr(result, stream))
    return Job(result.returncode, result.stdout, result.stderr, cwd)


def driver_folder(parent: Path, dist: Path) -> Path:
    """A working folder for the driver holding the use case archive unpacked as ./usecase."""
    folder = parent / "driver"
    zipfile.ZipFile(dist / USECASES_DIR / "churn.zip").extractall(folder / "usecase")
    return folder


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo drops of 200 customers for the two dates: the storage driver and workers share."""
    from scoring.cli.main import run

    root = tmp_path_factory.mktemp("shared") / "lake"
    generate = ["generate-demo-data", "--usecase", str(CHURN_DIR), "--env", "local"]
    sample = ["--customers", "200", "--days", str(len(DATES)), "--start", DATES[0]]
    sample += ["--seed", "3", "--history-days", "60"]
    assert run([*generate, "--set", f"storage.root={root}", *sample]) == 0
    return root


def shipped(dist: Path, env_archive: Path | None) -> list[str]:
    """A job's `--archives`: the packed environment (unless None) and the use case."""
    usecase = f"{dist / USECASES_DIR / 'churn.zip'}#usecase"
    return [f"{env_archive}#environment", usecase] if env_archive else [usecase]


def job_args(lake: Path, *args: str) -> list[str]:
    """The arguments every job gets: the unpacked use case, the local config, the lake."""
    return ["--usecase", "./usecase", "--env", "local", "--set", f"storage.root={lake}", *args]


@pytest.fixture(scope="module")
def doctor(env_archive, dist, lake, cluster, tmp_path_factory) -> Job:
    work = driver_folder(tmp_path_factory.mktemp("doctor"), dist)
    return submit(cluster, dist, shipped(dist, env_archive), "doctor", job_args(lake), work)


@pytest.fixture(scope="module")
def doctor_without_environment(dist, lake, cluster, tmp_path_factory) -> Job:
    """The doctor with `PYSPARK_PYTHON=./environment/bin/python` but no environment shipped
    (run last: its executors fail every Python task)."""
    work = driver_folder(tmp_path_factory.mktemp("doctor-no-env"), dist)
    return submit(cluster, dist, shipped(dist, None), "doctor", job_args(lake), work)


@pytest.fixture(scope="module")
def pipeline(env_archive, dist, lake, cluster, doctor, tmp_path_factory) -> Job:
    """The pipeline over both dates (it trains the model first), after the doctor's run."""
    work = driver_folder(tmp_path_factory.mktemp("pipeline"), dist)
    args = job_args(lake, "--set", "spark.shuffle_partitions=2", "--run-date", DATES[0])
    args += ["--days", str(len(DATES)), "--train-if-missing"]
    return submit(cluster, dist, shipped(dist, env_archive), "pipeline", args, work)


def require_success(job: Job) -> None:
    """Fail with the job's output when it failed."""
    assert job.returncode == 0, job.failure()


def executor_folders(cluster: Cluster, file_name: str) -> list[Path]:
    """The executor folders (`<worker>/app-*/<executor id>`) that hold `file_name`."""
    return sorted(p.parent for w in cluster.workers for p in w.glob(f"app-*/*/{file_name}"))


def test_doctor_on_the_cluster_finds_the_packed_python_on_the_executors(doctor, cluster):
    assert doctor.returncode == 0, doctor.failure()
    match = re.search(
        r"^\[ok\] worker python: executors run (\S+) \(Python ([\d.]+)\) "
        rf"\(PYSPARK_PYTHON={re.escape(EXECUTOR_PYTHON)}, "
        rf"master {re.escape(cluster.master)}\)$",
        doctor.stdout,
        re.M,
    )
    assert match, doctor.stdout
    python = Path(match.group(1))
    executor = python.parents[2]  # <worker>/app-<id>/<executor id>/environment/bin/python
    assert python == executor / EXECUTOR_PYTHON
    assert executor.parent.parent in cluster.workers
    assert match.group(2).startswith(f"{sys.version_info.major}.{sys.version_info.minor}.")
    assert "[ok] delta write/read/time travel" in doctor.stdout
    assert "doctor: all checks passed" in doctor.stdout


def test_pipeline_runs_on_the_cluster(pipeline):
    require_success(pipeline)


def test_every_customer_of_each_date_is_scored_once_by_the_cluster(pipeline, spark, lake):
    require_success(pipeline)
    features = spark.read.format("delta").load(f"{lake}/churn/features")
    scores = spark.read.format("delta").load(f"{lake}/churn/scores")
    entities = features.select("as_of_date", "customer_id").collect()
    scored = scores.select("as_of_date", "customer_id", "score", "model_version").collect()
    for day in DATES:
        expected = sorted(r["customer_id"] for r in entities if str(r["as_of_date"]) == day)
        rows = [r for r in scored if str(r["as_of_date"]) == day]
        assert expected and sorted(r["customer_id"] for r in rows) == expected, day
        assert all(0 <= r["score"] <= 1 for r in rows), day
        assert {r["model_version"] for r in rows} == {"1"}, day


def test_each_executor_loaded_the_model_once_per_python_worker_and_scored_rows(
    pipeline, cluster, spark, lake
):
    require_success(pipeline)
    folders = executor_folders(cluster, "model-loads.log")
    # Both workers scored: one executor folder each, with the packed environment unpacked.
    assert sorted(f.parent.parent for f in folders) == sorted(cluster.workers), folders
    scored = 0
    for folder in folders:
        assert (folder / EXECUTOR_PYTHON).exists(), folder
        log = [line.split() for line in (folder / "model-loads.log").read_text().splitlines()]
        loads = [entry[1] for entry in log if entry[0] == "load"]
        batches = [(entry[1], int(entry[2])) for entry in log if entry[0] == "batch"]
        assert len(loads) == len(set(loads)), f"{folder}: a Python worker loaded twice: {log}"
        assert {pid for pid, _ in batches} <= set(loads), f"{folder}: a batch before a load: {log}"
        scored += sum(rows for _, rows in batches)
    assert scored == spark.read.format("delta").load(f"{lake}/churn/scores").count()
    # Nothing was scored in the driver's process or folder.
    assert not (pipeline.cwd / "model-loads.log").exists()


def test_doctor_on_the_cluster_names_why_the_executors_cannot_start_python(
    doctor_without_environment, cluster
):
    out = doctor_without_environment.stdout
    assert doctor_without_environment.returncode == 1, doctor_without_environment.failure()
    assert (
        '[FAILED] worker python: Cannot run program "./environment/bin/python": error=2, '
        f"No such file or directory (PYSPARK_PYTHON=./environment/bin/python, master "
        f"{cluster.master}); is the packed environment shipped (--archives ...#environment)?"
    ) in out
    assert "[FAILED] delta write/read/time travel: not run: it needs Python workers" in out
    assert "Py4JJavaError" not in out
