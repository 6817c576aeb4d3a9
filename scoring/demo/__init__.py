"""Demo data: raw client drops of customers (CSV) and transactions (JSON lines), with dirt.

The generator plays the client's source systems, so that the whole pipeline (ingest,
features, train, score, monitor) has realistic input to run on. Columns, file names, allowed
values and ranges come from the raw contracts in `schemas/`.

Layout, one folder per source and delivery day D = start, start + 1, ..., start + days - 1:

    <raw_root>/customers/D/customers_D.csv
    <raw_root>/transactions/D/transactions_D_part-0000.jsonl   (a part per PART_LINES lines)

File formats:
    * UTF-8, every line (the last one too) ends with "\\n".
    * Timestamps are UTC, ISO 8601 with "T" and "Z", whole seconds: `2026-03-01T13:45:10Z`.
      Dates: `2026-03-01`. Amounts: two decimals, `12.50`, `-3.00`.
    * CSV: a header with the contract's columns; comma separated; a field is quoted (RFC 4180)
      only when it holds a comma or a double quote; a null is an empty field; booleans are
      `true` / `false`. The header is not counted as a line in DemoSummary.
    * JSON lines: one object per line, keys in contract order, no spaces; a null is JSON
      `null`; amounts and integers are JSON numbers, everything else is a JSON string.

Deliveries:
    * customers: day 0 is a full extract (state at the end of start - 1); delivery d >= 1 holds
      the customers who signed up on day d - 1 (new), changed records (`updated`: a later
      `updated_at` and another segment, country or opt-in) and unchanged records sent again,
      byte for byte (`redelivered`).
    * transactions: day 0 holds the history backfill (events of start - history_days to the
      end of start - 1); delivery d >= 1 holds the events of day d - 1, events 2-7 days old
      (`late`) and lines of the previous delivery sent again, byte for byte (`redelivered`).

Dirt: a share of the freshly produced lines (DIRT_SHARES) gets exactly one defect each:
`malformed` (truncated JSON, a CSV line with the wrong delimiter or field count, an error
page), `null_key` (a null identifier: a key or the customer reference), `null_required` (a
null in another non-nullable column), `unknown_category` (a label the contract does not
allow), `bad_cast` (`12,5O` for an amount, `15.03.2026` for a date, `ja` for a boolean) and
`out_of_range` (outside the contract's range). A line carries at most one of these or of
`late`, `redelivered` and `updated`, so DemoSummary's counts are exact.

Behaviour: each customer has a lognormal purchase rate, preferred categories and channels,
and segment effects (the contract's segments in order: fewer, larger purchases). A share of
customers churns: their rate decays linearly to zero over a few weeks and stays there;
others pause for a few weeks and come back, so a quiet spell alone does not give churn away.
From
delivery `drift_day` on, events are drifted: amounts times DRIFT_AMOUNT_FACTOR and a share
of purchases moved to DRIFT_CHANNEL.

Example:
    >>> summary = generate_demo_data(Path("lakehouse/raw"), customers=2000, days=5, seed=7,
    ...                              start=datetime.date(2026, 3, 1))
    >>> summary.delivery("transactions", datetime.date(2026, 3, 2)).late > 0
    True
"""

from __future__ import annotations

import datetime
import math
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from scoring.contracts import ColumnSpec, Contract, load_contract
from scoring.errors import ConfigError, ContractError

# --- knobs -------------------------------------------------------------------------------

#: Lines per transactions part file; a delivery is split into equal parts of at most this.
PART_LINES = 1_000_000
#: Share of freshly produced lines that get each defect.
DIRT_SHARES: Final = MappingProxyType(
    {
        "malformed": 0.002,
        "null_key": 0.002,
        "null_required": 0.001,
        "unknown_category": 0.002,
        "bad_cast": 0.002,
        "out_of_range": 0.001,
    }
)
#: From this many eligible lines on, a delivery carries every defect at least once.
EVERY_DEFECT_FROM_LINES: Final = 100
#: Share of events that arrive 2-7 days late instead of the next day.
LATE_SHARE: Final = 0.03
LATE_LAG_DAYS: Final = (2, 7)
#: Lines of the previous delivery sent again, as a share of a delivery's regular lines.
REDELIVERED_SHARE: Final = 0.02
#: Per later delivery: sign-ups as a share of the initial customers; changed and re-sent
#: records as a share of the customers delivered (validly) so far.
NEW_CUSTOMER_SHARE: Final = 0.003
UPDATED_CUSTOMER_SHARE: Final = 0.01
REDELIVERED_CUSTOMER_SHARE: Final = 0.005
#: Mean purchases per day of a consumer before segment and opt-in effects; tuned so that
#: 100k customers give about 10M transactions over 120 + 5 days.
MEAN_DAILY_PURCHASES: Final = 1.0
RATE_SIGMA: Final = 1.0
#: Share of consumers who churn during the data or up to CHURN_HORIZON_DAYS after it.
CHURN_SHARE: Final = 0.35
CHURN_HORIZON_DAYS: Final = 60
CHURN_DECAY_DAYS: Final = (14, 60)
#: Share of customers who pause (a holiday, a move) for PAUSE_DAYS and then come back, so
#: that a quiet spell alone does not give churn away.
PAUSE_SHARE: Final = 0.25
PAUSE_DAYS: Final = (7, 40)
#: Segment effects, applied as step ** (position of the segment in the contract).
RATE_SEGMENT_STEP: Final = 0.6
SPEND_SEGMENT_STEP: Final = 2.5
CHURN_SEGMENT_STEP: Final = 0.6
REFUND_SHARE: Final = 0.02
DRIFT_AMOUNT_FACTOR: Final = 1.6
DRIFT_CHANNEL: Final = "app"
DRIFT_CHANNEL_SHARE: Final = 0.35
#: Labels used as unknown categories; any the contract allows are skipped.
UNKNOWN_LABELS: Final = ("other", "legacy", "XX")
#: What a proxy writes into a file when the export behind it times out.
GARBAGE_LINE: Final = "<html><body>504 Gateway Time-out</body></html>"
SIGNUP_YEARS: Final = 6

