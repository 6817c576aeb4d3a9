"""The outcome extract: per scored as-of date and customer, whether they churned.

Churn is train.py's label: no purchase in the OUTCOME_HORIZON_DAYS after the as-of date D,
i.e. no event (refunds included, as `txn_count_30d` counts them) of the customer on a day in
(D, D + 30]. The generator simulates those days (they are never delivered as transactions),
so it knows the outcome of every delivery day. The client sends one extract (CSV) once the
30 days of the last delivery day but one are over (`arrival_date`): the outcomes of every
delivery day but the last, whose outcomes have not arrived yet. It plants a few bad lines
(BAD_OUTCOME, a key sent twice with two outcomes, a customer nobody knows).

On the arrival date the other sources deliver nothing new: their drops are empty (the
customers file holds only its header), so `scoring ingest --run-date <arrival>` runs.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from scoring.usecase import Contract

from .dirt import kind_codes
from .events import Events
from .files import day_folder, day_path, file_name, write_lines
from .formats import CSV, render
from .knobs import BAD_OUTCOME, CODE, DAY, EPOCH, OUTCOME_HORIZON_DAYS, IntArray
from .population import Crm, Plan
from .summary import DeliveryCounts, tally
from .values import date_text, id_format, id_text, integer_text, timestamp_text


def arrival_date(plan: Plan) -> datetime.date | None:
    """The day the outcome extract arrives: OUTCOME_HORIZON_DAYS after the last delivery
    day but one; None when there is a single delivery day (no outcome has arrived)."""
    if plan.days < 2:
        return None
    return plan.delivery_date(plan.days - 2) + datetime.timedelta(days=OUTCOME_HORIZON_DAYS)


def churned(events: Events, crm: Crm, as_of_day: int) -> tuple[IntArray, IntArray]:
    """(customers signed up by the as-of day, 1 when they have no event in (D, D + 30])."""
    event_day = events.time // DAY
    window = (event_day > as_of_day) & (event_day <= as_of_day + OUTCOME_HORIZON_DAYS)
    bought = np.bincount(events.customer[window], minlength=crm.number.size) > 0
    customers = np.flatnonzero(crm.signup_day <= as_of_day).astype(np.int64)
    return customers, (~bought[customers]).astype(np.int64)


class OutcomeDeliveries:
    """The outcome extract, and the empty drops of the other sources on its arrival date."""

    def __init__(
        self,
        contract: Contract,
        others: tuple[Contract, ...],
        crm: Crm,
        events: Events,
        plan: Plan,
        rng: np.random.Generator,
    ) -> None:
        self.contract, self.others, self.crm = contract, others, crm
        self.events, self.plan, self.rng = events, plan, rng

    def write(self, raw_root: Path) -> list[DeliveryCounts]:
        """Write the arrival date's drops; none when no outcome has arrived."""
        arrival = arrival_date(self.plan)
        if arrival is None:
            return []
        written = [self._write_outcomes(raw_root, arrival)]
        for contract in self.others:
            name = file_name(contract, arrival, None if contract.format == "csv" else 0)
            header = ",".join(contract.column_names) if contract.format == "csv" else None
            with day_folder(raw_root, contract.name, arrival) as folder:
                write_lines(folder / name, pa.array([], pa.string()), header)
            path = day_path(raw_root, contract.name, arrival) / name
            written.append(tally(contract.name, arrival, (path,), kind_codes(0, "late")))
        return written

    def _write_outcomes(self, raw_root: Path, arrival: datetime.date) -> DeliveryCounts:
        numbers, as_of, outcome, codes = self._rows()
        arrival_day = (arrival - EPOCH).days
        # Sent in the early morning of the arrival date, in one batch: one timestamp.
        delivered = np.full(numbers.size, arrival_day * DAY + 5 * 3600, dtype=np.int64)
        texts = {
            "customer_id": id_text(self.contract.column("customer_id"), numbers),
            "as_of_date": date_text(as_of),
            "churned": integer_text(outcome),
            "delivered_at": timestamp_text(delivered),
        }
        clean = np.zeros(numbers.size, dtype=np.int8)  # the bad values are in the texts
        lines = render(self.contract, texts, clean, self.rng, CSV)
        name = file_name(self.contract, arrival)
        with day_folder(raw_root, self.contract.name, arrival) as folder:
            write_lines(folder / name, lines, ",".join(self.contract.column_names))
        path = day_path(raw_root, self.contract.name, arrival) / name
        return tally(self.contract.name, arrival, (path,), codes)

    def _rows(self) -> tuple[IntArray, IntArray, IntArray, np.ndarray]:
        """Customer numbers, as-of day numbers, outcomes and kind codes of every line."""
        numbers, days, outcomes = [], [], []
        for index in range(self.plan.days - 1):
            as_of_day = (self.plan.delivery_date(index) - EPOCH).days
            customers, outcome = churned(self.events, self.crm, as_of_day)
            numbers.append(self.crm.number[customers])
            days.append(np.full(customers.size, as_of_day, dtype=np.int64))
            outcomes.append(outcome)
        number, day, outcome = (np.concatenate(a) for a in (numbers, days, outcomes))
        codes = np.zeros(number.size, dtype=np.int8)
        # The planted lines, appended: the same key twice with the other outcome (both lines
        # are a conflict), an outcome the contract does not allow for a key that also has a
        # valid line, and a customer number the CRM never issued.
        twice, bad = self.rng.choice(number.size, size=2, replace=False)
        codes[twice] = CODE["conflicting"]
        _, width = id_format(self.contract.column("customer_id"))
        unknown = min(10**width - 1, int(self.crm.number.max()) + 1000)
        number = np.append(number, [number[twice], number[bad], unknown])
        day = np.append(day, [day[twice], day[bad], day[0]])
        outcome = np.append(outcome, [1 - outcome[twice], BAD_OUTCOME, 0])
        extra = [CODE["conflicting"], CODE["unknown_category"], CODE["unknown_entity"]]
        return number, day, outcome, np.append(codes, np.array(extra, dtype=np.int8))
