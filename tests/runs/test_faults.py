"""Real processes killed mid-step and raced: what they leave in the tables and in `runs`.

Ingest: two lakes get the same demo drops (same seed). The reference lake is ingested cleanly, date
after date, in this process. The faulty lake's runs are `python -m scoring ingest`
subprocesses with `SCORING_FAULT` (scoring/core/faults.py): day 2 is SIGKILLed right after
its first bronze MERGE and rerun; on day 3 a run that holds its claim (paused) is raced by a
second one. At the end both lakes must hold the same bronze and quarantine rows, run stamps
aside: one copy of each record, nothing of the killed run or of the loser left twice.

Score: a run SIGKILLed between its `scores` write and its `scores_current` MERGE, rerun:
one row per entity in both.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from scoring.cli.main import run
from scoring.core import io
from scoring.core.faults import ENV as FAULT_ENV
from scoring.core.tables import bronze_name
from scoring.runs.history import bronze_versions, succeeded_versions
from scoring.runs.steps import usecase_tables
from scoring.usecase import load_usecase
from tests.conftest import CHURN_DIR, make_config

pytestmark = pytest.mark.slow

DAYS = ["2026-03-01", "2026-03-02", "2026-03-03"]
CHURN = load_usecase(CHURN_DIR)
FIRST_SOURCE = next(iter(CHURN.sources))
# The sources with a drop on every date (the outcomes arrive later, never in these tests).
DAILY = [n for n, s in CHURN.sources.items() if s.contract.schedule == "daily"]
# Run stamps: who wrote a row and when, and the file's full path (the lakes differ).
STAMPS = {"_source_file", "_ingest_run_id", "_ingested_at", "source_file", "run_id",
          "quarantined_at"}  # fmt: skip
JOB_TIMEOUT_S = 900


def lake(root: Path) -> Path:
    """Demo drops of 30 customers for DAYS under `root`."""
    args = ["generate-demo-data", "--usecase", str(CHURN_DIR), "--set", f"storage.root={root}"]
    args += ["--customers", "30", "--days", str(len(DAYS)), "--start", DAYS[0], "--seed", "5"]
    assert run([*args, "--history-days", "10"]) == 0
    return root


def ingest_args(root: Path, day: str) -> list[str]:
    return ["ingest", "--usecase", str(CHURN_DIR), "--set", f"storage.root={root}",
            "--set", "spark.shuffle_partitions=2", "--run-date", day]  # fmt: skip


def start_ingest(root: Path, day: str, fault: str | None, log: Path) -> subprocess.Popen[str]:
    """`python -m scoring ingest` in its own process, its output into `log`."""
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    if fault:
        env[FAULT_ENV] = fault
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "scoring", *ingest_args(root, day)],
            stdout=out, stderr=subprocess.STDOUT, env=env, text=True,
        )  # fmt: skip


def finished(process: subprocess.Popen[str], log: Path) -> tuple[int, str]:
    process.wait(timeout=JOB_TIMEOUT_S)
    return process.returncode, log.read_text()


def content(frame: DataFrame) -> list[tuple[object, ...]]:
    """The rows without their run stamps, sorted (a small table: the test's own data)."""
    kept = [c for c in frame.columns if c not in STAMPS]
    return sorted(tuple(r) for r in frame.select(*kept).collect())


def wait_for_running(spark: SparkSession, ref, step: str) -> str:
    """The run id of the `running` row of `step` once it is there."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        if io.table_exists(spark, ref):
            row = (
                io.read_table(spark, ref)
                .where((F.col("step") == step) & (F.col("status") == "running"))
                .first()
            )
            if row is not None:
                return str(row["run_id"])
        time.sleep(2)
    raise AssertionError(f"no running {step} row in {ref} after {JOB_TIMEOUT_S} s")


@pytest.fixture(scope="module")
def lakes(tmp_path_factory):
    reference = lake(tmp_path_factory.mktemp("reference") / "lake")
    for day in DAYS:
        assert run(ingest_args(reference, day)) == 0
    return reference, lake(tmp_path_factory.mktemp("faulty") / "lake")


def test_a_killed_ingest_is_invisible_to_readers_marked_killed_and_a_race_has_one_winner(
    spark, lakes, tmp_path
):
    reference, faulty = lakes
    tables = usecase_tables(make_config(faulty), CHURN)
    runs = tables["runs"]
    first_bronze = tables.bronze(FIRST_SOURCE)
    assert run(ingest_args(faulty, DAYS[0])) == 0
    day1 = succeeded_versions(spark, runs, CHURN.name, "ingest")
    assert day1 is not None

    # Day 2: SIGKILL right after the first bronze MERGE committed.
    killed = start_ingest(faulty, DAYS[1], f"ingest.merged.{FIRST_SOURCE}:kill", tmp_path / "k")
    code, out = finished(killed, tmp_path / "k")
    assert code == -signal.SIGKILL, out
    left = io.read_table(spark, runs).where("status = 'running'").collect()
    assert [(r["step"], r["driver"].rsplit(":", 1)[1]) for r in left] == [
        ("ingest", str(killed.pid))
    ]
    assert (io.current_version(spark, first_bronze) or 0) > day1[bronze_name(FIRST_SOURCE)]
    # Readers (features, train) pin what the day-1 ingest left, not the half-run.
    pinned = bronze_versions(spark, tables, CHURN.name, DAILY)
    assert pinned == {s: day1[bronze_name(s)] for s in DAILY}

    assert run(ingest_args(faulty, DAYS[1])) == 0
    marked = io.read_table(spark, runs).where(F.col("run_id") == left[0]["run_id"]).first()
    assert marked is not None and marked["status"] == "killed"
    assert re.fullmatch(
        rf"killed: its process \S+:{killed.pid} is gone; marked by run \S+", marked["error"]
    )

    # Day 3: a run holds its claim (held at the fault point until the test lets it go on);
    # a second run of the step fails at once, with one line naming the holder.
    go_on = tmp_path / "go-on"
    holder = start_ingest(faulty, DAYS[2], f"run.claimed.ingest:wait={go_on}", tmp_path / "a")
    holder_id = wait_for_running(spark, runs, "ingest")
    code, out = finished(start_ingest(faulty, DAYS[2], None, tmp_path / "b"), tmp_path / "b")
    go_on.touch()
    assert code == 1, out
    errors = [line for line in out.splitlines() if line.startswith("scoring ingest: ")]
    assert len(errors) == 1, out
    assert errors[0].startswith(
        "scoring ingest: ConflictError: ingest of use case churn is already running: "
        f"run {holder_id} on "
    )
    assert "Traceback" not in out, out
    code, out = finished(holder, tmp_path / "a")
    assert code == 0, out

    # Both lakes hold the same records, once each; runs tells what happened.
    theirs = usecase_tables(make_config(reference), CHURN)
    for source in DAILY:
        assert content(io.read_table(spark, tables.bronze(source))) == content(
            io.read_table(spark, theirs.bronze(source))
        ), source
    assert content(io.read_table(spark, tables["quarantine"])) == content(
        io.read_table(spark, theirs["quarantine"])
    )
    statuses = sorted(
        (r["run_date"].isoformat(), r["status"])
        for r in io.read_table(spark, runs).where("step = 'ingest'").collect()
    )
    assert statuses == [
        (DAYS[0], "succeeded"),
        (DAYS[1], "killed"),
        (DAYS[1], "succeeded"),
        (DAYS[2], "failed"),
        (DAYS[2], "succeeded"),
    ]


def test_a_score_killed_between_scores_and_scores_current_reruns_to_one_copy(
    spark, trained, tmp_path
):
    from tests.model_fixtures import RUN_DATE

    # The trained features and registry, nothing else other tests may have written there
    # (the model's artifacts stay where the registry says).
    root = tmp_path / "lake"
    source = usecase_tables(trained, CHURN)["features"].path
    tables = usecase_tables(make_config(root), CHURN)
    shutil.copytree(str(source), str(tables["features"].path))
    shutil.copy(Path(trained.storage.root) / "mlflow.db", root / "mlflow.db")
    args = ["score", "--usecase", str(CHURN_DIR), "--set", f"storage.root={root}",
            "--set", "spark.shuffle_partitions=2", "--run-date", RUN_DATE.isoformat()]  # fmt: skip
    env = {**os.environ, FAULT_ENV: "score.written:kill"}
    killed = subprocess.run(
        [sys.executable, "-m", "scoring", *args],
        env=env, capture_output=True, text=True, timeout=JOB_TIMEOUT_S,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    day = F.col("as_of_date") == F.lit(RUN_DATE)
    entities = io.read_table(spark, tables["features"]).where(day).count()
    assert io.read_table(spark, tables["scores"]).where(day).count() == entities
    assert not io.table_exists(spark, tables["scores_current"])  # killed before the MERGE
    assert run(args) == 0
    scores = io.read_table(spark, tables["scores"]).where(day)
    current = io.read_table(spark, tables["scores_current"])
    assert scores.count() == scores.select(*CHURN.entity).distinct().count() == entities
    assert current.count() == current.select(*CHURN.entity).distinct().count() == entities
    ended = {r["status"] for r in io.read_table(spark, tables["runs"]).collect()}
    assert ended == {"killed", "succeeded"}
