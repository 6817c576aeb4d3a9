"""Sources as known at D: delivered by D (or in the initial load), events by the end of D,
and a dimension's newest version among those."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from scoring.core.contracts import read_contract
from scoring.features.asof import as_known_at, first_delivery
from scoring.usecase.spec import Source
from tests.helpers import assert_frames_equal

D0, D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)
LINEAGE = "_delivery_date date, _source_file string"


def source(tmp_path, name: str, body: str) -> Source:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nkind: raw_source\ndescription: d\n{body}")
    return Source(name, read_contract(path))


@pytest.fixture
def events(tmp_path) -> Source:
    return source(
        tmp_path,
        "events",
        "keys: [id]\nevent_time_column: at\ncolumns:\n"
        "  - {name: id, type: string, nullable: false, description: i}\n"
        "  - {name: at, type: timestamp, nullable: false, description: a}\n",
    )


@pytest.fixture
def people(tmp_path) -> Source:
    return source(
        tmp_path,
        "people",
        "keys: [id]\nversion_column: v\ncolumns:\n"
        "  - {name: id, type: string, nullable: false, description: i}\n"
        "  - {name: v, type: int, nullable: false, description: v}\n"
        "  - {name: city, type: string, nullable: true, description: c}\n",
    )


def test_an_event_after_the_end_of_the_day_is_not_known(spark, events):
    bronze = spark.createDataFrame(
        [
            ("e1", datetime(2026, 3, 2, 23, 59, 59, 999999), D0, "f"),
            ("e2", datetime(2026, 3, 3, 0, 0, 0), D0, "f"),
        ],
        f"id string, at timestamp, {LINEAGE}",
    )
    actual = as_known_at(bronze, events, D1, D0)
    expected = spark.createDataFrame(
        [("e1", datetime(2026, 3, 2, 23, 59, 59, 999999))], "id string, at timestamp"
    )
    assert_frames_equal(actual, expected)


def test_a_row_delivered_after_the_day_is_not_known_even_for_an_earlier_event(spark, events):
    bronze = spark.createDataFrame(
        [
            ("on_time", datetime(2026, 3, 2, 10), D1, "f"),
            ("late", datetime(2026, 3, 2, 11), D2, "f"),  # happened on D1, arrived on D2
        ],
        f"id string, at timestamp, {LINEAGE}",
    )
    assert [r["id"] for r in as_known_at(bronze, events, D1, D1).collect()] == ["on_time"]
    assert sorted(r["id"] for r in as_known_at(bronze, events, D2, D1).collect()) == [
        "late",
        "on_time",
    ]


def test_the_initial_load_is_known_before_its_delivery_for_events_that_happened_by_then(
    spark, events
):
    bronze = spark.createDataFrame(
        [
            ("history", datetime(2026, 1, 10), D1, "f"),  # backfill delivered on D1
            ("recent", datetime(2026, 3, 1), D1, "f"),
            ("later", datetime(2026, 1, 20), D2, "f"),  # a later delivery: not known early
        ],
        f"id string, at timestamp, {LINEAGE}",
    )
    known = as_known_at(bronze, events, date(2026, 1, 31), first_delivery(bronze))
    assert [r["id"] for r in known.collect()] == ["history"]


def test_a_dimension_gives_the_newest_version_delivered_by_the_day(spark, people):
    bronze = spark.createDataFrame(
        [
            ("p1", 1, "Lyon", D0, "a"),
            ("p1", 2, "Nice", D2, "b"),  # delivered after D1
            ("p2", 1, "Oslo", D0, "a"),
            ("p2", 3, "Rome", D1, "b"),
            ("p3", 1, None, D3, "c"),  # a new person after D1
        ],
        f"id string, v int, city string, {LINEAGE}",
    )
    actual = as_known_at(bronze, people, D1, first_delivery(bronze))
    expected = spark.createDataFrame(
        [("p1", 1, "Lyon"), ("p2", 3, "Rome")], "id string, v int, city string"
    )
    assert_frames_equal(actual, expected)


def test_without_a_version_column_the_newest_delivery_wins(spark, tmp_path):
    shops = source(
        tmp_path,
        "shops",
        "keys: [id]\ncolumns:\n"
        "  - {name: id, type: string, nullable: false, description: i}\n"
        "  - {name: size, type: int, nullable: true, description: s}\n",
    )
    bronze = spark.createDataFrame(
        [("s1", 10, D0, "a"), ("s1", 20, D1, "b"), ("s1", 30, D3, "c")],
        f"id string, size int, {LINEAGE}",
    )
    assert [r["size"] for r in as_known_at(bronze, shops, D2, D0).collect()] == [20]


def test_first_delivery_of_an_empty_table_is_none(spark):
    empty = spark.createDataFrame([], f"id string, {LINEAGE}")
    assert first_delivery(empty) is None
