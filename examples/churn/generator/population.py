"""The calendar of a run and its customers: CRM records and how each customer buys."""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass

import numpy as np

from scoring.usecase import ColumnSpec, ConfigError, Contract

from .knobs import (
    CHURN_DECAY_DAYS,
    CHURN_HORIZON_DAYS,
    CHURN_SEGMENT_STEP,
    CHURN_SHARE,
    DAY,
    EPOCH,
    MEAN_DAILY_PURCHASES,
    NEW_CUSTOMER_SHARE,
    PAUSE_DAYS,
    PAUSE_SHARE,
    RATE_SEGMENT_STEP,
    RATE_SIGMA,
    SIGNUP_YEARS,
    SPEND_SEGMENT_STEP,
    BoolArray,
    FloatArray,
    IntArray,
)
from .values import allowed_values, day_number, drift_channel, id_format, value_range


@dataclass(frozen=True)
class Plan:
    """The calendar of a run, in days since 1970-01-01."""

    start_day: int
    days: int
    first_event_day: int
    drift_from_day: float  # events on or after this day drift; inf: no drift

    @property
    def last_event_day(self) -> int:
        """The last day whose events are delivered on time (the day of the last delivery)."""
        return self.start_day + self.days - 2

    def delivery_date(self, index: int) -> datetime.date:
        """The business date a delivery is filed under: the day whose events it carries.

        Delivery `index` is produced in the night after that day (internally: day
        `start_day + index`, carrying the events of the day before), so the folder of
        business date D holds D's events: features as of D see all of them.
        """
        return EPOCH + datetime.timedelta(days=self.start_day + index - 1)


def make_plan(start: datetime.date, days: int, history_days: int, drift_day: int | None) -> Plan:
    """Turn the public arguments into day numbers."""
    # Internally a delivery is made the night after its business date (see delivery_date).
    start_day = (start - EPOCH).days + 1
    first_event_day = start_day - 1 - history_days
    if drift_day is None:
        drift_from = math.inf
    else:
        # Internal delivery k carries the events of day k - 1; delivery 0 the whole history.
        drift_from = float(first_event_day if drift_day == 0 else start_day + drift_day - 1)
    return Plan(start_day, days, first_event_day, drift_from)


@dataclass
class Crm:
    """The client's CRM, one row per customer in signup order; updates change it in place."""

    number: IntArray
    signup_day: IntArray
    country: IntArray  # index into the allowed countries, -1: null
    segment: IntArray
    birth_year: IntArray  # -1: null
    opt_in: IntArray  # 1, 0, -1: null
    updated_at: IntArray  # seconds since 1970-01-01 UTC
    delivered_clean: BoolArray  # the last line sent for the customer was valid


@dataclass(frozen=True)
class Behaviour:
    """How each customer buys; fixed for the whole run."""

    rate: FloatArray  # purchases per day while active
    churn_day: FloatArray  # activity is zero from this day on; inf: never
    decay_days: FloatArray  # days over which activity fades before churn_day
    pause_day: FloatArray  # first day of a pause; inf: none
    pause_days: FloatArray
    spend: FloatArray  # multiplier of the amounts
    category_cdf: FloatArray  # (customers, categories), cumulative preferences
    channel_cdf: FloatArray
    price_level: FloatArray  # typical amount per category


def _skewed(size: int, ratio: float) -> FloatArray:
    """Weights falling geometrically with the position: a few common labels, a long tail."""
    weights = ratio ** np.arange(size, dtype=np.float64)
    return weights / weights.sum()


