"""`scoring maintain` on a small lakehouse of the churn demo: retention properties, OPTIMIZE,
VACUUM within the retention (refused below the floor), dry run, raw archival, and ingest
after archival.

One module-scoped lakehouse goes through a refused request, a dry run and a real run; each
test checks one behaviour of that history (Delta writes are the slow part on 2 cores).
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import types as T

from scoring.core import io
from scoring.core.errors import ConfigError
from scoring.core.tables import TableRef
from scoring.maintain.step import MaintainRequest
from scoring.maintain.tables import TablePlan, maintain_table
from scoring.runs import steps
from scoring.runs.history import append_run, run_row
from scoring.usecase import load_usecase
from tests.conftest import CHURN_DIR, churn_tables, make_config
from tests.ingest.drops import CUSTOMERS_DAY1, TRANSACTIONS_DAY1, write_drop

pytestmark = pytest.mark.slow
CHURN = load_usecase(CHURN_DIR)
TODAY = date(2026, 3, 10)
OLD_OK, OLD_FAILED, RECENT_OK = date(2026, 1, 5), date(2026, 1, 6), date(2026, 3, 1)
SCHEMA = T.StructType([T.StructField("key", T.StringType()), T.StructField("n", T.LongType())])
ROWS = [[("a", 0)], [("b", 1)], [("c", 2)], [("d", 3)], [("e", 4)]]
RETENTION = {
    "delta.logRetentionDuration": "interval 40 days",
    "delta.deletedFileRetentionDuration": "interval 35 days",
}


def small_commits(spark, ref: TableRef) -> None:
    """One data file per commit: versions 0..4, each adding one row of ROWS."""
    for i, rows in enumerate(ROWS):
        frame = spark.createDataFrame(rows, SCHEMA).coalesce(1)
        io.write_delta(frame, ref, "overwrite" if i == 0 else "append", {"run_id": f"w{i}"})


def stray_file(folder: str) -> Path:
    """A data file no commit references, last written 60 days ago: VACUUM's to delete."""
    path = Path(folder) / "part-00000-stray.snappy.parquet"
    path.write_bytes(b"PAR1")
    old = time.time() - 60 * 86400
    os.utime(path, (old, old))
    return path


def detail(spark, ref: TableRef) -> Any:
    """The table's `DESCRIBE DETAIL` row (numFiles, properties, ...)."""
    row = io.delta_table(spark, ref).detail().first()
    assert row is not None
    return row


def ingest_row(day: date, status: str):
    started = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    error = "DataError: boom" if status == "failed" else None
    return run_row("churn", "ingest", day, f"ingest-{day}", None, started, started, None, error)


def versions(spark, tables) -> dict[str, int | None]:
    return {name: io.current_version(spark, tables[name]) for name in tables}


def raw_state(raw: Path) -> list[str]:
    return sorted(str(p.relative_to(raw)) for p in raw.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory) -> dict[str, Any]:
    config = make_config(
        tmp_path_factory.mktemp("maintain") / "lakehouse",
        "storage.retention.default={log_days: 40, deleted_file_days: 35}",
        "storage.retention.tables.runs={log_days: 90, deleted_file_days: 60}",
        "ingest.raw_archive=move",
        "ingest.raw_archive_after_days=30",
        "ingest.max_quarantine_share=1.0",
    )
    tables = churn_tables(config)
    raw = Path(config.raw_root("churn"))
    for day in (OLD_OK, OLD_FAILED, RECENT_OK):
        write_drop(raw, day.isoformat(), CUSTOMERS_DAY1, TRANSACTIONS_DAY1)
    for day, status in ((OLD_OK, "succeeded"), (OLD_FAILED, "failed"), (RECENT_OK, "succeeded")):
        append_run(spark, tables["runs"], ingest_row(day, status))
    ref = tables["scores_current"]
    small_commits(spark, ref)
    stray = stray_file(str(ref.path))
    run = steps.StepRun(spark, config, CHURN, TODAY)
    out: dict[str, Any] = {"config": config, "tables": tables, "raw": raw, "stray": stray}
    out["before"] = (versions(spark, tables), raw_state(raw), stray.exists())
    with pytest.raises(ConfigError) as refused:
        steps.maintain(run, MaintainRequest(retain_hours=24.0))
    out["refused"] = str(refused.value)
    out["after_refused"] = (versions(spark, tables), raw_state(raw), stray.exists())
    out["dry"] = steps.maintain(run, MaintainRequest(dry_run=True), "maintain-dry")
    out["after_dry"] = (versions(spark, tables), raw_state(raw), stray.exists())
    out["real"] = steps.maintain(run, MaintainRequest(), "maintain-1")
    out["after_real"] = (versions(spark, tables), raw_state(raw), stray.exists())
    return out


