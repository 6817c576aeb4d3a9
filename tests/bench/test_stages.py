"""`bench.stages` splits each timed bench run's wall time by Spark stage, from the event log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import run as bench_run
from bench.stages import event_log_conf, main, read_applications
from scoring.core.session import JOB_DESCRIPTION, JOB_GROUP

A, B = "a rep 0 | float first 16000000 rows few-large tree", "b rep 0 | float first 16 rows"


def _job(job: int, at: int, stages: list[int], group: str | None) -> dict:
    properties = {"spark.app.id": "app-1", **({JOB_GROUP: group} if group else {})}
    return {
        "Event": "SparkListenerJobStart",
        "Job ID": job,
        "Submission Time": at,
        "Stage IDs": stages,
        "Properties": properties,
    }


def _job_end(job: int, at: int) -> dict:
    return {"Event": "SparkListenerJobEnd", "Job ID": job, "Completion Time": at}


def _stage(stage: int, name: str, submitted: int | None, completed: int | None) -> dict:
    info: dict = {"Stage ID": stage, "Stage Attempt ID": 0, "Stage Name": name}
    if submitted is not None and completed is not None:
        info |= {"Submission Time": submitted, "Completion Time": completed}
    return {"Event": "SparkListenerStageCompleted", "Stage Info": info}


def _task(stage: int, launched: int, finished: int, rows: int, cpu_s: float, gc_ms: int) -> dict:
    return {
        "Event": "SparkListenerTaskEnd",
        "Stage ID": stage,
        "Stage Attempt ID": 0,
        "Task Info": {"Launch Time": launched, "Finish Time": finished},
        "Task Metrics": {
            "Executor CPU Time": int(cpu_s * 1e9),
            "JVM GC Time": gc_ms,
            "Input Metrics": {"Records Read": rows},
            "Output Metrics": {"Records Written": rows},
        },
    }


# Run A: job 0 (stages 1 and 5, overlapping from 4.5 to 5.0 s) and job 1 (stage 2; stage 4
# skipped); an untimed job 2 (stage 3) between; run B: job 3 (stage 6). Times in ms.
FIRST: list[dict] = [
    {"Event": "SparkListenerApplicationStart", "App ID": "app-1", "Timestamp": 0},
    {"Event": "SparkListenerExecutorAdded", "Executor Info": {"Total Cores": 2}},
    _job(0, 900, [1, 5], A),
    _task(1, 1000, 4000, 100, 2.0, 100),
    _task(1, 1000, 3000, 50, 1.0, 0),
    _task(1, 3000, 4000, 30, 1.5, 200),
    _stage(1, "save at NativeMethodAccessorImpl.java:0", 1000, 5000),
    _task(5, 4500, 5300, 10, 0.5, 0),
    _stage(5, "head at io.py:470", 4500, 5300),
    _job_end(0, 5300),
]
SECOND: list[dict] = [
    _job(2, 5310, [3], None),
    _task(3, 5310, 5390, 7, 0.1, 0),
    _stage(3, "untimed", 5310, 5390),
    _job_end(2, 5390),
    _job(1, 5400, [2, 4], A),
    _stage(4, "skipped", None, None),
    _task(2, 5500, 5900, 5, 0.2, 0),
    _stage(2, "$anonfun$recordDeltaOperationInternal$1 at Da", 5500, 6000),
    _job_end(1, 6100),
    _job(3, 7000, [6], B),
    _task(6, 7000, 9000, 16, 1.0, 0),
    _stage(6, "save at NativeMethodAccessorImpl.java:0", 7000, 9000),
    _job_end(3, 9000),
]


def _lines(events: list[dict]) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """An --event-log folder holding one rolling log (two parts, a status marker, a checksum)."""
    app = tmp_path / "eventlog_v2_app-1"
    app.mkdir()
    (app / "events_2_app-1").write_text(_lines(SECOND))
    (app / "events_1_app-1").write_text(_lines(FIRST))
    (app / "appstatus_app-1").write_text("")
    (app / ".events_1_app-1.crc").write_bytes(b"\x00\xff")
    return tmp_path


def test_each_labelled_run_gets_its_own_stages_and_untimed_jobs_are_left_out(logs: Path):
    (app,) = read_applications(logs)
    assert (app.app_id, app.cores) == ("app-1", 2)
    assert [r.group for r in app.runs] == [A, B]
    first = app.runs[0]
    assert [s.stage_id for s in first.stages] == [1, 2, 5]  # not 3 (untimed), not 4 (skipped)
    assert first.span == pytest.approx(5.2)  # 0.9 s to 6.1 s
    assert first.in_stages == pytest.approx(4.8)  # 1.0-5.3 and 5.5-6.0, the overlap once
    save = first.stages[0]
    assert save.seconds == pytest.approx(4.0)
    assert save.task_seconds == pytest.approx(6.0)  # 3 + 2 + 1
    assert save.busy(app.cores) == pytest.approx(0.75)  # 6 task-s over 4 s on 2 cores
    assert app.runs[1].span == pytest.approx(2.0)


def test_the_report_lists_long_stages_and_sums_the_short_ones(logs: Path, capsys):
    assert main([str(logs), "--min-seconds", "1"]) == 0
    out = capsys.readouterr().out
    assert "## app-1 (2 cores)" in out
    assert f"### {A}: 5.2 s from its first job to its last; 4.8 s in stages, 0.4 s between" in out
    assert "| 1 | save | 4.0 | 3 | 1.0 / 3.0 | 6.0 | 75% | 180 | 180 | 4.5 | 0.3 |" in out
    assert "| 2 more | each under 1 s | 1.3 (summed) |" in out  # stages 2 (0.5 s) and 5 (0.8 s)
    assert main([str(logs), "--run", "b rep"]) == 0
    only = capsys.readouterr().out
    assert B in only and A not in only


def test_single_file_logs_in_one_folder_are_separate_applications(tmp_path: Path):
    second = [{**e, "App ID": "app-2"} if "App ID" in e else e for e in FIRST]
    (tmp_path / "app-1").write_text(_lines(FIRST + SECOND))
    (tmp_path / "app-2").write_text(_lines(second))
    apps = read_applications(tmp_path)
    assert [(a.app_id, [r.group for r in a.runs]) for a in apps] == [
        ("app-1", [A, B]),
        ("app-2", [A]),
    ]


def test_a_compressed_log_or_a_broken_line_is_named(tmp_path: Path, capsys):
    packed = tmp_path / "packed"
    packed.mkdir()
    (packed / "events_1_app-2.zstd").write_bytes(b"\x28\xb5\x2f\xfd")
    assert main([str(packed)]) == 2
    assert "events_1_app-2.zstd: a compressed event log" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text(_lines(FIRST[:2]) + "{not json\n")
    with pytest.raises(ValueError, match=r"broken.json:3: not a JSON event"):
        read_applications(broken)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="empty: no Spark event log found"):
        read_applications(empty)


def test_the_event_log_settings_write_an_uncompressed_log_into_a_new_folder(tmp_path: Path):
    folder = tmp_path / "logs" / "run"
    conf = event_log_conf(folder)
    assert folder.is_dir()
    assert conf == {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": folder.resolve().as_uri(),
        "spark.eventLog.compress": "false",
    }


def test_a_timed_run_labels_its_jobs_and_clears_the_label_after(spark, tmp_path, monkeypatch):
    seen = []

    def variant(session, job, run_id):
        seen.append(session.sparkContext.getLocalProperty(JOB_GROUP))
        assert session.range(3).count() == 3

    monkeypatch.setitem(bench_run.SPARK_VARIANTS, "a", variant)
    bench_run._timed(spark, None, "a", tmp_path, tmp_path, tmp_path, A)  # type: ignore[arg-type]
    assert seen == [A]
    context = spark.sparkContext
    assert context.getLocalProperty(JOB_GROUP) is None
    assert context.getLocalProperty(JOB_DESCRIPTION) is None