INVALID_KINDS: Final = (
    "malformed",
    "null_key",
    "null_required",
    "unknown_category",
    "bad_cast",
    "out_of_range",
)
KINDS: Final = (*INVALID_KINDS, "redelivered", "late", "updated")
_CODE: Final = MappingProxyType({kind: i + 1 for i, kind in enumerate(KINDS)})  # 0: clean
_FIELD_KINDS: Final = INVALID_KINDS[1:]
_EPOCH: Final = datetime.date(1970, 1, 1)
_DAY: Final = 86_400
_NUMERIC: Final = re.compile(r"^(int|bigint|double|float|decimal\(\d+,\s*(\d+)\))$")
_ID_PATTERN: Final = re.compile(r"^\^([A-Za-z]*)\[0-9\]\{(\d+)\}\$$")

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


# --- public API --------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryCounts:
    """One delivery of one source: its files, its lines and how many carry each kind."""

    source: str
    delivery_date: datetime.date
    files: tuple[Path, ...]
    lines: int
    malformed: int = 0
    null_key: int = 0
    null_required: int = 0
    unknown_category: int = 0
    bad_cast: int = 0
    out_of_range: int = 0
    redelivered: int = 0
    late: int = 0
    updated: int = 0

    @property
    def invalid(self) -> int:
        """Lines the ingest must quarantine: those with one of INVALID_KINDS."""
        return sum(getattr(self, kind) for kind in INVALID_KINDS)


@dataclass(frozen=True)
class DemoSummary:
    """What generate_demo_data wrote: one DeliveryCounts per source and delivery day."""

    raw_root: Path
    deliveries: tuple[DeliveryCounts, ...]

    def delivery(self, source: str, delivery_date: datetime.date) -> DeliveryCounts:
        """The counts of `source` delivered on `delivery_date`; KeyError when not written."""
        for counts in self.deliveries:
            if counts.source == source and counts.delivery_date == delivery_date:
                return counts
        raise KeyError(f"no delivery of '{source}' on {delivery_date.isoformat()}")

    def total(self, source: str, kind: str = "lines") -> int:
        """The sum of `kind` (`lines` or one of KINDS) over all deliveries of `source`."""
        if kind != "lines" and kind not in KINDS:
            raise ValueError(f"unknown kind '{kind}' (expected 'lines' or one of {KINDS})")
        return sum(getattr(c, kind) for c in self.deliveries if c.source == source)


def generate_demo_data(
    raw_root: Path,
    *,
    customers: int,
    days: int,
    seed: int,
    start: datetime.date,
    history_days: int = 120,
    drift_day: int | None = None,
) -> DemoSummary:
    """Write `days` daily deliveries of customers and transactions under `raw_root`.

    The same arguments give byte-identical files; a day folder is replaced as a whole.

    Example:
        >>> generate_demo_data(Path("raw"), customers=200, days=3, seed=1,
        ...                    start=datetime.date(2026, 3, 1)).total("transactions")
        16733

    Args:
        raw_root: the folder holding one sub-folder per source.
        customers: customers in the first (full) extract; later days add a few.
        days: delivery days, starting with `start`.
        seed: seed of every random draw.
        start: the first delivery day.
        history_days: days of transaction history the first delivery carries.
        drift_day: index of the first delivery whose events drift; None: no drift.

    Returns:
        DemoSummary: lines and injected kinds per source and delivery day.

    Raises:
        ConfigError: an argument is out of its range; the message names it.
        ContractError: a raw contract lacks what the generator needs.
    """
    _check_arguments(customers, days, seed, history_days, drift_day)
    plan = _plan(start, days, history_days, drift_day)
    customer_contract = load_contract("customers")
    transaction_contract = load_contract("transactions")
    population_rng, customer_rng, transaction_rng = np.random.default_rng(seed).spawn(3)
    crm = _draw_crm(population_rng, customers, plan, customer_contract)
    behaviour = _draw_behaviour(population_rng, crm, plan, transaction_contract)
    events = _draw_events(population_rng, crm, behaviour, plan)
    root = Path(raw_root)
    written = _CustomerDeliveries(customer_contract, crm, plan, customer_rng).write(root)
    written += _TransactionDeliveries(
        transaction_contract, crm, behaviour, events, plan, transaction_rng
    ).write(root)
    return DemoSummary(raw_root=root, deliveries=tuple(written))


def _check_arguments(
    customers: int, days: int, seed: int, history_days: int, drift_day: int | None
) -> None:
    """Raise ConfigError naming the first argument outside its range."""
    if customers < 1:
        raise ConfigError(f"generate-demo-data: customers must be >= 1, got {customers}")
    if days < 1:
        raise ConfigError(f"generate-demo-data: days must be >= 1, got {days}")
    if seed < 0:
        raise ConfigError(f"generate-demo-data: seed must be >= 0, got {seed}")
    if history_days < 0:
        raise ConfigError(f"generate-demo-data: history_days must be >= 0, got {history_days}")
    if drift_day is not None and not 0 <= drift_day < days:
        raise ConfigError(
            f"generate-demo-data: drift_day must be in [0, {days - 1}] (an index of a "
            f"delivery day) or None, got {drift_day}"
        )


