"""The churn demo's features as of a date D: `build(sources, as_of)`. Pure functions.

The engine hands `build` each source as known at the end of D: `customers` holds each
customer's newest record delivered by D, `transactions` only purchases that happened by the
end of D (UTC) and were delivered by D. A window of N days ends on D inclusive
(D-N+1 .. D). The columns and the null policy are those of `contracts/features.yaml`:
counts and sums over a window without events are 0; ratios, averages and recencies that
need an event are null. The engine adds `as_of_date` and the run id.

Example:
    >>> rows = build({"customers": c, "transactions": t}, date(2026, 3, 1))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

WINDOWS = (7, 30, 90, 365)
#: No feature looks further back than the widest window: `days_since_first_txn` is capped
#: here, so a feature never depends on how much history the client delivered (a training
#: date 30 days earlier than the scored date would otherwise see every long-standing
#: customer's value 30 days lower, and the monitor would rightly call that drift).
MAX_LOOKBACK_DAYS = max(WINDOWS)
CHANNELS = ("web", "app", "store")


def events_as_of(transactions: DataFrame, as_of: date) -> DataFrame:
    """The purchases known at D (the engine dropped later ones), with `days_ago` (0 on D)."""
    return transactions.select(
        "customer_id",
        F.col("amount").cast("double").alias("amount"),
        "category",
        "channel",
        F.to_date("event_time").alias("event_date"),
        F.datediff(F.lit(as_of), F.to_date("event_time")).alias("days_ago"),
    )


def in_window(days_ago: Column, days: int) -> Column:
    """Whether an event `days_ago` days before D lies in the `days`-day window ending on D."""
    return (days_ago >= 0) & (days_ago < days)


def share(part: Column, whole: Column) -> Column:
    """part / whole as a double; null when whole is 0 or null (an undefined share)."""
    return F.when(whole != 0, part.cast("double") / whole)


def transaction_aggregates(events: DataFrame) -> DataFrame:
    """One row per customer with events: window counts, sums, extremes, mix, recency."""
    ago = F.col("days_ago")
    amount = F.col("amount")
    in90 = in_window(ago, 90)
    columns = [
        F.min(ago).alias("days_since_last_txn"),
        F.least(F.max(ago), F.lit(MAX_LOOKBACK_DAYS)).alias("days_since_first_txn"),
        *[F.count_if(in_window(ago, n)).alias(f"txn_count_{n}d") for n in WINDOWS],
        *[F.sum(F.when(in_window(ago, n), amount)).alias(f"amount_sum_{n}d") for n in WINDOWS],
        F.avg(F.when(in_window(ago, 30), amount)).alias("amount_avg_30d"),
        F.avg(F.when(in_window(ago, 365), amount)).alias("amount_avg_365d"),
        F.max(F.when(in90, amount)).alias("amount_max_90d"),
        F.count_distinct(F.when(in_window(ago, 30), F.col("event_date"))).alias("active_days_30d"),
        F.count_distinct(F.when(in90, F.col("event_date"))).alias("active_days_90d"),
        F.count_distinct(F.when(in90, F.col("category"))).alias("category_count_90d"),
        *[F.count_if(in90 & (F.col("channel") == c)).alias(f"{c}_count_90d") for c in CHANNELS],
        F.count_if(in90 & (amount < 0)).alias("refund_count_90d"),
    ]
    return events.groupBy("customer_id").agg(*columns)


def top_category_counts(events: DataFrame) -> DataFrame:
    """Per customer, the purchase count of the most bought category over 90 days."""
    per_category = (
        events.filter(in_window(F.col("days_ago"), 90))
        .groupBy("customer_id", "category")
        .agg(F.count(F.lit(1)).alias("n"))
    )
    return per_category.groupBy("customer_id").agg(F.max("n").alias("top_category_count_90d"))


def derived_features(joined: DataFrame) -> DataFrame:
    """Zero-fill counts and sums of customers without events; add trends and shares."""
    zero_filled = [f"txn_count_{n}d" for n in WINDOWS] + [f"amount_sum_{n}d" for n in WINDOWS]
    zero_filled += ["active_days_30d", "active_days_90d", "category_count_90d", "refund_count_90d"]
    zero_filled += [f"{c}_count_90d" for c in CHANNELS]
    filled = joined.fillna(0, subset=zero_filled)
    count90 = F.col("txn_count_90d")
    return filled.select(
        "*",
        share(F.col("txn_count_30d"), count90 / 3).alias("count_trend_30_90"),
        share(F.col("amount_sum_30d"), F.col("amount_sum_90d") / 3).alias("amount_trend_30_90"),
        share(F.col("top_category_count_90d"), count90).alias("top_category_share_90d"),
        *[share(F.col(f"{c}_count_90d"), count90).alias(f"{c}_share_90d") for c in CHANNELS],
    )


def build(sources: Mapping[str, DataFrame], as_of: date) -> DataFrame:
    """The feature rows of every customer signed up by D, as of the end of D.

    Args:
        sources: `customers` (one row per customer, its newest record by D) and
            `transactions` (every purchase known at D).
        as_of: the date D.

    Returns:
        `customer_id` and the columns of `contracts/features.yaml`.
    """
    events = events_as_of(sources["transactions"], as_of)
    aggregates = transaction_aggregates(events).join(
        top_category_counts(events), on="customer_id", how="left"
    )
    signed_up = (
        sources["customers"]
        .filter(F.col("signup_date") <= F.lit(as_of))
        .select(
            "customer_id",
            "segment",
            "country",
            F.datediff(F.lit(as_of), F.col("signup_date")).alias("tenure_days"),
        )
    )
    joined = signed_up.join(aggregates, on="customer_id", how="left")
    return joined.transform(derived_features)
