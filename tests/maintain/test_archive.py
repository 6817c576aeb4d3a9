"""Raw archival on its own: `delete` mode, folders that are not drops, a date already archived."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from scoring.core.tables import TableRef
from scoring.maintain.archive import archive_drops
from scoring.runs.history import append_run, run_row

pytestmark = pytest.mark.slow
TODAY = date(2026, 3, 10)
OLD, OLDER = date(2026, 1, 5), date(2026, 1, 4)


def drop(raw: Path, source: str, name: str) -> Path:
    folder = raw / source / name
    folder.mkdir(parents=True)
    (folder / "part.csv").write_text("a,b\n1,2\n")
    return folder


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory) -> TableRef:
    """A runs table where the ingests of OLD and OLDER succeeded (and another use case's too)."""
    ref = TableRef("runs", path=str(tmp_path_factory.mktemp("archive") / "runs"))
    at = datetime(2026, 3, 1, tzinfo=UTC)
    for usecase, day in (("claims", OLD), ("claims", OLDER), ("other", date(2026, 1, 3))):
        append_run(
            spark, ref, run_row(usecase, "ingest", day, f"i-{day}", None, at, at, None, None)
        )
    return ref


def test_delete_mode_deletes_processed_drops_and_nothing_else(spark, runs, tmp_path):
    raw = tmp_path / "raw"
    gone = [drop(raw, "policies", str(OLD)), drop(raw, "claims", str(OLDER))]
    other_usecase = drop(raw, "policies", "2026-01-03")  # ingested by another use case only
    not_a_date = drop(raw, "policies", "2026-01-05-old")
    not_a_source = drop(raw, "stray", str(OLD))
    dry = archive_drops(
        spark, str(raw), ["policies", "claims"], runs, "claims", "delete", 30, TODAY, True
    )
    assert sorted(Path(f).name for f in dry.done) == [str(OLDER), str(OLD)]
    assert all(folder.is_dir() for folder in gone)  # a dry run deletes nothing
    done = archive_drops(
        spark, str(raw), ["policies", "claims"], runs, "claims", "delete", 30, TODAY, False
    )
    assert sorted(Path(f).name for f in done.done) == [str(OLDER), str(OLD)]
    assert not any(folder.exists() for folder in gone)
    assert other_usecase.is_dir() and not_a_date.is_dir() and not_a_source.is_dir()
    assert [Path(f).name for f in done.kept_not_ingested] == ["2026-01-03"]
    assert not (raw / "_archive").exists()


def test_a_date_already_archived_is_left_in_place(spark, runs, tmp_path):
    raw = tmp_path / "raw"
    kept = drop(raw, "policies", str(OLD))
    earlier = drop(raw / "_archive", "policies", str(OLD))
    done = archive_drops(spark, str(raw), ["policies"], runs, "claims", "move", 30, TODAY, False)
    assert (done.done, [Path(f).name for f in done.skipped]) == ((), [str(OLD)])
    assert (kept / "part.csv").is_file() and (earlier / "part.csv").is_file()
    assert sorted(p.name for p in earlier.iterdir()) == ["part.csv"]


def test_keep_mode_touches_nothing(spark, runs, tmp_path):
    raw = tmp_path / "raw"
    folder = drop(raw, "policies", str(OLD))
    done = archive_drops(spark, str(raw), ["policies"], runs, "claims", "keep", 30, TODAY, False)
    assert done.done == () and folder.is_dir()