def test_vacuum_below_the_floor_is_refused_in_one_line_and_nothing_changes(lake):
    message = lake["refused"]
    assert "--retain-hours 24 is below the time-travel floor of 720 h" in message
    assert "storage.retention.min_time_travel_days = 30" in message
    assert "\n" not in message
    assert lake["after_refused"] == lake["before"]


def test_retain_hours_below_a_tables_own_retention_is_refused(spark, lake):
    run = steps.StepRun(spark, lake["config"], CHURN, TODAY)
    runs_version = io.current_version(spark, lake["tables"]["runs"])
    with pytest.raises(ConfigError, match=r"below table runs's deleted-file retention of 1440 h"):
        steps.maintain(run, MaintainRequest(retain_hours=1000.0))
    assert io.current_version(spark, lake["tables"]["runs"]) == runs_version


def test_a_dry_run_changes_nothing_and_reports_what_vacuum_would_delete(lake):
    assert lake["after_dry"] == lake["before"]
    outcomes = {o.table: o for o in lake["dry"].details["tables"]}
    current = outcomes["scores_current"]
    assert (current.files_before, current.files_vacuumed, current.files_compacted) == (5, 1, 0)
    assert current.retain_hours == 35 * 24
    archive = lake["dry"].details["archive"]
    assert [Path(f).parent.name + "/" + Path(f).name for f in archive.done] == [
        f"customers/{OLD_OK}",
        f"transactions/{OLD_OK}",
    ]


def test_optimize_compacts_a_table_written_in_many_small_commits(spark, lake):
    outcome = {o.table: o for o in lake["real"].details["tables"]}["scores_current"]
    assert (outcome.files_before, outcome.files_compacted, outcome.files_added) == (5, 5, 1)
    ref = lake["tables"]["scores_current"]
    assert detail(spark, ref)["numFiles"] == 1
    assert sorted(tuple(r) for r in io.read_table(spark, ref).collect()) == [
        rows[0] for rows in ROWS
    ]


def test_vacuum_deletes_only_unreferenced_files_older_than_the_retention(lake):
    outcome = {o.table: o for o in lake["real"].details["tables"]}["scores_current"]
    assert outcome.files_vacuumed == 1
    assert lake["after_real"][2] is False  # the stray file is gone


def test_time_travel_inside_the_window_still_works_after_maintain(spark, lake):
    ref = lake["tables"]["scores_current"]
    for version in range(len(ROWS)):
        rows = sorted(tuple(r) for r in io.read_table(spark, ref, version).collect())
        assert rows == [r[0] for r in ROWS[: version + 1]]


def test_retention_properties_are_set_on_tables_that_existed_without_them(spark, lake):
    tables = lake["tables"]
    current = detail(spark, tables["scores_current"])["properties"]
    assert {k: current[k] for k in RETENTION} == RETENTION
    runs = detail(spark, tables["runs"])["properties"]
    assert runs["delta.deletedFileRetentionDuration"] == "interval 60 days"
    assert runs["delta.logRetentionDuration"] == "interval 90 days"