def draw_crm(rng: np.random.Generator, initial: int, plan: Plan, contract: Contract) -> Crm:
    """Draw the initial customers and those who sign up on each later delivery day."""
    signup = _draw_signup_days(rng, initial, plan, contract.column("signup_date"))
    _, width = id_format(contract.column("customer_id"))
    if signup.size >= 10**width:
        raise ConfigError(f"generate-demo-data: customers must be < {10**width}, got {initial}")
    n = signup.size
    segments = len(allowed_values(contract, "segment"))
    segment = rng.choice(segments, size=n, p=_skewed(segments, 0.2))
    countries = len(allowed_values(contract, "country"))
    country = rng.choice(countries, size=n, p=_skewed(countries, 0.75))
    country[rng.random(n) < 0.03] = -1
    birth_low, birth_high = (int(v) for v in value_range(contract, "birth_year"))
    birth_year = np.clip(np.rint(rng.normal(1978, 14, n)), birth_low, birth_high).astype(np.int64)
    # The first segment is private persons: only they have a birth year, and not always.
    birth_year[(segment != 0) | (rng.random(n) < 0.06)] = -1
    opt_in = rng.choice(np.array([1, 0, -1]), size=n, p=[0.55, 0.35, 0.10])
    # A record was last changed some time between sign-up and the extract.
    span = np.maximum(plan.start_day - signup, 1) * DAY
    updated_at = signup * DAY + (rng.random(n) * span).astype(np.int64)
    return Crm(
        number=np.arange(1, n + 1, dtype=np.int64),
        signup_day=signup,
        country=country.astype(np.int64),
        segment=segment.astype(np.int64),
        birth_year=birth_year,
        opt_in=opt_in.astype(np.int64),
        updated_at=updated_at,
        delivered_clean=np.zeros(n, dtype=np.bool_),
    )


def _draw_signup_days(
    rng: np.random.Generator, initial: int, plan: Plan, spec: ColumnSpec
) -> IntArray:
    """Sign-up days: the initial customers before start, then a few per later delivery."""
    low = max(plan.start_day - SIGNUP_YEARS * 365, day_number(spec.range[0] if spec.range else 0))
    existing = np.sort(rng.integers(low, plan.start_day, size=initial))
    per_day = np.maximum(rng.poisson(initial * NEW_CUSTOMER_SHARE, size=plan.days - 1), 1)
    # Delivery d (d >= 1) carries the customers who signed up on day d - 1.
    new = np.repeat(plan.start_day + np.arange(plan.days - 1, dtype=np.int64), per_day)
    return np.concatenate([existing, new]).astype(np.int64)


def draw_behaviour(rng: np.random.Generator, crm: Crm, plan: Plan, contract: Contract) -> Behaviour:
    """Draw purchase rates, churn, spend and preferences, with segment and opt-in effects."""
    n = crm.number.size
    mu = math.log(MEAN_DAILY_PURCHASES) - RATE_SIGMA**2 / 2  # so that the mean is as named
    opt_in_effect = np.where(crm.opt_in == 1, 1.2, 1.0)
    rate = rng.lognormal(mu, RATE_SIGMA, n) * RATE_SEGMENT_STEP**crm.segment * opt_in_effect
    churns = rng.random(n) < CHURN_SHARE * CHURN_SEGMENT_STEP**crm.segment
    churn_day = rng.uniform(plan.first_event_day, plan.last_event_day + CHURN_HORIZON_DAYS, n)
    pauses = rng.random(n) < PAUSE_SHARE
    pause_day = rng.uniform(plan.first_event_day, plan.last_event_day + 1, n)
    channels = allowed_values(contract, "channel")
    channel_alpha = np.tile(4 * _skewed(len(channels), 0.6), (n, 1))
    # Younger customers lean towards the app even before any drift.
    channel_alpha[crm.birth_year >= 1990, channels.index(drift_channel(contract))] *= 2.5
    categories = len(allowed_values(contract, "category"))
    category_alpha = np.tile(2 * _skewed(categories, 0.85), (n, 1))
    return Behaviour(
        rate=rate,
        churn_day=np.where(churns, churn_day, np.inf),
        decay_days=rng.uniform(*CHURN_DECAY_DAYS, n),
        pause_day=np.where(pauses, pause_day, np.inf),
        pause_days=rng.uniform(*PAUSE_DAYS, n),
        spend=rng.lognormal(0.0, 0.4, n) * SPEND_SEGMENT_STEP**crm.segment,
        category_cdf=_cumulative(rng.gamma(category_alpha)),
        channel_cdf=_cumulative(rng.gamma(channel_alpha)),
        price_level=rng.lognormal(3.0, 0.7, categories),
    )


def _cumulative(weights: FloatArray) -> FloatArray:
    """Row-wise cumulative shares; the last column is exactly 1 so a draw always lands."""
    cdf = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    cdf[:, -1] = 1.0
    return cdf


def activity(behaviour: Behaviour, day: int) -> FloatArray:
    """Each customer's share of their rate on `day`: fading before churn, zero in a pause."""
    fading = np.clip((behaviour.churn_day - day) / behaviour.decay_days, 0.0, 1.0)
    pausing = (day >= behaviour.pause_day) & (day < behaviour.pause_day + behaviour.pause_days)
    return np.where(pausing, 0.0, fading)
