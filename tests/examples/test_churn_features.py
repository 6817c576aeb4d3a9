from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from pyspark.sql import functions as F

from scoring.core.contracts import Contract
from scoring.features.build import conform_features, features_schema
from scoring.usecase import import_module, load_usecase
from tests.conftest import CHURN_DIR
from tests.helpers import assert_frames_equal

CHURN = load_usecase(CHURN_DIR)
CONTRACT = cast(Contract, CHURN.features.contract)  # the demo builds its features
features = import_module(CHURN, "features")
in_window, share = features.in_window, features.share

D = date(2026, 3, 10)
TXN_SCHEMA = (
    "transaction_id string, customer_id string, event_time timestamp, amount decimal(12,2), "
    "category string, channel string"
)


def txns(spark, rows):
    return spark.createDataFrame(
        [(f"T{i}", c, t, Decimal(a), cat, ch) for i, (c, t, a, cat, ch) in enumerate(rows)],
        TXN_SCHEMA,
    )


def test_days_ago_counts_whole_utc_days_back_from_the_date(spark):
    events = txns(
        spark,
        [
            ("C1", datetime(2026, 3, 10, 23, 59, 59, 999999), "1", "toys", "web"),
            ("C1", datetime(2026, 3, 10, 0, 0, 0), "2", "toys", "web"),
            ("C1", datetime(2026, 3, 9, 23, 59, 59), "3", "toys", "web"),
        ],
    )
    actual = features.events_as_of(events, D).select("amount", "event_date", "days_ago")
    expected = spark.createDataFrame(
        [(1.0, date(2026, 3, 10), 0), (2.0, date(2026, 3, 10), 0), (3.0, date(2026, 3, 9), 1)],
        "amount double, event_date date, days_ago int",
    )
    assert_frames_equal(actual, expected)


def test_window_of_seven_days_ends_on_the_date_inclusive(spark):
    frame = spark.createDataFrame([(-1,), (0,), (6,), (7,), (None,)], "days_ago int")
    actual = frame.select("days_ago", in_window(F.col("days_ago"), 7).alias("inside"))
    expected = spark.createDataFrame(
        [(-1, False), (0, True), (6, True), (7, False), (None, None)],
        "days_ago int, inside boolean",
    )
    assert_frames_equal(actual, expected)


def test_share_is_null_when_the_whole_is_zero_or_null(spark):
    frame = spark.createDataFrame([(1, 4), (0, 0), (None, 2), (2, None)], "part int, whole int")
    actual = frame.select("part", "whole", share(F.col("part"), F.col("whole")).alias("s"))
    expected = spark.createDataFrame(
        [(1, 4, 0.25), (0, 0, None), (None, 2, None), (2, None, None)],
        "part int, whole int, s double",
    )
    assert_frames_equal(actual, expected)


def test_features_as_of_a_date_for_a_buyer_and_a_customer_without_events(spark):
    customers = spark.createDataFrame(
        [
            ("A", date(2024, 6, 1), "DE", "consumer"),
            ("B", date(2026, 3, 10), None, "smb"),  # signed up on D: included, tenure 0
            ("C", date(2026, 3, 11), "FR", "smb"),  # signed up after D: excluded
        ],
        "customer_id string, signup_date date, country string, segment string",
    )
    events = txns(
        spark,
        [
            ("A", datetime(2026, 3, 10, 23, 59, 59, 999999), "10.00", "grocery", "web"),  # 0 ago
            ("A", datetime(2026, 3, 4, 12), "-4.00", "grocery", "app"),  # 6 days ago, refund
            ("A", datetime(2026, 3, 3), "30.00", "home", "store"),  # 7 days ago
            ("A", datetime(2025, 12, 1, 10), "100.00", "travel", "web"),  # 99 days ago
            ("A", datetime(2024, 12, 1), "5.00", "toys", "web"),  # 464 days ago
            ("Z", datetime(2026, 3, 9), "1.00", "toys", "web"),  # unknown customer: ignored
        ],
    )
    built = features.build({"customers": customers, "transactions": events}, D)
    actual = conform_features(built, CONTRACT, CHURN.entity, D, "run-1")
    third = 1 / 3
    buyer: tuple[Any, ...] = (
        "A",
        D,
        "consumer",
        "DE",
        647,
        0,
        365,  # days_since_first_txn: 464 days, capped at the 365-day look-back
        2,
        3,
        3,
        4,
        6.0,
        36.0,
        36.0,
        136.0,
    )
    buyer += (12.0, 34.0, 30.0, 3, 3, 3.0, 3.0, 2, 2 / 3, third, third, third, 1, "run-1")
    newcomer: tuple[Any, ...] = ("B", D, "smb", None, 0, None, None, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0)
    newcomer += (None, None, None, 0, 0, None, None, 0, None, None, None, None, 0, "run-1")
    schema = features_schema(CONTRACT, CHURN.entity)
    expected = spark.createDataFrame([buyer, newcomer], schema)
    assert_frames_equal(actual, expected)
