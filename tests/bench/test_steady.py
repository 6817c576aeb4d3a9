"""The steady-state scenario's dates and table copies (no Spark: files only)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from bench.steady import clone_table, history_dates


def test_the_history_is_the_days_just_before_the_run_date_oldest_first():
    assert history_dates(date(2026, 3, 1), 3) == [
        date(2026, 2, 26),
        date(2026, 2, 27),
        date(2026, 2, 28),
    ]


def table(root: Path) -> Path:
    (root / "_delta_log").mkdir(parents=True)
    (root / "_delta_log" / "00000000000000000000.json").write_text('{"commitInfo":{}}\n')
    (root / "as_of_date=2026-02-28").mkdir()
    (root / "as_of_date=2026-02-28" / "part-0.parquet").write_bytes(b"PAR1 data")
    return root


def test_a_clone_links_the_data_files_and_copies_the_log(tmp_path: Path):
    source = table(tmp_path / "prepared")
    clone_table(source, tmp_path / "run")
    data = "as_of_date=2026-02-28/part-0.parquet"
    log = "_delta_log/00000000000000000000.json"
    assert (tmp_path / "run" / data).stat().st_ino == (source / data).stat().st_ino
    assert (tmp_path / "run" / log).stat().st_ino != (source / log).stat().st_ino
    assert (tmp_path / "run" / log).read_text() == (source / log).read_text()


def test_a_run_on_the_clone_leaves_the_prepared_table_as_it_was(tmp_path: Path):
    source = table(tmp_path / "prepared")
    clone_table(source, tmp_path / "run")
    with (tmp_path / "run" / "_delta_log" / "00000000000000000000.json").open("a") as log:
        log.write('{"add":{}}\n')
    (tmp_path / "run" / "_delta_log" / "00000000000000000001.json").write_text("{}\n")
    assert (source / "_delta_log" / "00000000000000000000.json").read_text() == (
        '{"commitInfo":{}}\n'
    )
    assert not (source / "_delta_log" / "00000000000000000001.json").exists()
