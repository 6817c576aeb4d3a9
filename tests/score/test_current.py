"""`scoring.current_write`: how the serving slice feeds scores_current.

`overwrite` must leave exactly the rows `merge` leaves, in every case: the slice covers the
table (overwritten: one WRITE commit, the change feed delete + insert), an entity left the
features or a backfill of an older date (MERGEd), and another run committing between the
check and the overwrite (restored and MERGEd, nothing of the other run lost).
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pyspark.sql import types as T

from scoring.core import io
from scoring.core.tables import TableRef
from scoring.score import current
from scoring.score.current import (
    MERGE,
    OVERWRITE,
    covers,
    feed_current,
    same_entities_all_older,
)
from scoring.score.tables import ScoresLayout

pytestmark = pytest.mark.slow
LAYOUT = ScoresLayout((T.StructField("customer_id", T.StringType()),), "binary")
D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
T1, T2, T3 = datetime(2026, 3, 4, 8), datetime(2026, 3, 4, 9), datetime(2026, 3, 4, 10)


def rows(spark, day: date, at: datetime, run: str, scores: dict[str, float]):
    full = [(c, day, s, int(s > 0.5), "m", "1", None, 0, run, at) for c, s in scores.items()]
    return spark.createDataFrame(full, LAYOUT.schema)


def table(spark, tmp_path, name: str = "scores_current") -> TableRef:
    ref = TableRef(name, str(tmp_path / name))
    io.ensure_table(spark, ref, LAYOUT.table_spec(current=True))
    return ref


def feed(spark, ref, frame, run: str, mode: str) -> str:
    return feed_current(spark, frame, ref, LAYOUT.keys, {"run_id": run}, mode)


def content(spark, ref) -> list[tuple]:
    frame = io.read_table(spark, ref).select("customer_id", "as_of_date", "score", "run_id")
    return sorted(tuple(r) for r in frame.collect())


def day1_then(spark, tmp_path, mode: str, day2: dict[str, float], day=D2, at=T2):
    """A table fed with day 1 (a, b, c) by a MERGE, then `day2` in `mode`: how, and content."""
    ref = table(spark, tmp_path / mode)
    feed(spark, ref, rows(spark, D1, T1, "r1", {"a": 0.1, "b": 0.2, "c": 0.3}), "r1", MERGE)
    how = feed(spark, ref, rows(spark, day, at, "r2", day2), "r2", mode)
    return ref, how, content(spark, ref)


def test_a_slice_that_covers_the_table_overwrites_it_with_the_rows_a_merge_leaves(spark, tmp_path):
    day2 = {"a": 0.6, "b": 0.7, "c": 0.8, "d": 0.9}
    ref, how, overwritten = day1_then(spark, tmp_path, OVERWRITE, day2)
    _, merged_how, merged = day1_then(spark, tmp_path, MERGE, day2)
    assert (how, merged_how) == (OVERWRITE, MERGE)
    assert (
        overwritten
        == merged
        == [
            ("a", D2, 0.6, "r2"),
            ("b", D2, 0.7, "r2"),
            ("c", D2, 0.8, "r2"),
            ("d", D2, 0.9, "r2"),
        ]
    )
    last = io.last_commit(spark, ref)
    assert last["operation"] == "WRITE"
    assert last["userMetadata"]["run_id"] == "r2"
    # What the change feed says of it: every old row deleted, every new one inserted.
    changes = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", last["version"])
        .load(str(ref.path))
        .groupBy("_change_type")
        .count()
        .collect()
    )
    assert {r["_change_type"]: r["count"] for r in changes} == {"delete": 3, "insert": 4}


def test_an_entity_missing_from_the_slice_is_kept_by_a_merge(spark, tmp_path):
    _, how, left = day1_then(spark, tmp_path, OVERWRITE, {"a": 0.6, "b": 0.7})
    assert how == MERGE
    assert left == [("a", D2, 0.6, "r2"), ("b", D2, 0.7, "r2"), ("c", D1, 0.3, "r1")]


def test_a_backfill_of_an_older_date_never_replaces_newer_rows(spark, tmp_path):
    ref = table(spark, tmp_path)
    feed(spark, ref, rows(spark, D2, T1, "r1", {"a": 0.1, "b": 0.2}), "r1", MERGE)
    older = rows(spark, D1, T2, "r2", {"a": 0.6, "b": 0.7})
    assert feed(spark, ref, older, "r2", OVERWRITE) == MERGE
    assert content(spark, ref) == [("a", D2, 0.1, "r1"), ("b", D2, 0.2, "r1")]


def test_a_rerun_of_the_same_date_covers_the_table_and_the_newer_run_wins(spark, tmp_path):
    _, how, left = day1_then(
        spark, tmp_path, OVERWRITE, {"a": 0.5, "b": 0.5, "c": 0.5}, day=D1, at=T2
    )
    assert how == OVERWRITE
    assert left == [("a", D1, 0.5, "r2"), ("b", D1, 0.5, "r2"), ("c", D1, 0.5, "r2")]


def test_covers_reads_the_table_at_the_version_it_is_given(spark, tmp_path):
    ref = table(spark, tmp_path)
    feed(spark, ref, rows(spark, D1, T1, "r1", {"a": 0.1}), "r1", MERGE)
    checked = io.required_version(spark, ref)
    feed(spark, ref, rows(spark, D1, T1, "r1", {"z": 0.1}), "r1", MERGE)
    slice_ = rows(spark, D2, T2, "r2", {"a": 0.6})
    assert covers(spark, slice_, ref, LAYOUT.keys, checked)
    assert not covers(spark, slice_, ref, LAYOUT.keys, checked + 1)


def test_another_runs_commit_between_the_check_and_the_overwrite_is_not_lost(
    spark, tmp_path, monkeypatch
):
    ref = table(spark, tmp_path)
    feed(spark, ref, rows(spark, D1, T1, "r1", {"a": 0.1, "b": 0.2}), "r1", MERGE)
    slice_ = rows(spark, D2, T3, "r3", {"a": 0.6, "b": 0.7})
    real_covers = current.covers

    def check_then_other_run_commits(spark_, source, ref_, keys, version):
        answer = real_covers(spark_, source, ref_, keys, version)
        if ref_ == ref and version == 1:
            # Another run MERGEs a new entity right after this run's check.
            other = rows(spark, D2, T2, "r2", {"z": 0.9})
            io.merge_newer(spark, other, ref, LAYOUT.keys, current.NEWER_SCORE, {"run_id": "r2"})
        return answer

    monkeypatch.setattr(current, "covers", check_then_other_run_commits)
    assert feed(spark, ref, slice_, "r3", OVERWRITE) == MERGE
    assert content(spark, ref) == [
        ("a", D2, 0.6, "r3"),
        ("b", D2, 0.7, "r3"),
        ("z", D2, 0.9, "r2"),
    ]
    operations = [c["operation"] for c in io.commits(spark, ref, after=1)]
    assert operations == ["MERGE", "WRITE", "RESTORE", "MERGE"]


def test_an_unknown_mode_is_refused_before_anything_is_written(spark, tmp_path):
    ref = table(spark, tmp_path)
    with pytest.raises(ValueError, match=r"scoring\.current_write: expected merge or overwrite"):
        feed(spark, ref, rows(spark, D1, T1, "r1", {"a": 0.1}), "r1", "replace")
    assert io.read_table(spark, ref).count() == 0


KEYS2 = T.StructType(
    [
        T.StructField("region", T.StringType()),
        T.StructField("id", T.StringType()),
        T.StructField("as_of_date", T.DateType()),
        T.StructField("scored_at", T.TimestampType()),
    ]
)


def stamped(spark, entities, day: date, at: datetime):
    """Rows of a two-column key (region, id) stamped with one date and run time."""
    return spark.createDataFrame([(r, i, day, at) for r, i in entities], KEYS2)


AB = [("eu", "a"), ("eu", "b")]


@pytest.mark.parametrize(
    ("table_rows", "slice_rows", "expected"),
    [
        pytest.param((AB, D1, T1), (AB, D2, T2), True, id="same entities, a later date"),
        pytest.param((AB, D1, T2), (AB, D1, T3), True, id="same date, a later run (a rerun)"),
        pytest.param((AB, D1, T3), (AB, D1, T2), False, id="same date, an earlier run"),
        pytest.param((AB, D2, T1), (AB, D1, T2), False, id="an older date (a backfill)"),
        pytest.param((AB, D1, T1), ([("eu", "a"), ("eu", "c")], D2, T2), False, id="b replaced"),
        pytest.param((AB, D1, T1), ([("eu", "a"), ("eu", "a")], D2, T2), False, id="a twice"),
        pytest.param((AB, D1, T1), ([*AB, ("eu", "c")], D2, T2), False, id="a new entity"),
        pytest.param(
            ([("a", None)], D1, T1), ([(None, "a")], D2, T2), False, id="null in another column"
        ),
        pytest.param(([], D1, T1), ([], D2, T2), False, id="both empty"),
    ],
)
def test_the_aggregate_check_says_yes_only_for_the_same_entities_all_older(
    spark, table_rows, slice_rows, expected
):
    # False sends covers to its exact join (the new entity, the empty table: it answers yes).
    target, source = stamped(spark, *table_rows), stamped(spark, *slice_rows)
    assert same_entities_all_older(source, target, ("region", "id")) is expected


def test_covers_answers_the_same_by_the_exact_join_alone(spark, tmp_path, monkeypatch):
    ref = table(spark, tmp_path)
    feed(spark, ref, rows(spark, D1, T1, "r1", {"a": 0.1, "b": 0.2}), "r1", MERGE)
    version = io.required_version(spark, ref)
    same = rows(spark, D2, T2, "r2", {"a": 0.6, "b": 0.7})
    less = rows(spark, D2, T2, "r2", {"a": 0.6})
    answers = [covers(spark, s, ref, LAYOUT.keys, version) for s in (same, less)]
    monkeypatch.setattr(current, "same_entities_all_older", lambda *_: False)
    assert [covers(spark, s, ref, LAYOUT.keys, version) for s in (same, less)] == answers
    assert answers == [True, False]
