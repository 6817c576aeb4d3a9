from __future__ import annotations

import re
import socket
import subprocess
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pyspark.sql import Row
from pyspark.sql import functions as F

from scoring.core import io
from scoring.core.config import RunsSettings
from scoring.core.errors import ConflictError, DataError
from scoring.runs.history import (
    DEFAULT_SETTINGS,
    DRIVER,
    append_run,
    bronze_versions,
    record_step,
    run_row,
    succeeded_versions,
)
from scoring.runs.result import StepResult
from tests.conftest import churn_tables

DAY = date(2026, 3, 2)


@pytest.mark.slow
def test_every_step_of_a_pipeline_run_is_recorded_including_the_failed_one(spark, config):
    ref = churn_tables(config)["runs"]
    with record_step(spark, ref, "churn", "ingest", DAY, "ingest-1", "pipeline-1") as rec:
        rec.result = StepResult(
            "ingest",
            "ingest-1",
            DAY,
            rows_in=10,
            rows_out=7,
            rows_quarantined=2,
            rows_deduplicated=1,
            table_versions={"bronze_customers": 3},
        )
    with (
        pytest.raises(DataError, match="features: column x missing"),
        record_step(spark, ref, "churn", "features", DAY, "features-1", "pipeline-1"),
    ):
        raise DataError("features: column x missing")
    rows = {
        r["step"]: r
        for r in io.read_table(spark, ref).where(F.col("pipeline_run_id") == "pipeline-1").collect()
    }
    assert set(rows) == {"ingest", "features"}
    assert {r["usecase"] for r in rows.values()} == {"churn"}
    ingest, features = rows["ingest"], rows["features"]
    assert (ingest["status"], ingest["rows_in"], ingest["rows_out"]) == ("succeeded", 10, 7)
    assert (ingest["rows_quarantined"], ingest["rows_deduplicated"]) == (2, 1)
    assert ingest["table_versions"] == {"bronze_customers": 3}
    assert ingest["error"] is None
    assert features["status"] == "failed"
    assert features["error"] == "DataError: features: column x missing"
    assert features["rows_in"] is None
    assert features["ended_at"] >= features["started_at"]


def running_row(step: str, run_id: str, started: datetime, driver: str, day: date = DAY) -> Row:
    """A `running` row as a run on `driver` leaves it when it dies mid-step."""
    row = run_row("churn", step, day, run_id, None, started, None, None, None,
                  status="running", heartbeat=started)  # fmt: skip
    return Row(**{**row.asDict(), "driver": driver})


