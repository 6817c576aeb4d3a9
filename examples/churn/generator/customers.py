"""The CRM's daily deliveries of customers (CSV): a full extract, then the changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from scoring.usecase import Contract

from .dirt import assign_defects, kind_codes, pick, share_count
from .files import day_folder, day_path, file_name, write_lines
from .formats import CSV, render
from .knobs import (
    CODE,
    DAY,
    REDELIVERED_CUSTOMER_SHARE,
    UPDATED_CUSTOMER_SHARE,
    BoolArray,
    CodeArray,
    IntArray,
)
from .population import Crm, Plan
from .summary import DeliveryCounts, tally
from .values import (
    allowed_values,
    boolean_text,
    date_text,
    id_text,
    integer_text,
    label_text,
    timestamp_text,
)


class CustomerDeliveries:
    """The CRM's daily deliveries: a full extract, then new, changed and re-sent records."""

    def __init__(
        self,
        contract: Contract,
        crm: Crm,
        plan: Plan,
        rng: np.random.Generator,
        migrant: BoolArray,
    ) -> None:
        self.contract, self.crm, self.plan, self.rng = contract, crm, plan, rng
        self.migrant = migrant  # whom the drift's CRM migration re-files (population)
        self.segments = allowed_values(contract, "segment")
        self.countries = allowed_values(contract, "country")

    def write(self, raw_root: Path) -> list[DeliveryCounts]:
        """Write every delivery day's file and return their counts."""
        written = []
        source = self.contract.name
        header = ",".join(self.contract.column_names)
        for index in range(self.plan.days):
            rows, codes = self._extract() if index == 0 else self._changes(index)
            lines = render(self.contract, self._texts(rows), codes, self.rng, CSV)
            valid = np.isin(codes, (0, CODE["updated"], CODE["redelivered"]))
            self.crm.delivered_clean[rows] = valid
            day = self.plan.delivery_date(index)
            name = file_name(self.contract, day)
            with day_folder(raw_root, source, day) as folder:
                write_lines(folder / name, lines, header)
            path = day_path(raw_root, source, day) / name
            written.append(tally(source, day, (path,), codes))
        return written

    def _fresh_codes(self, size: int) -> CodeArray:
        """Codes of `size` freshly produced records, a few of them with a defect."""
        codes = np.zeros(size, dtype=np.int8)
        assign_defects(self.rng, codes, np.ones(size, dtype=np.bool_), self.contract)
        return codes

    def _extract(self) -> tuple[IntArray, CodeArray]:
        """Delivery 0: every customer who signed up before the first delivery day."""
        rows = np.flatnonzero(self.crm.signup_day < self.plan.start_day).astype(np.int64)
        if self.plan.drift_from_day < self.plan.start_day:  # drifted from the first delivery
            self._migrate(rows, None)
        return rows, self._fresh_codes(rows.size)

    def _changes(self, index: int) -> tuple[IntArray, CodeArray]:
        """Delivery `index`: sign-ups of the day before, changed and re-sent records."""
        crm, rng = self.crm, self.rng
        today = self.plan.start_day + index - 1
        new = np.flatnonzero(crm.signup_day == today).astype(np.int64)
        known = np.flatnonzero(crm.delivered_clean).astype(np.int64)
        updated = pick(rng, known, share_count(rng, known.size, UPDATED_CUSTOMER_SHARE) or 1)
        self._update(updated, today)
        if today == self.plan.drift_from_day:
            updated = np.union1d(updated, self._migrate(np.setdiff1d(known, updated), today))
        rest = np.setdiff1d(known, updated)
        resent = pick(rng, rest, share_count(rng, rest.size, REDELIVERED_CUSTOMER_SHARE) or 1)
        new_codes = self._fresh_codes(new.size)
        rows = np.concatenate([new, updated, resent])
        codes = np.concatenate(
            [new_codes, kind_codes(updated.size, "updated"), kind_codes(resent.size, "redelivered")]
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
        crm.updated_at[rows] = today * DAY + rng.integers(0, DAY, size=rows.size)

    def _migrate(self, pool: IntArray, today: int | None) -> IntArray:
        """The drift's CRM migration: the migrants (DRIFT_SEGMENT_SHARE of the private
        customers) in `pool` who are still private, re-filed under the second segment
        (stamped during `today`, if given); returns them."""
        crm = self.crm
        moved = pool[(crm.segment[pool] == 0) & self.migrant[pool]]
        crm.segment[moved] = 1
        crm.birth_year[moved] = -1  # only private persons have a birth year
        if today is not None:
            crm.updated_at[moved] = today * DAY + self.rng.integers(0, DAY, size=moved.size)
        return moved

    def _texts(self, rows: IntArray) -> dict[str, pa.Array]:
        """The clean text of every column of the CRM rows `rows`."""
        crm = self.crm
        return {
            "customer_id": id_text(self.contract.column("customer_id"), crm.number[rows]),
            "signup_date": date_text(crm.signup_day[rows]),
            "country": label_text(self.countries, crm.country[rows]),
            "segment": label_text(self.segments, crm.segment[rows]),
            "birth_year": integer_text(crm.birth_year[rows]),
            "marketing_opt_in": boolean_text(crm.opt_in[rows]),
            "updated_at": timestamp_text(crm.updated_at[rows]),
        }
