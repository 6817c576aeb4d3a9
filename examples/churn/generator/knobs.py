"""The demo generator's knobs, the kinds a line can carry, and the array types it uses."""

from __future__ import annotations

import datetime
from types import MappingProxyType
from typing import Final

import numpy as np
from numpy.typing import NDArray

#: Lines per transactions part file; a delivery is split into equal parts of at most this.
#: generate_demo_data reads it from the package (the package's `PART_LINES`) at each call.
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
#: Every customer has a latent engagement z ~ N(0, 1) that drives both what the data shows
#: (how often and how much they buy) and the hazard of lapsing (stopping for a while), with
#: noise on each, so the churn outcome follows the features without being a copy of one.
#: Mean purchases per day of an engaged consumer before segment and opt-in effects.
MEAN_DAILY_PURCHASES: Final = 0.12
#: Spread of log rate explained by engagement, and by chance.
RATE_ENGAGEMENT: Final = 0.6
RATE_SIGMA: Final = 0.5
#: Lapses: a customer stops buying after a fade of LAPSE_FADE_DAYS, for a spell of mean
#: LAPSE_MEAN_DAYS, then comes back. Daily hazard LAPSE_HAZARD x exp(-LAPSE_ENGAGEMENT z)
#: x LAPSE_SEGMENT_STEP ** segment, spells drawn from LAPSE_BURN_IN_DAYS before the history.
LAPSE_HAZARD: Final = 0.01
LAPSE_ENGAGEMENT: Final = 0.7
LAPSE_SEGMENT_STEP: Final = 0.05
LAPSE_MEAN_DAYS: Final = 45.0
LAPSE_FADE_DAYS: Final = (7, 45)
LAPSE_BURN_IN_DAYS: Final = 365
LAPSE_SPELLS: Final = 16
#: Share of customers who pause (a holiday, a move) for PAUSE_DAYS and then come back.
PAUSE_SHARE: Final = 0.25
PAUSE_DAYS: Final = (7, 40)
#: The outcome (churn: no purchase in the OUTCOME_HORIZON_DAYS after the as-of date, as
#: train.py labels it): the generator simulates that many days past the last delivery.
OUTCOME_HORIZON_DAYS: Final = 30
#: The outcome a planted bad line carries (the contract allows 0 and 1 only).
BAD_OUTCOME: Final = 2
#: Segment effects, applied as step ** (position of the segment in the contract).
RATE_SEGMENT_STEP: Final = 1.8
SPEND_SEGMENT_STEP: Final = 2.5
REFUND_SHARE: Final = 0.02
#: The drift scenario: on delivery `drift_day` the client moves to new systems. From then
#: on its till system exports amounts in Swedish kronor instead of euros (about 11 SEK per
#: EUR; the values still pass the contract) and sends a share of purchases through its app;
#: the CRM migration re-sends a share of the private customers (the contract's first
#: segment) filed under the second segment. A change in one day's purchases alone hides in
#: the features' 7- to 365-day windows (only that day's buyers move); the re-filed
#: customers move the segment and the score on the drifted date itself (docs/monitoring.md).
DRIFT_AMOUNT_FACTOR: Final = 11.0
DRIFT_CHANNEL: Final = "app"
DRIFT_CHANNEL_SHARE: Final = 0.35
DRIFT_SEGMENT_SHARE: Final = 0.6
#: Share of the re-filed customers whom the migration drives away: from the drift day plus
#: up to MIGRATION_LAPSE_DELAY days they stop buying, without warning, for a lapse.
MIGRATION_LAPSE_SHARE: Final = 0.8
MIGRATION_LAPSE_DELAY: Final = 7
#: Labels used as unknown categories; any the contract allows are skipped.
UNKNOWN_LABELS: Final = ("other", "legacy", "XX")
#: What a proxy writes into a file when the export behind it times out.
GARBAGE_LINE: Final = "<html><body>504 Gateway Time-out</body></html>"
SIGNUP_YEARS: Final = 6

#: The defects, in the order of DIRT_SHARES; a line with one of them is invalid.
INVALID_KINDS: Final = tuple(DIRT_SHARES)
#: Kinds of the outcome drop only: a key sent twice with different outcomes (both lines are
#: quarantined as a conflict), a customer the CRM does not know (valid for the contract).
OUTCOME_KINDS: Final = ("conflicting", "unknown_entity")
KINDS: Final = (*INVALID_KINDS, "redelivered", "late", "updated", *OUTCOME_KINDS)
#: The code of each kind in a CodeArray; 0 is a clean line.
CODE: Final = MappingProxyType({kind: i + 1 for i, kind in enumerate(KINDS)})
#: The defects that spoil one field (the others, `malformed`, break the whole line).
FIELD_KINDS: Final = INVALID_KINDS[1:]
EPOCH: Final = datetime.date(1970, 1, 1)
#: Seconds per day: times are seconds and days are day numbers since EPOCH.
DAY: Final = 86_400

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
#: One code (CODE) per line of a delivery.
CodeArray = NDArray[np.int8]
