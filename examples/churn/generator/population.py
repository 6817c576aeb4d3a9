"""The calendar of a run and its customers: CRM records and how each customer buys."""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass

import numpy as np

from scoring.usecase import ColumnSpec, ConfigError, Contract

from .knobs import (
    DAY,
    DRIFT_SEGMENT_SHARE,
    EPOCH,
    LAPSE_BURN_IN_DAYS,
    LAPSE_ENGAGEMENT,
    LAPSE_FADE_DAYS,
    LAPSE_HAZARD,
    LAPSE_MEAN_DAYS,
    LAPSE_SEGMENT_STEP,
    LAPSE_SPELLS,
    MEAN_DAILY_PURCHASES,
    MIGRATION_LAPSE_DELAY,
    MIGRATION_LAPSE_SHARE,
    NEW_CUSTOMER_SHARE,
    OUTCOME_HORIZON_DAYS,
    PAUSE_DAYS,
    PAUSE_SHARE,
    RATE_ENGAGEMENT,
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

    @property
    def last_simulated_day(self) -> int:
        """The last day simulated: OUTCOME_HORIZON_DAYS past the last delivery, so that the
        outcome of every delivered as-of date is known (those days are never delivered)."""
        return self.last_event_day + OUTCOME_HORIZON_DAYS

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

    engagement: FloatArray  # the latent z ~ N(0, 1) behind rate, spend and lapses
    rate: FloatArray  # purchases per day while active
    lapse_start: FloatArray  # (customers, LAPSE_SPELLS): first day of each lapse, ascending
    lapse_end: FloatArray  # the day each lapse is over
    fade_days: FloatArray  # days over which activity fades before a lapse
    migrant: BoolArray  # a private customer the drift's CRM migration re-files
    left_day: FloatArray  # a migrant driven away stops abruptly on this day; inf: never
    back_day: FloatArray  # ... and comes back on this day
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
    """Draw engagement, purchase rates, lapses, spend and preferences (knobs: engagement)."""
    n = crm.number.size
    engagement = rng.standard_normal(n)
    # The mean of exp(a z + b e) is exp((a^2 + b^2) / 2): subtracted so the mean is as named.
    spread = (RATE_ENGAGEMENT**2 + RATE_SIGMA**2) / 2
    log_rate = RATE_ENGAGEMENT * engagement + RATE_SIGMA * rng.standard_normal(n) - spread
    opt_in_effect = np.where(crm.opt_in == 1, 1.2, 1.0)
    rate = MEAN_DAILY_PURCHASES * np.exp(log_rate) * RATE_SEGMENT_STEP**crm.segment
    hazard = LAPSE_HAZARD * np.exp(-LAPSE_ENGAGEMENT * engagement)
    lapse_start, lapse_end = _draw_lapses(rng, hazard * LAPSE_SEGMENT_STEP**crm.segment, plan)
    pauses = rng.random(n) < PAUSE_SHARE
    pause_day = rng.uniform(plan.first_event_day, plan.last_simulated_day + 1, n)
    channels = allowed_values(contract, "channel")
    channel_alpha = np.tile(4 * _skewed(len(channels), 0.6), (n, 1))
    # Younger customers lean towards the app even before any drift.
    channel_alpha[crm.birth_year >= 1990, channels.index(drift_channel(contract))] *= 2.5
    categories = len(allowed_values(contract, "category"))
    category_alpha = np.tile(2 * _skewed(categories, 0.85), (n, 1))
    spend = rng.lognormal(0.2 * engagement, 0.4, n) * SPEND_SEGMENT_STEP**crm.segment
    # Drawn with or without drift, so that a drifted run equals a plain one before the drift.
    migrant = (crm.segment == 0) & (rng.random(n) < DRIFT_SEGMENT_SHARE)
    leaves = migrant & (rng.random(n) < MIGRATION_LAPSE_SHARE)
    left_day = plan.drift_from_day + rng.uniform(0, MIGRATION_LAPSE_DELAY, n)
    left_day = np.where(leaves, left_day, np.inf)
    back_day = left_day + rng.exponential(LAPSE_MEAN_DAYS, n)
    return Behaviour(
        engagement=engagement,
        rate=rate * opt_in_effect,
        lapse_start=lapse_start,
        lapse_end=lapse_end,
        fade_days=rng.uniform(*LAPSE_FADE_DAYS, n),
        migrant=migrant,
        left_day=left_day,
        back_day=back_day,
        pause_day=np.where(pauses, pause_day, np.inf),
        pause_days=rng.uniform(*PAUSE_DAYS, n),
        spend=spend,
        category_cdf=_cumulative(rng.gamma(category_alpha)),
        channel_cdf=_cumulative(rng.gamma(channel_alpha)),
        price_level=rng.lognormal(3.0, 0.7, categories),
    )


def _draw_lapses(
    rng: np.random.Generator, hazard: FloatArray, plan: Plan
) -> tuple[FloatArray, FloatArray]:
    """Alternating active spells (exponential, mean 1 / hazard) and lapses (mean
    LAPSE_MEAN_DAYS) from LAPSE_BURN_IN_DAYS before the history: (starts, ends) per customer.
    A customer whose LAPSE_SPELLS are over before the end stays active."""
    n = hazard.size
    active = rng.exponential(1.0, (n, LAPSE_SPELLS)) / hazard[:, None]
    lapse = rng.exponential(LAPSE_MEAN_DAYS, (n, LAPSE_SPELLS))
    origin = plan.first_event_day - LAPSE_BURN_IN_DAYS
    end = origin + np.cumsum(active + lapse, axis=1)
    return end - lapse, end


def _cumulative(weights: FloatArray) -> FloatArray:
    """Row-wise cumulative shares; the last column is exactly 1 so a draw always lands."""
    cdf = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    cdf[:, -1] = 1.0
    return cdf


def activity(behaviour: Behaviour, day: int) -> FloatArray:
    """Each customer's share of their rate on `day`: fading before a lapse, zero in a lapse,
    a pause or after the drift's migration drove them away."""
    starts, ends = behaviour.lapse_start, behaviour.lapse_end
    lapsed = ((starts <= day) & (day < ends)).any(axis=1)
    next_start = np.where(starts > day, starts, np.inf).min(axis=1)
    fading = np.clip((next_start - day) / behaviour.fade_days, 0.0, 1.0)
    pausing = (day >= behaviour.pause_day) & (day < behaviour.pause_day + behaviour.pause_days)
    left = (day >= behaviour.left_day) & (day < behaviour.back_day)
    return np.where(lapsed | pausing | left, 0.0, fading)
