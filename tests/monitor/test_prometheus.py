from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest

from scoring.monitor.prometheus import (
    DriftCounts,
    StepStats,
    publish,
    registry_of,
    write_prometheus,
)
from scoring.runs.history import append_run, run_row
from scoring.runs.result import StepResult
from tests.conftest import churn_tables
from tests.helpers import labels, samples

SCORE = StepStats(
    step="score",
    last_success_timestamp=1772409600.0,
    last_run_succeeded=True,
    duration_seconds=12.5,
    rows={"in": 100, "out": 100, "quarantined": None, "deduplicated": None},
)
DRIFT = DriftCounts("churn", "baseline", alerts=2, warnings=1, dataset_drift=True)


def test_every_gauge_carries_the_use_case_and_step_labels(tmp_path):
    text = publish(registry_of("churn", [SCORE], [DRIFT]), "churn", str(tmp_path / "c.prom"), None)
    step = labels(usecase="churn", step="score")
    drift = labels(usecase="churn", step="monitor", model="churn", comparison="baseline")
    assert samples(text) == {
        ("scoring_step_last_success_timestamp_seconds", step): 1772409600.0,
        ("scoring_step_last_run_success", step): 1.0,
        ("scoring_step_duration_seconds", step): 12.5,
        ("scoring_step_rows", labels(usecase="churn", step="score", kind="in")): 100.0,
        ("scoring_step_rows", labels(usecase="churn", step="score", kind="out")): 100.0,
        ("scoring_drift_alerts", drift): 2.0,
        ("scoring_drift_warnings", drift): 1.0,
        ("scoring_dataset_drift", drift): 1.0,
    }
    assert text.count("# TYPE scoring_step_rows gauge") == 1


def test_a_step_that_never_succeeded_has_no_last_success_sample(tmp_path):
    failed = StepStats("ingest", None, False, 3.0, {"in": None})
    text = publish(registry_of("churn", [failed], []), "churn", str(tmp_path / "c.prom"), None)
    names = {name for name, _ in samples(text)}
    assert "scoring_step_last_success_timestamp_seconds" not in names
    assert (
        samples(text)[("scoring_step_last_run_success", labels(usecase="churn", step="ingest"))]
        == 0
    )


def test_the_file_is_replaced_whole_readable_by_others_and_no_temporary_file_is_left(tmp_path):
    target = tmp_path / "metrics" / "churn.prom"
    publish(registry_of("churn", [SCORE], []), "churn", str(target), None)
    publish(registry_of("churn", [], [DRIFT]), "churn", str(target), None)
    assert "scoring_drift_alerts" in target.read_text() and "score" not in target.read_text()
    assert [p.name for p in target.parent.iterdir()] == ["churn.prom"]
    assert target.stat().st_mode & 0o777 == 0o644


class _Gateway(BaseHTTPRequestHandler):
    """A Pushgateway stand-in on loopback: it keeps every request it gets."""

    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(("PUT", self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def gateway():
    server = HTTPServer(("127.0.0.1", 0), _Gateway)
    _Gateway.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", _Gateway.received
    finally:
        server.shutdown()
        server.server_close()


def test_metrics_are_pushed_to_the_pushgateway_grouped_by_job_and_use_case(tmp_path, gateway):
    url, received = gateway
    text = publish(registry_of("claims", [SCORE], []), "claims", str(tmp_path / "c.prom"), url)
    ((method, path, body),) = received
    assert (method, path) == ("PUT", "/metrics/job/scoring/usecase/claims")
    assert samples(body.decode()) == samples(text)


def test_an_unreachable_pushgateway_is_logged_and_the_file_still_written(tmp_path, caplog):
    target = tmp_path / "c.prom"
    publish(registry_of("churn", [SCORE], []), "churn", str(target), "http://127.0.0.1:9")
    assert target.is_file()
    assert "could not push the metrics of churn to http://127.0.0.1:9" in caplog.text


@pytest.mark.slow
def test_the_textfile_is_rebuilt_from_the_runs_table(spark, config, tmp_path):
    tables = churn_tables(config)
    ref = tables["runs"]
    start = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    end = datetime(2026, 3, 2, 1, 0, 30, tzinfo=UTC)
    result = StepResult("score", "score-1", date(2026, 3, 2), rows_in=5, rows_out=5)
    append_run(
        spark,
        ref,
        run_row("churn", "score", date(2026, 3, 2), "score-1", "p", start, end, result, None),
    )
    drift = tables["drift_metrics"]
    text = write_prometheus(spark, "churn", ref, drift, str(tmp_path / "s.prom"))
    step = labels(usecase="churn", step="score")
    got = samples(text)
    assert got[("scoring_step_last_success_timestamp_seconds", step)] == 1772413230.0
    assert got[("scoring_step_duration_seconds", step)] == 30.0
    assert got[("scoring_step_rows", labels(usecase="churn", step="score", kind="out"))] == 5.0
    assert samples((tmp_path / "s.prom").read_text()) == got


@pytest.mark.slow
def test_a_runs_table_shared_by_two_use_cases_feeds_each_file_only_its_own_rows(
    spark, config, tmp_path
):
    ref = churn_tables(config)["runs"]
    start = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    for usecase, step in (("churn", "score"), ("claims", "ingest")):
        result = StepResult(step, f"{step}-1", date(2026, 3, 2), rows_in=1)
        row = run_row(
            usecase, step, date(2026, 3, 2), f"{step}-1", None, start, start, result, None
        )
        append_run(spark, ref, row)
    drift = churn_tables(config)["drift_metrics"]
    text = write_prometheus(spark, "claims", ref, drift, str(tmp_path / "claims.prom"))
    assert 'step="ingest"' in text and 'step="score"' not in text


@pytest.mark.slow
def test_killed_and_running_runs_are_counted_and_a_killed_last_run_is_not_a_success(
    spark, config, tmp_path
):
    tables = churn_tables(config)
    ref = tables["runs"]
    day = date(2026, 3, 2)
    start = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    killed_at = datetime(2026, 3, 2, 2, 0, 45, tzinfo=UTC)
    later = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    result = StepResult("score", "score-1", day, rows_in=5, rows_out=5)
    for row in (
        run_row("churn", "score", day, "score-1", None, start, start, result, None),
        run_row(
            "churn",
            "score",
            day,
            "score-2",
            None,
            killed_at.replace(second=0),
            killed_at,
            None,
            "killed: gone",
            status="killed",
        ),
        run_row(
            "churn",
            "score",
            day,
            "score-3",
            None,
            later,
            None,
            None,
            None,
            status="running",
            heartbeat=later,
        ),
    ):
        append_run(spark, ref, row)
    text = write_prometheus(spark, "churn", ref, tables["drift_metrics"], str(tmp_path / "k.prom"))
    got = samples(text)
    runs = {
        status: got[("scoring_step_runs", labels(usecase="churn", step="score", status=status))]
        for status in ("succeeded", "killed", "running")
    }
    assert runs == {"succeeded": 1.0, "killed": 1.0, "running": 1.0}
    step = labels(usecase="churn", step="score")
    assert got[("scoring_step_last_run_success", step)] == 0.0
    assert got[("scoring_step_duration_seconds", step)] == 45.0
    assert got[("scoring_step_last_success_timestamp_seconds", step)] == 1772413200.0