# --- the plan and the population ---------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """The calendar of a run, in days since 1970-01-01."""

    start_day: int
    days: int
    first_event_day: int
    drift_from_day: float  # events on or after this day drift; inf: no drift

    @property
    def last_event_day(self) -> int:
        """The last day whose events are delivered on time (the day before the last delivery)."""
        return self.start_day + self.days - 2

    def delivery_date(self, index: int) -> datetime.date:
        """The calendar date of delivery `index`."""
        return _EPOCH + datetime.timedelta(days=self.start_day + index)


def _plan(start: datetime.date, days: int, history_days: int, drift_day: int | None) -> _Plan:
    """Turn the public arguments into day numbers."""
    start_day = (start - _EPOCH).days
    first_event_day = start_day - history_days
    if drift_day is None:
        drift_from = math.inf
    else:
        # Delivery k carries the events of day k - 1; delivery 0 carries the whole history.
        drift_from = float(first_event_day if drift_day == 0 else start_day + drift_day - 1)
    return _Plan(start_day, days, first_event_day, drift_from)


@dataclass
class _Crm:
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
class _Behaviour:
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


def _draw_crm(rng: np.random.Generator, initial: int, plan: _Plan, contract: Contract) -> _Crm:
    """Draw the initial customers and those who sign up on each later delivery day."""
    signup = _draw_signup_days(rng, initial, plan, contract.column("signup_date"))
    _, width = _id_format(contract.column("customer_id"))
    if signup.size >= 10**width:
        raise ConfigError(f"generate-demo-data: customers must be < {10**width}, got {initial}")
    n = signup.size
    segments = len(_allowed(contract, "segment"))
    segment = rng.choice(segments, size=n, p=_skewed(segments, 0.2))
    countries = len(_allowed(contract, "country"))
    country = rng.choice(countries, size=n, p=_skewed(countries, 0.75))
    country[rng.random(n) < 0.03] = -1
    birth_low, birth_high = (int(v) for v in _range(contract, "birth_year"))
    birth_year = np.clip(np.rint(rng.normal(1978, 14, n)), birth_low, birth_high).astype(np.int64)
    # The first segment is private persons: only they have a birth year, and not always.
    birth_year[(segment != 0) | (rng.random(n) < 0.06)] = -1
    opt_in = rng.choice(np.array([1, 0, -1]), size=n, p=[0.55, 0.35, 0.10])
    # A record was last changed some time between sign-up and the extract.
    span = np.maximum(plan.start_day - signup, 1) * _DAY
    updated_at = signup * _DAY + (rng.random(n) * span).astype(np.int64)
    return _Crm(
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
    rng: np.random.Generator, initial: int, plan: _Plan, spec: ColumnSpec
) -> IntArray:
    """Sign-up days: the initial customers before start, then a few per later delivery."""
    low = max(plan.start_day - SIGNUP_YEARS * 365, _day_number(spec.range[0] if spec.range else 0))
    existing = np.sort(rng.integers(low, plan.start_day, size=initial))
    per_day = np.maximum(rng.poisson(initial * NEW_CUSTOMER_SHARE, size=plan.days - 1), 1)
    # Delivery d (d >= 1) carries the customers who signed up on day d - 1.
    new = np.repeat(plan.start_day + np.arange(plan.days - 1, dtype=np.int64), per_day)
    return np.concatenate([existing, new]).astype(np.int64)


