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
DRIFT_SEGMENT_SHARE: Final = 0.4
#: Labels used as unknown categories; any the contract allows are skipped.
UNKNOWN_LABELS: Final = ("other", "legacy", "XX")
#: What a proxy writes into a file when the export behind it times out.
GARBAGE_LINE: Final = "<html><body>504 Gateway Time-out</body></html>"
SIGNUP_YEARS: Final = 6

#: The defects, in the order of DIRT_SHARES; a line with one of them is invalid.
INVALID_KINDS: Final = tuple(DIRT_SHARES)
KINDS: Final = (*INVALID_KINDS, "redelivered", "late", "updated")
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