def test_maintain_is_recorded_in_runs_with_its_own_commit_versions(spark, lake):
    tables = lake["tables"]
    row = (
        io.read_table(spark, tables["runs"])
        .where("run_id = 'maintain-1'")
        .select("step", "status", "table_versions")
        .collect()
    )
    assert [(r["step"], r["status"]) for r in row] == [("maintain", "succeeded")]
    recorded = dict(row[0]["table_versions"])
    # scores_current: v0..v4 writes, v5 properties, v6 OPTIMIZE, v7 VACUUM START, v8 END.
    assert recorded["scores_current"] == 8
    history = io.delta_table(spark, tables["scores_current"]).history()
    ops = {r["version"]: r["operation"] for r in history.collect()}
    assert [ops[v] for v in range(5, 9)] == [
        "SET TBLPROPERTIES",
        "OPTIMIZE",
        "VACUUM START",
        "VACUUM END",
    ]
    assert "maintain-dry" not in {
        r["run_id"] for r in io.read_table(spark, tables["runs"]).select("run_id").collect()
    }


def test_archival_moves_only_old_drops_whose_ingest_succeeded(lake):
    raw = lake["raw"]
    files = lake["after_real"][1]
    for source, name in (
        ("customers", "customers_001.csv"),
        ("transactions", "transactions_001.jsonl"),
    ):
        assert f"_archive/{source}/{OLD_OK}/{name}" in files
        assert f"{source}/{OLD_OK}/{name}" not in files
        assert f"{source}/{OLD_FAILED}/{name}" in files  # its ingest failed
        assert f"{source}/{RECENT_OK}/{name}" in files  # younger than 30 days
    assert len(files) == len(lake["before"][1])
    archive = lake["real"].details["archive"]
    assert sorted(Path(f).name for f in archive.kept_not_ingested) == [str(OLD_FAILED)] * 2
    assert (raw / "_archive" / "customers" / str(OLD_OK)).is_dir()


def test_ingest_still_works_next_to_the_archive(spark, lake):
    run = steps.StepRun(spark, lake["config"], CHURN, RECENT_OK)
    result = steps.ingest(run, "ingest-after-archive")
    # CUSTOMERS_DAY1 + TRANSACTIONS_DAY1: 3 + 3 accepted (see tests/ingest/drops.py).
    assert result.rows_out == 6


def test_a_catalog_table_is_maintained_by_name(spark):
    schema = f"t_{uuid.uuid4().hex[:12]}"
    spark.sql(f"CREATE SCHEMA {schema}")
    try:
        ref = TableRef(
            "scores", catalog_name=f"{schema}.scores", properties=tuple(RETENTION.items())
        )
        small_commits(spark, ref)
        outcome = maintain_table(spark, TablePlan(ref, 35 * 24.0), "maintain-cat", dry_run=False)
        assert outcome is not None
        assert (outcome.files_before, outcome.files_compacted, outcome.files_added) == (5, 5, 1)
        properties = detail(spark, ref)["properties"]
        assert {k: properties[k] for k in RETENTION} == RETENTION
        assert io.read_table(spark, ref, 2).count() == 3
    finally:
        spark.sql(f"DROP SCHEMA {schema} CASCADE")


def test_the_cli_refuses_a_vacuum_below_the_floor_with_exit_2_and_one_line(spark, tmp_path, capsys):
    from scoring.cli import run

    root = tmp_path / "lakehouse"
    common = ["--usecase", str(CHURN_DIR), "--set", f"storage.root={root}"]
    code = run(["maintain", *common, "--retain-hours", "100"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.splitlines() == [err]
    assert err.startswith("scoring maintain: config error: --retain-hours 100 is below")
    assert not root.exists()  # nothing created, not even the runs table


def test_the_cli_names_an_unknown_table(spark, tmp_path, capsys):
    from scoring.cli import run

    common = ["--usecase", str(CHURN_DIR), "--set", f"storage.root={tmp_path}"]
    code = run(["maintain", *common, "--tables", "scores,nope", "--dry-run"])
    assert code == 2
    assert "--tables: 'nope' is not a table of use case 'churn'" in capsys.readouterr().err