def _draw_behaviour(
    rng: np.random.Generator, crm: _Crm, plan: _Plan, contract: Contract
) -> _Behaviour:
    """Draw purchase rates, churn, spend and preferences, with segment and opt-in effects."""
    n = crm.number.size
    mu = math.log(MEAN_DAILY_PURCHASES) - RATE_SIGMA**2 / 2  # so that the mean is as named
    opt_in_effect = np.where(crm.opt_in == 1, 1.2, 1.0)
    rate = rng.lognormal(mu, RATE_SIGMA, n) * RATE_SEGMENT_STEP**crm.segment * opt_in_effect
    churns = rng.random(n) < CHURN_SHARE * CHURN_SEGMENT_STEP**crm.segment
    churn_day = rng.uniform(plan.first_event_day, plan.last_event_day + CHURN_HORIZON_DAYS, n)
    pauses = rng.random(n) < PAUSE_SHARE
    pause_day = rng.uniform(plan.first_event_day, plan.last_event_day + 1, n)
    channels = _allowed(contract, "channel")
    channel_alpha = np.tile(4 * _skewed(len(channels), 0.6), (n, 1))
    # Younger customers lean towards the app even before any drift.
    channel_alpha[crm.birth_year >= 1990, channels.index(_drift_channel(contract))] *= 2.5
    categories = len(_allowed(contract, "category"))
    category_alpha = np.tile(2 * _skewed(categories, 0.85), (n, 1))
    return _Behaviour(
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


# --- events ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Events:
    """All purchases in event-time order; the position + 1 is the transaction number."""

    customer: IntArray
    time: IntArray  # seconds since 1970-01-01 UTC
    delivery: IntArray  # index of the delivery carrying the event, -1: after the last one
    late: BoolArray


def _draw_events(
    rng: np.random.Generator, crm: _Crm, behaviour: _Behaviour, plan: _Plan
) -> _Events:
    """Draw every purchase day by day (vectorised over customers) and its delivery."""
    customers: list[IntArray] = []
    times: list[IntArray] = []
    everyone = np.arange(crm.number.size, dtype=np.int64)
    hour_p = _hour_weights()
    for day in range(plan.first_event_day, plan.last_event_day + 1):
        activity = _activity(behaviour, day)
        expected = behaviour.rate * activity * _weekday_factor(day)
        counts = rng.poisson(np.where(crm.signup_day <= day, expected, 0.0))
        who = np.repeat(everyone, counts)
        second = rng.choice(24, size=who.size, p=hour_p) * 3600 + rng.integers(0, 3600, who.size)
        order = np.argsort(second, kind="stable")
        customers.append(who[order])
        times.append(day * _DAY + second[order])
    time = np.concatenate(times) if times else np.zeros(0, dtype=np.int64)
    delivery, late = _draw_deliveries(rng, time // _DAY, plan)
    customer = np.concatenate(customers) if customers else np.zeros(0, dtype=np.int64)
    return _Events(customer=customer, time=time, delivery=delivery, late=late)


def _activity(behaviour: _Behaviour, day: int) -> FloatArray:
    """Each customer's share of their rate on `day`: fading before churn, zero in a pause."""
    fading = np.clip((behaviour.churn_day - day) / behaviour.decay_days, 0.0, 1.0)
    pausing = (day >= behaviour.pause_day) & (day < behaviour.pause_day + behaviour.pause_days)
    return np.where(pausing, 0.0, fading)


def _draw_deliveries(
    rng: np.random.Generator, event_day: IntArray, plan: _Plan
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


def _draw_from_cdf(rng: np.random.Generator, cdf: FloatArray) -> IntArray:
    """One label index per row of a cumulative-share matrix."""
    return (cdf < rng.random((cdf.shape[0], 1))).sum(axis=1).astype(np.int64)


# --- text of values ----------------------------------------------------------------------


def _id_format(spec: ColumnSpec) -> tuple[str, int]:
    """The prefix and digit count of an identifier, read from its pattern (`^C[0-9]{7}$`)."""
    match = _ID_PATTERN.match(spec.pattern or "")
    if not match:
        raise ContractError(
            f"column '{spec.name}': the demo generator needs a pattern like '^C[0-9]{{7}}$', "
            f"got {spec.pattern!r}"
        )
    return match.group(1), int(match.group(2))


def _ids(spec: ColumnSpec, numbers: IntArray) -> pa.Array:
    """Identifiers as the contract's pattern spells them."""
    prefix, width = _id_format(spec)
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _dates(days: IntArray) -> pa.Array:
    """ISO dates of day numbers."""
    return pc.cast(pa.array(days.astype(np.int32), pa.date32()), pa.string())


def _timestamps(seconds: IntArray) -> pa.Array:
    """ISO 8601 UTC timestamps with whole seconds: `2026-03-01T13:45:10Z`."""
    text = pc.cast(pa.array(seconds, pa.timestamp("s")), pa.string())
    return pc.binary_join_element_wise(pc.replace_substring(text, " ", "T"), "Z", "")


def _labels(labels: tuple[str, ...], index: IntArray) -> pa.Array:
    """Labels by position; a negative position is a null."""
    return pc.take(pa.array(labels, pa.string()), pa.array(index, mask=index < 0))


def _integers(values: IntArray) -> pa.Array:
    """Integers as text; a negative value is a null."""
    return pc.cast(pa.array(values, mask=values < 0), pa.string())


def _booleans(values: IntArray) -> pa.Array:
    """`true` / `false` for 1 / 0; a negative value is a null."""
    return _labels(("false", "true"), values)


def _cents(cents: IntArray) -> pa.Array:
    """Amounts in cents as decimals with two places: `12.50`, `-0.05`."""
    magnitude = np.abs(cents)
    sign = pc.if_else(pa.array(cents < 0), "-", "")
    units = pc.cast(pa.array(magnitude // 100), pa.string())
    hundredths = pc.utf8_lpad(pc.cast(pa.array(magnitude % 100), pa.string()), 2, "0")
    return pc.binary_join_element_wise(sign, units, ".", hundredths, "")


def _day_number(value: Any) -> int:
    """Days since 1970-01-01 of a contract date (a date or an ISO string)."""
    return (datetime.date.fromisoformat(str(value)) - _EPOCH).days


def _allowed(contract: Contract, column: str) -> tuple[str, ...]:
    """The allowed values of a column; ContractError when the contract has none."""
    allowed = contract.column(column).allowed
    if not allowed:
        raise ContractError(f"{contract.path}: column '{column}' needs 'allowed' for the demo")
    return allowed


def _range(contract: Contract, column: str) -> tuple[Any, Any]:
    """The range of a column; ContractError when the contract has none."""
    value_range = contract.column(column).range
    if value_range is None:
        raise ContractError(f"{contract.path}: column '{column}' needs 'range' for the demo")
    return value_range


def _drift_channel(contract: Contract) -> str:
    """DRIFT_CHANNEL, checked against the contract's channels."""
    if DRIFT_CHANNEL not in _allowed(contract, "channel"):
        raise ContractError(f"{contract.path}: channel '{DRIFT_CHANNEL}' is not allowed")
    return DRIFT_CHANNEL


# --- dirt --------------------------------------------------------------------------------

CodeArray = NDArray[np.int8]


def _share_count(rng: np.random.Generator, eligible: int, share: float) -> int:
    """How many of `eligible` lines get a kind: binomial, at least one in larger deliveries."""
    count = int(rng.binomial(eligible, share)) if eligible else 0
    return max(count, 1) if eligible >= EVERY_DEFECT_FROM_LINES else count


def _pick(rng: np.random.Generator, pool: IntArray, count: int) -> IntArray:
    """`count` distinct members of `pool` (all when fewer), in ascending order."""
    chosen = rng.choice(pool, size=min(count, pool.size), replace=False)
    return np.sort(chosen).astype(np.int64)


def _assign_defects(
    rng: np.random.Generator, codes: CodeArray, eligible: BoolArray, contract: Contract
) -> None:
    """Give a few eligible lines one defect each, in place; no line gets two."""
    kinds = [k for k in INVALID_KINDS if k == "malformed" or _defect_columns(contract, k)]
    candidates = np.flatnonzero(eligible)
    counts = [_share_count(rng, candidates.size, DIRT_SHARES[k]) for k in kinds]
    total = min(sum(counts), candidates.size)
    chosen = rng.choice(candidates, size=total, replace=False)
    codes[chosen] = np.repeat(np.array([_CODE[k] for k in kinds], dtype=np.int8), counts)[:total]


def _defect_columns(contract: Contract, kind: str) -> tuple[ColumnSpec, ...]:
    """The columns a field defect can hit; identifiers are the columns with a pattern."""
    checks: dict[str, Callable[[ColumnSpec], bool]] = {
        "null_key": lambda c: not c.nullable and c.pattern is not None,
        "null_required": lambda c: not c.nullable and c.pattern is None,
        "unknown_category": lambda c: c.allowed is not None,
        "bad_cast": lambda c: c.type != "string",
        "out_of_range": lambda c: c.range is not None and (c.type == "date" or _is_number(c)),
    }
    return tuple(c for c in contract.columns if checks[kind](c))


def _is_number(spec: ColumnSpec) -> bool:
    """Whether the column holds a number (written bare in JSON)."""
    return _NUMERIC.match(spec.type) is not None


def _is_json_string(spec: ColumnSpec) -> bool:
    """Whether JSON lines write the column's values as strings."""
    return not _is_number(spec) and spec.type != "boolean"


def _bad_text(
    kind: str, spec: ColumnSpec, clean: pa.Array, rng: np.random.Generator
) -> tuple[pa.Array, bool]:
    """The spoiled text of `clean` values for a field defect, and whether JSON quotes it."""
    if kind in ("null_key", "null_required"):
        return pa.nulls(len(clean), pa.string()), False
    if kind == "unknown_category":
        labels = tuple(label for label in UNKNOWN_LABELS if label not in (spec.allowed or ()))
        if not labels:
            raise ContractError(f"column '{spec.name}' allows every label of UNKNOWN_LABELS")
        return _labels(labels, rng.integers(len(labels), size=len(clean))), True
    if kind == "bad_cast":
        return _uncastable(spec, clean), True
    return _out_of_range(spec, len(clean), rng), _is_json_string(spec)


def _uncastable(spec: ColumnSpec, clean: pa.Array) -> pa.Array:
    """Values that look right to a person but fail the cast to the column's type."""
    if spec.type in ("date", "timestamp"):
        # A local date format instead of ISO: 15.03.2026 (13:45).
        clean = pc.fill_null(clean, "1970-01-01T00:00:00Z")
        day = pc.utf8_slice_codeunits(clean, 8, 10)
        month = pc.utf8_slice_codeunits(clean, 5, 7)
        local = pc.binary_join_element_wise(day, month, pc.utf8_slice_codeunits(clean, 0, 4), ".")
        if spec.type == "date":
            return local
        return pc.binary_join_element_wise(local, pc.utf8_slice_codeunits(clean, 11, 16), " ")
    if spec.type == "boolean":
        return pc.if_else(pc.equal(pc.fill_null(clean, "true"), "false"), "nein", "ja")
    # A decimal comma and the letter O for the last digit: 12.50 -> 12,5O. The letter makes
    # every parser fail; a comma alone would pass a locale-aware one (12,50 -> 1250).
    filled = pc.fill_null(clean, str(spec.range[0]) if spec.range else "0")
    commas = pc.replace_substring(pc.utf8_slice_codeunits(filled, 0, -1), ".", ",")
    return pc.binary_join_element_wise(commas, "O", "")


def _out_of_range(spec: ColumnSpec, count: int, rng: np.random.Generator) -> pa.Array:
    """Values one range-width below or above the contract's range."""
    assert spec.range is not None  # _defect_columns only offers columns with a range
    if spec.type == "date":
        low, high = (datetime.date.fromisoformat(str(v)) for v in spec.range)
        span = min(high - low, low - datetime.date.min, datetime.date.max - high)
        options = ((low - span).isoformat(), (high + span).isoformat())
    else:
        low_number, high_number = float(spec.range[0]), float(spec.range[1])
        width = high_number - low_number
        options = (_number_text(spec, low_number - width), _number_text(spec, high_number + width))
    return _labels(options, rng.integers(2, size=count))


def _number_text(spec: ColumnSpec, value: float) -> str:
    """A number as the column's type writes it: decimals with their scale, integers bare."""
    match = _NUMERIC.match(spec.type)
    if match and match.group(2) is not None:
        return f"{value:.{int(match.group(2))}f}"
    return str(int(value)) if spec.type in ("int", "bigint") else repr(value)


def _replace_rows(values: pa.Array, rows: IntArray, replacements: pa.Array) -> pa.Array:
    """`values` with the ascending positions `rows` replaced, in order, by `replacements`."""
    mask = np.zeros(len(values), dtype=np.bool_)
    mask[rows] = True
    return pc.replace_with_mask(values, pa.array(mask), replacements)


# --- formats -----------------------------------------------------------------------------


def _cut(lines: pa.Array, chars: int) -> pa.Array:
    """Lines missing their last `chars` characters, as after an interrupted write."""
    return pc.utf8_slice_codeunits(lines, 0, -chars)


def _garbage(lines: pa.Array) -> pa.Array:
    """An error page where the lines should be."""
    return pa.repeat(pa.scalar(GARBAGE_LINE, pa.string()), len(lines))


def _wrong_delimiter(lines: pa.Array) -> pa.Array:
    """CSV lines written with `;`, a one-field line for a comma-separated reader."""
    return pc.replace_substring(lines, ",", ";")


class _Format(Protocol):
    """How a source writes a field and a line, and how a line breaks."""

    malformations: tuple[Callable[[pa.Array], pa.Array], ...]

    def encode(self, text: pa.Array, as_string: bool) -> pa.Array:
        """The field text as written in a line, nulls included."""
        ...

    def join(self, names: tuple[str, ...], fields: list[pa.Array]) -> pa.Array:
        """One line per row from the encoded fields, in contract order."""
        ...


class _JsonLines:
    """JSON lines: strings quoted, numbers and booleans bare, nulls `null`."""

    malformations: tuple[Callable[[pa.Array], pa.Array], ...] = (
        partial(_cut, chars=1),
        partial(_cut, chars=25),
        _garbage,
    )

    def encode(self, text: pa.Array, as_string: bool) -> pa.Array:
        """Quote strings (the values hold no quotes or backslashes); null becomes `null`."""
        if as_string:
            text = pc.binary_join_element_wise('"', text, '"', "")
        return pc.fill_null(text, "null")

    def join(self, names: tuple[str, ...], fields: list[pa.Array]) -> pa.Array:
        """`{"name":value,...}` with the keys in contract order."""
        parts: list[Any] = []
        for i, (name, field) in enumerate(zip(names, fields, strict=True)):
            parts += [('{"' if i == 0 else ',"') + name + '":', field]
        return pc.binary_join_element_wise(*parts, "}", "")


class _Csv:
    """CSV: comma separated, minimal RFC 4180 quoting, nulls empty."""

    malformations: tuple[Callable[[pa.Array], pa.Array], ...] = (
        _wrong_delimiter,
        partial(_cut, chars=30),
        _garbage,
    )

    def encode(self, text: pa.Array, as_string: bool) -> pa.Array:
        """Quote a field only when it holds a comma or a quote; null becomes empty."""
        text = pc.fill_null(text, "")
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
        return pc.if_else(pc.match_substring_regex(text, '[,"]'), quoted, text)

    def join(self, names: tuple[str, ...], fields: list[pa.Array]) -> pa.Array:
        """Fields joined by commas."""
        return pc.binary_join_element_wise(*fields, ",")


_JSON: Final = _JsonLines()
_CSV: Final = _Csv()


def _render(
    contract: Contract,
    texts: dict[str, pa.Array],
    codes: CodeArray,
    rng: np.random.Generator,
    fmt: _Format,
) -> pa.Array:
    """The lines of rows given as clean column texts, each spoiled as its code says."""
    if set(texts) != set(contract.column_names):
        differ = sorted(set(texts) ^ set(contract.column_names))
        raise ContractError(f"{contract.path}: the demo generator does not fill {differ}")
    fields = {c.name: fmt.encode(texts[c.name], _is_json_string(c)) for c in contract.columns}
    for kind in _FIELD_KINDS:
        rows = np.flatnonzero(codes == _CODE[kind])
        if rows.size:
            _spoil_fields(kind, rows, contract, texts, fields, rng, fmt)
    lines = fmt.join(contract.column_names, [fields[name] for name in contract.column_names])
    return _malform(lines, np.flatnonzero(codes == _CODE["malformed"]), rng, fmt)


def _spoil_fields(
    kind: str,
    rows: IntArray,
    contract: Contract,
    texts: dict[str, pa.Array],
    fields: dict[str, pa.Array],
    rng: np.random.Generator,
    fmt: _Format,
) -> None:
    """Give one field of each of `rows` the defect `kind`, in place in `fields`."""
    columns = _defect_columns(contract, kind)
    target = rng.integers(len(columns), size=rows.size)
    for i, spec in enumerate(columns):
        hit = rows[target == i]
        if hit.size:
            bad, as_string = _bad_text(kind, spec, pc.take(texts[spec.name], pa.array(hit)), rng)
            fields[spec.name] = _replace_rows(fields[spec.name], hit, fmt.encode(bad, as_string))


def _malform(lines: pa.Array, rows: IntArray, rng: np.random.Generator, fmt: _Format) -> pa.Array:
    """`lines` with the lines at `rows` broken, each by one of the format's malformations."""
    variant = rng.integers(len(fmt.malformations), size=rows.size)
    for i, malformation in enumerate(fmt.malformations):
        hit = rows[variant == i]
        if hit.size:
            lines = _replace_rows(lines, hit, malformation(pc.take(lines, pa.array(hit))))
    return lines


# --- files -------------------------------------------------------------------------------


def _file_name(contract: Contract, day: datetime.date, part: int | None = None) -> str:
    """The contract's file glob with the `*` filled: the day and, for parts, the part."""
    glob = contract.file_glob or ""
    if glob.count("*") != 1:
        raise ContractError(f"{contract.path}: file_glob must hold one '*', got {glob!r}")
    fill = day.isoformat() if part is None else f"{day.isoformat()}_part-{part:04d}"
    return glob.replace("*", fill)


@contextmanager
def _day_folder(raw_root: Path, source: str, day: datetime.date) -> Iterator[Path]:
    """A fresh staging folder for one delivery, moved over the day's folder when complete.

    Readers skip names starting with a dot, so they never see a half-written day.
    """
    final = raw_root / source / day.isoformat()
    staging = raw_root / source / f".{day.isoformat()}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)


def _write_lines(path: Path, lines: pa.Array, header: str | None = None) -> None:
    """Write each line followed by "\\n" straight from the Arrow buffer (no Python strings)."""
    with path.open("wb") as handle:
        if header is not None:
            handle.write(header.encode("utf-8") + b"\n")
        if len(lines) == 0:
            return
        text = pc.binary_join_element_wise(lines, "\n", "")
        _, offsets, data = text.buffers()
        width = 8 if text.type == pa.large_string() else 4
        bounds = np.frombuffer(offsets, dtype=f"<i{width}", count=len(text) + 1, offset=0)
        bounds = bounds[text.offset : text.offset + len(text) + 1]
        handle.write(memoryview(data)[int(bounds[0]) : int(bounds[-1])])


def _counts(
    source: str, day: datetime.date, files: tuple[Path, ...], codes: CodeArray
) -> DeliveryCounts:
    """Tally the kinds of the lines of one delivery."""
    tally = np.bincount(codes.astype(np.int64), minlength=len(KINDS) + 1)
    kinds = {kind: int(tally[_CODE[kind]]) for kind in KINDS}
    return DeliveryCounts(source, day, files, int(codes.size), **kinds)


def _codes(size: int, kind: str) -> CodeArray:
    """`size` lines of one kind."""
    return np.full(size, _CODE[kind], dtype=np.int8)


# --- customers ---------------------------------------------------------------------------


class _CustomerDeliveries:
    """The CRM's daily deliveries: a full extract, then new, changed and re-sent records."""

    def __init__(
        self, contract: Contract, crm: _Crm, plan: _Plan, rng: np.random.Generator
    ) -> None:
        self.contract, self.crm, self.plan, self.rng = contract, crm, plan, rng
        self.segments = _allowed(contract, "segment")
        self.countries = _allowed(contract, "country")

    def write(self, raw_root: Path) -> list[DeliveryCounts]:
        """Write every delivery day's file and return their counts."""
        written = []
        header = ",".join(self.contract.column_names)
        for index in range(self.plan.days):
            rows, codes = self._extract() if index == 0 else self._changes(index)
            lines = _render(self.contract, self._texts(rows), codes, self.rng, _CSV)
            valid = np.isin(codes, (0, _CODE["updated"], _CODE["redelivered"]))
            self.crm.delivered_clean[rows] = valid
            day = self.plan.delivery_date(index)
            name = _file_name(self.contract, day)
            with _day_folder(raw_root, self.contract.name, day) as folder:
                _write_lines(folder / name, lines, header)
            path = raw_root / self.contract.name / day.isoformat() / name
            written.append(_counts(self.contract.name, day, (path,), codes))
        return written

    def _extract(self) -> tuple[IntArray, CodeArray]:
        """Delivery 0: every customer who signed up before the first delivery day."""
        rows = np.flatnonzero(self.crm.signup_day < self.plan.start_day).astype(np.int64)
        codes = np.zeros(rows.size, dtype=np.int8)
        _assign_defects(self.rng, codes, np.ones(rows.size, dtype=np.bool_), self.contract)
        return rows, codes

    def _changes(self, index: int) -> tuple[IntArray, CodeArray]:
        """Delivery `index`: sign-ups of the day before, changed and re-sent records."""
        crm, rng = self.crm, self.rng
        today = self.plan.start_day + index - 1
        new = np.flatnonzero(crm.signup_day == today).astype(np.int64)
        known = np.flatnonzero(crm.delivered_clean).astype(np.int64)
        updated = _pick(rng, known, _share_count(rng, known.size, UPDATED_CUSTOMER_SHARE) or 1)
        rest = np.setdiff1d(known, updated)
        resent = _pick(rng, rest, _share_count(rng, rest.size, REDELIVERED_CUSTOMER_SHARE) or 1)
        self._update(updated, today)
        new_codes = np.zeros(new.size, dtype=np.int8)
        _assign_defects(rng, new_codes, np.ones(new.size, dtype=np.bool_), self.contract)
        rows = np.concatenate([new, updated, resent])
        codes = np.concatenate(
            [new_codes, _codes(updated.size, "updated"), _codes(resent.size, "redelivered")]
        )
        order = np.argsort(crm.number[rows], kind="stable")
        return rows[order], codes[order]

    def _update(self, rows: IntArray, today: int) -> None:
        """Change one of segment, country or opt-in of each row, stamped during `today`."""
        crm, rng = self.crm, self.rng
        what = rng.integers(3, size=rows.size)
        segment = rows[what == 0]
        shift = rng.integers(1, len(self.segments), size=segment.size)
        crm.segment[segment] = (crm.segment[segment] + shift) % len(self.segments)
        # Only the first segment (private persons) has a birth year.
        crm.birth_year[segment[crm.segment[segment] != 0]] = -1
        country = rows[what == 1]
        shift = rng.integers(1, len(self.countries), size=country.size)
        moved = (crm.country[country] + shift) % len(self.countries)
        crm.country[country] = np.where(crm.country[country] < 0, shift, moved)
        opt_in = rows[what == 2]
        crm.opt_in[opt_in] = np.where(crm.opt_in[opt_in] == 1, 0, 1)
        crm.updated_at[rows] = today * _DAY + rng.integers(0, _DAY, size=rows.size)

    def _texts(self, rows: IntArray) -> dict[str, pa.Array]:
        """The clean text of every column of the CRM rows `rows`."""
        crm = self.crm
        return {
            "customer_id": _ids(self.contract.column("customer_id"), crm.number[rows]),
            "signup_date": _dates(crm.signup_day[rows]),
            "country": _labels(self.countries, crm.country[rows]),
            "segment": _labels(self.segments, crm.segment[rows]),
            "birth_year": _integers(crm.birth_year[rows]),
            "marketing_opt_in": _booleans(crm.opt_in[rows]),
            "updated_at": _timestamps(crm.updated_at[rows]),
        }


# --- transactions ------------------------------------------------------------------------


class _TransactionDeliveries:
    """The order system's daily deliveries: backfill, then yesterday, late and re-sent lines."""

    def __init__(
        self,
        contract: Contract,
        crm: _Crm,
        behaviour: _Behaviour,
        events: _Events,
        plan: _Plan,
        rng: np.random.Generator,
    ) -> None:
        self.contract, self.crm, self.behaviour = contract, crm, behaviour
        self.events, self.plan, self.rng = events, plan, rng
        self.categories = _allowed(contract, "category")
        self.channels = _allowed(contract, "channel")
        self.drift_channel = self.channels.index(_drift_channel(contract))
        low, high = _range(contract, "amount")
        self.cent_bounds = (round(float(low) * 100), round(float(high) * 100))

    def write(self, raw_root: Path) -> list[DeliveryCounts]:
        """Write every delivery day's part files and return their counts."""
        events, days = self.events, self.plan.days
        on_time = events.delivery[(events.delivery >= 0) & ~events.late]
        regular = np.bincount(on_time, minlength=days + 1)
        written = []
        carried = pa.array([], pa.string())  # lines of the previous delivery to send again
        for index in range(days):
            own = np.flatnonzero(events.delivery == index).astype(np.int64)
            codes = np.where(events.late[own], _CODE["late"], 0).astype(np.int8)
            _assign_defects(self.rng, codes, ~events.late[own], self.contract)
            resend = 0
            if index + 1 < days:
                resend = _share_count(self.rng, int(regular[index + 1]), REDELIVERED_SHARE)
            picks = self._pick_resend(index, own, codes, resend)
            files, next_carried = self._write_delivery(raw_root, index, carried, own, codes, picks)
            all_codes = np.concatenate([_codes(len(carried), "redelivered"), codes])
            day = self.plan.delivery_date(index)
            written.append(_counts(self.contract.name, day, files, all_codes))
            carried = next_carried
        return written

    def _pick_resend(self, index: int, own: IntArray, codes: CodeArray, count: int) -> IntArray:
        """Positions in `own` of valid on-time lines the next delivery sends again."""
        yesterday = self.plan.start_day + index - 1
        pool = np.flatnonzero((codes == 0) & (self.events.time[own] // _DAY == yesterday))
        return _pick(self.rng, pool.astype(np.int64), count)

    def _write_delivery(
        self,
        raw_root: Path,
        index: int,
        carried: pa.Array,
        own: IntArray,
        codes: CodeArray,
        picks: IntArray,
    ) -> tuple[tuple[Path, ...], pa.Array]:
        """Write one delivery in parts: the re-sent lines first, then its own events."""
        day = self.plan.delivery_date(index)
        total = len(carried) + own.size
        parts = max(1, math.ceil(total / PART_LINES))
        size = math.ceil(total / parts)
        names, kept = [], []
        with _day_folder(raw_root, self.contract.name, day) as folder:
            for part in range(parts):
                low, high = part * size, min(total, (part + 1) * size)
                lines, picked = self._part(carried, own, codes, picks, low, high)
                names.append(_file_name(self.contract, day, part))
                _write_lines(folder / names[-1], lines)
                kept.append(picked)
        final = raw_root / self.contract.name / day.isoformat()
        return tuple(final / name for name in names), pa.concat_arrays(kept)

    def _part(
        self,
        carried: pa.Array,
        own: IntArray,
        codes: CodeArray,
        picks: IntArray,
        low: int,
        high: int,
    ) -> tuple[pa.Array, pa.Array]:
        """Lines `low:high` of a delivery, and those of its own lines picked to be re-sent."""
        head_low, head_high = min(low, len(carried)), min(high, len(carried))
        head = carried.slice(head_low, head_high - head_low)
        first, last = max(low - len(carried), 0), max(high - len(carried), 0)
        body = self._lines(own[first:last], codes[first:last])
        local = picks[(picks >= first) & (picks < last)] - first
        return pa.concat_arrays([head, body]), pc.take(body, pa.array(local))

    def _lines(self, rows: IntArray, codes: CodeArray) -> pa.Array:
        """The JSON lines of the events at `rows`, drawing what each customer bought."""
        customer, time = self.events.customer[rows], self.events.time[rows]
        category = _draw_from_cdf(self.rng, self.behaviour.category_cdf[customer])
        channel = _draw_from_cdf(self.rng, self.behaviour.channel_cdf[customer])
        drifted = time >= self.plan.drift_from_day * _DAY
        channel[drifted & (self.rng.random(rows.size) < DRIFT_CHANNEL_SHARE)] = self.drift_channel
        column = self.contract.column
        texts = {
            # Events are numbered in event-time order, so late lines keep their early numbers.
            "transaction_id": _ids(column("transaction_id"), rows + 1),
            "customer_id": _ids(column("customer_id"), self.crm.number[customer]),
            "event_time": _timestamps(time),
            "amount": _cents(self._cents(customer, category, drifted)),
            "category": _labels(self.categories, category),
            "channel": _labels(self.channels, channel),
        }
        return _render(self.contract, texts, codes, self.rng, _JSON)

    def _cents(self, customer: IntArray, category: IntArray, drifted: BoolArray) -> IntArray:
        """Amounts in cents: category price level x customer spend x noise; some refunds."""
        noise = self.rng.lognormal(0.0, 0.5, customer.size)
        amount = self.behaviour.price_level[category] * self.behaviour.spend[customer] * noise
        amount = np.maximum(np.where(drifted, amount * DRIFT_AMOUNT_FACTOR, amount), 0.5)
        amount = np.where(self.rng.random(customer.size) < REFUND_SHARE, -amount, amount)
        low, high = self.cent_bounds
        return np.clip(np.rint(amount * 100), low, high).astype(np.int64)
