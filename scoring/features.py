"""Point-in-time customer features as of a date D. Pure functions: no I/O, no config.

Only events with event_time at or before the end of D (UTC) count, whenever they arrived;
a window of N days ends on D inclusive (D-N+1 .. D). The columns and the null policy are
those of `schemas/features.yaml`: counts and sums over a window without events are 0;
ratios, averages and recencies that need an event are null.

Example:
    >>> rows = build_features(customers, transactions, date(2026, 3, 1), "run-1")  # doctest: +SKIP
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from scoring.contracts import load_contract
from scoring.quality import conform

WINDOWS = (7, 30, 90, 365)
#: No feature looks further back than the widest window: `days_since_first_txn` is capped
#: here, so a feature never depends on how much history the client delivered (a training
#: date 30 days earlier than the scored date would otherwise see every long-standing
#: customer's value 30 days lower, and the monitor would rightly call that drift).
MAX_LOOKBACK_DAYS = max(WINDOWS)
CHANNELS = ("web", "app", "store")


def end_of_day_exclusive(as_of: date) -> datetime:
    """The first instant after D (UTC): events strictly before it are at or before the end of D."""
    return datetime.combine(as_of + timedelta(days=1), time.min, tzinfo=UTC)


def events_as_of(transactions: DataFrame, as_of: date) -> DataFrame:
    """The transactions that happened by the end of D, with `days_ago` (0 on D itself)."""
    # An aware datetime is an instant, whatever the driver's local time zone is.
    cutoff = F.lit(end_of_day_exclusive(as_of))
    return transactions.filter(F.col("event_time") < cutoff).select(
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


def build_features(
    customers: DataFrame, transactions: DataFrame, as_of: date, run_id: str
) -> DataFrame:
    """The feature rows of every customer signed up by D, as of the end of D.

    Args:
        customers: bronze_customers (one row per customer, its latest record).
        transactions: bronze_transactions (any event times; later ones are ignored).
        as_of: the date D.
        run_id: stamped in `feature_run_id`.

    Returns:
        Exactly the columns of `schemas/features.yaml`, in order, with its types.
    """
    events = events_as_of(transactions, as_of)
    aggregates = transaction_aggregates(events).join(
        top_category_counts(events), on="customer_id", how="left"
    )
    signed_up = customers.filter(F.col("signup_date") <= F.lit(as_of)).select(
        "customer_id",
        "segment",
        "country",
        F.datediff(F.lit(as_of), F.col("signup_date")).alias("tenure_days"),
    )
    joined = signed_up.join(aggregates, on="customer_id", how="left")
    features = joined.transform(derived_features).select(
        "*", F.lit(as_of).alias("as_of_date"), F.lit(run_id).alias("feature_run_id")
    )
    return features.transform(conform, load_contract("features"))
