"""Purchases: when each customer buys, and which delivery carries each event (some late)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .knobs import DAY, LATE_LAG_DAYS, LATE_SHARE, BoolArray, FloatArray, IntArray
from .population import Behaviour, Crm, Plan, activity


@dataclass(frozen=True)
class Events:
    """All purchases in event-time order; the position + 1 is the transaction number."""

    customer: IntArray
    time: IntArray  # seconds since 1970-01-01 UTC
    delivery: IntArray  # index of the delivery carrying the event, -1: after the last one
    late: BoolArray


def draw_events(rng: np.random.Generator, crm: Crm, behaviour: Behaviour, plan: Plan) -> Events:
    """Draw every purchase day by day (vectorised over customers) and its delivery.

    Each day's draws (counts, times, lateness) are made together, so a change of behaviour
    from some day on (the drift) leaves every earlier day's events and deliveries as they are.
    """
    customers: list[IntArray] = []
    times: list[IntArray] = []
    deliveries: list[IntArray] = []
    lates: list[BoolArray] = []
    everyone = np.arange(crm.number.size, dtype=np.int64)
    hour_p = _hour_weights()
    # The days after the last delivery are drawn too (never delivered): they decide outcomes.
    for day in range(plan.first_event_day, plan.last_simulated_day + 1):
        expected = behaviour.rate * activity(behaviour, day) * _weekday_factor(day)
        counts = rng.poisson(np.where(crm.signup_day <= day, expected, 0.0))
        who = np.repeat(everyone, counts)
        second = rng.choice(24, size=who.size, p=hour_p) * 3600 + rng.integers(0, 3600, who.size)
        order = np.argsort(second, kind="stable")
        customers.append(who[order])
        times.append(day * DAY + second[order])
        delivery, late = _draw_deliveries(rng, np.full(who.size, day, dtype=np.int64), plan)
        deliveries.append(delivery)
        lates.append(late)
    return Events(
        customer=_concatenate(customers),
        time=_concatenate(times),
        delivery=_concatenate(deliveries),
        late=np.concatenate(lates) if lates else np.zeros(0, dtype=np.bool_),
    )


def _concatenate(chunks: list[IntArray]) -> IntArray:
    """The chunks one after the other; an empty array when there are none (no event days)."""
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)


def _draw_deliveries(
    rng: np.random.Generator, event_day: IntArray, plan: Plan
) -> tuple[IntArray, BoolArray]:
    """Pick each event's delivery: the next day or LATE_LAG_DAYS later; history goes to day 0."""
    n = event_day.size
    late = rng.random(n) < LATE_SHARE
    lag = np.where(late, rng.integers(LATE_LAG_DAYS[0], LATE_LAG_DAYS[1] + 1, n), 1)
    delivery = np.maximum(event_day + lag, plan.start_day) - plan.start_day
    delivery[delivery >= plan.days] = -1
    # A lagged event that still lands in the backfill is not late for anyone.
    return delivery, late & (delivery > 0)


def _hour_weights() -> FloatArray:
    """Purchases per hour of day: quiet nights, a lunch peak and a larger evening peak."""
    hour = np.arange(24, dtype=np.float64) + 0.5
    weights = 0.15 + np.exp(-(((hour - 12.5) / 2.5) ** 2))
    weights += 1.4 * np.exp(-(((hour - 19.5) / 2.0) ** 2))
    return weights / weights.sum()


def _weekday_factor(day: int) -> float:
    """More purchases on weekends; 1970-01-01 was a Thursday."""
    return 1.3 if (day + 3) % 7 >= 5 else 0.88


def draw_from_cdf(rng: np.random.Generator, cdf: FloatArray) -> IntArray:
    """One label index per row of a cumulative-share matrix."""
    return (cdf < rng.random((cdf.shape[0], 1))).sum(axis=1).astype(np.int64)