def dead_pid() -> int:
    """The pid of a process of this host that has ended."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def statuses(spark, ref) -> dict[str, tuple[str, Any]]:
    return {r["run_id"]: (r["status"], r["error"]) for r in io.read_table(spark, ref).collect()}


def one_run(spark, ref, run_id: str) -> Row:
    row = io.read_table(spark, ref).where(F.col("run_id") == run_id).first()
    assert row is not None, run_id
    return row


@pytest.mark.slow
def test_a_second_run_of_a_running_step_fails_naming_the_holder_and_is_recorded(spark, config):
    ref = churn_tables(config)["runs"]
    with record_step(spark, ref, "churn", "features", DAY, "features-1") as first:
        held = one_run(spark, ref, "features-1")
        assert (held["status"], held["ended_at"], held["driver"]) == ("running", None, DRIVER)
        with (
            pytest.raises(ConflictError) as raised,
            record_step(spark, ref, "churn", "features", DAY, "features-2"),
        ):
            pytest.fail("the second run must not start its step")
        first.result = StepResult("features", "features-1", DAY, rows_in=1, rows_out=1)
    assert str(raised.value).startswith(
        f"features {DAY} of use case churn is already running: run features-1 on {DRIVER}, started "
    )
    runs = statuses(spark, ref)
    assert runs["features-1"] == ("succeeded", None)
    assert runs["features-2"][0] == "failed"
    assert runs["features-2"][1].startswith("ConflictError: features 2026-03-02 of use case")


@pytest.mark.slow
def test_runs_of_other_dates_exclude_each_other_only_for_use_case_wide_steps(spark, config):
    ref = churn_tables(config)["runs"]
    other_day = date(2026, 3, 3)
    with (
        record_step(spark, ref, "churn", "features", DAY, "features-1"),
        record_step(spark, ref, "churn", "features", other_day, "features-2"),
    ):
        pass
    with (
        record_step(spark, ref, "churn", "ingest", DAY, "ingest-1"),
        pytest.raises(ConflictError, match=r"^ingest of use case churn is already running"),
        record_step(spark, ref, "churn", "ingest", other_day, "ingest-2"),
    ):
        pass
    runs = statuses(spark, ref)
    assert {k: v[0] for k, v in runs.items()} == {
        "features-1": "succeeded",
        "features-2": "succeeded",
        "ingest-1": "succeeded",
        "ingest-2": "failed",
    }


@pytest.mark.slow
def test_runs_whose_process_died_are_marked_killed_and_no_longer_hold_the_step(spark, config):
    ref = churn_tables(config)["runs"]
    now = datetime.now(UTC)
    here = f"{socket.gethostname()}:{dead_pid()}"
    append_run(spark, ref, running_row("ingest", "ingest-dead-here", now, here))
    stale = now - timedelta(seconds=DEFAULT_SETTINGS.stale_after_seconds + 60)
    append_run(spark, ref, running_row("score", "score-silent", stale, "elsewhere:42"))
    with record_step(spark, ref, "churn", "ingest", DAY, "ingest-2"):
        pass
    runs = statuses(spark, ref)
    assert runs["ingest-dead-here"] == (
        "killed",
        f"killed: its process {here} is gone; marked by run ingest-2",
    )
    assert runs["score-silent"][0] == "killed"
    assert re.fullmatch(
        r"killed: no heartbeat for 3\d\d s \(runs.stale_after_seconds = 300\); "
        r"marked by run ingest-2",
        runs["score-silent"][1],
    )
    assert runs["ingest-2"] == ("succeeded", None)
    killed = one_run(spark, ref, "score-silent")
    assert killed["ended_at"] == killed["heartbeat_at"]


@pytest.mark.slow
def test_a_run_on_another_host_with_a_recent_heartbeat_still_holds_the_step(spark, config):
    ref = churn_tables(config)["runs"]
    recent = datetime.now(UTC) - timedelta(seconds=60)
    append_run(spark, ref, running_row("score", "score-elsewhere", recent, "elsewhere:42"))
    with (
        pytest.raises(ConflictError, match="run score-elsewhere on elsewhere:42, started"),
        record_step(spark, ref, "churn", "score", DAY, "score-2"),
    ):
        pass
    assert statuses(spark, ref)["score-elsewhere"] == ("running", None)


@pytest.mark.slow
def test_the_heartbeat_is_renewed_while_the_step_runs(spark, config):
    ref = churn_tables(config)["runs"]
    settings = RunsSettings(heartbeat_seconds=0.5, stale_after_seconds=5)
    with record_step(spark, ref, "churn", "monitor", DAY, "monitor-1", settings=settings):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            row = one_run(spark, ref, "monitor-1")
            if row["heartbeat_at"] > row["started_at"]:
                break
            time.sleep(0.5)
        assert row["heartbeat_at"] > row["started_at"]
    assert statuses(spark, ref)["monitor-1"] == ("succeeded", None)


@pytest.mark.slow
def test_readers_pin_the_bronze_versions_of_the_newest_succeeded_ingest(spark, config):
    tables = churn_tables(config)
    ref = tables["runs"]
    for run_id, versions, error in [
        ("ingest-1", {"bronze_customers": 1, "bronze_transactions": 4}, None),
        ("ingest-2", {"bronze_customers": 2, "bronze_transactions": 6}, None),
        ("ingest-3", None, "DataError: half way"),
    ]:
        started = datetime(2026, 3, 2, int(run_id[-1]), tzinfo=UTC)
        result = StepResult("ingest", run_id, DAY, table_versions=versions) if versions else None
        append_run(spark, ref, run_row("churn", "ingest", DAY, run_id, None, started,
                                       started + timedelta(minutes=5), result, error))  # fmt: skip
    assert succeeded_versions(spark, ref, "churn", "ingest") == {
        "bronze_customers": 2,
        "bronze_transactions": 6,
    }
    assert bronze_versions(spark, tables, "churn", ["customers", "transactions"]) == {
        "customers": 2,
        "transactions": 6,
    }
    assert succeeded_versions(spark, ref, "churn", "features") is None
