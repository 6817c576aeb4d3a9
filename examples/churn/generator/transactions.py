"""The order system's daily deliveries of transactions (JSON lines, in parts)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa

from scoring.usecase import Contract

from .dirt import assign_defects, kind_codes, pick, share_count, take_rows
from .events import Events, draw_from_cdf
from .files import day_folder, day_path, file_name, write_lines
from .formats import JSON_LINES, render
from .knobs import (
    CODE,
    DAY,
    DRIFT_AMOUNT_FACTOR,
    DRIFT_CHANNEL_SHARE,
    REDELIVERED_SHARE,
    REFUND_SHARE,
    BoolArray,
    CodeArray,
    IntArray,
)
from .population import Behaviour, Crm, Plan
from .summary import DeliveryCounts, tally
from .values import (
    allowed_values,
    amount_text,
    drift_channel,
    id_text,
    label_text,
    timestamp_text,
    value_range,
)


class TransactionDeliveries:
    """The order system's daily deliveries: backfill, then yesterday, late and re-sent lines."""

    def __init__(
        self,
        contract: Contract,
        crm: Crm,
        behaviour: Behaviour,
        events: Events,
        plan: Plan,
        rng: np.random.Generator,
        *,
        part_lines: int,
    ) -> None:
        self.contract, self.crm, self.behaviour = contract, crm, behaviour
        self.events, self.plan, self.rng = events, plan, rng
        self.part_lines = part_lines
        self.categories = allowed_values(contract, "category")
        self.channels = allowed_values(contract, "channel")
        self.drift_channel = self.channels.index(drift_channel(contract))
        low, high = value_range(contract, "amount")
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
            codes = np.where(events.late[own], CODE["late"], 0).astype(np.int8)
            assign_defects(self.rng, codes, ~events.late[own], self.contract)
            resend = 0
            if index + 1 < days:
                resend = share_count(self.rng, int(regular[index + 1]), REDELIVERED_SHARE)
            picks = self._pick_resend(index, own, codes, resend)
            files, next_carried = self._write_delivery(raw_root, index, carried, own, codes, picks)
            all_codes = np.concatenate([kind_codes(len(carried), "redelivered"), codes])
            day = self.plan.delivery_date(index)
            written.append(tally(self.contract.name, day, files, all_codes))
            carried = next_carried
        return written

    def _pick_resend(self, index: int, own: IntArray, codes: CodeArray, count: int) -> IntArray:
        """Positions in `own` of valid on-time lines the next delivery sends again."""
        yesterday = self.plan.start_day + index - 1
        pool = np.flatnonzero((codes == 0) & (self.events.time[own] // DAY == yesterday))
        return pick(self.rng, pool.astype(np.int64), count)

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
        day, source = self.plan.delivery_date(index), self.contract.name
        total = len(carried) + own.size
        parts = max(1, math.ceil(total / self.part_lines))
        size = math.ceil(total / parts)
        names, kept = [], []
        with day_folder(raw_root, source, day) as folder:
            for part in range(parts):
                low, high = part * size, min(total, (part + 1) * size)
                lines, picked = self._part(carried, own, codes, picks, low, high)
                names.append(file_name(self.contract, day, part))
                write_lines(folder / names[-1], lines)
                kept.append(picked)
        final = day_path(raw_root, source, day)
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
        return pa.concat_arrays([head, body]), take_rows(body, local)

    def _lines(self, rows: IntArray, codes: CodeArray) -> pa.Array:
        """The JSON lines of the events at `rows`, drawing what each customer bought."""
        customer, time = self.events.customer[rows], self.events.time[rows]
        category = draw_from_cdf(self.rng, self.behaviour.category_cdf[customer])
        channel = draw_from_cdf(self.rng, self.behaviour.channel_cdf[customer])
        drifted = time >= self.plan.drift_from_day * DAY
        channel[drifted & (self.rng.random(rows.size) < DRIFT_CHANNEL_SHARE)] = self.drift_channel
        column = self.contract.column
        texts = {
            # Events are numbered in event-time order, so late lines keep their early numbers.
            "transaction_id": id_text(column("transaction_id"), rows + 1),
            "customer_id": id_text(column("customer_id"), self.crm.number[customer]),
            "event_time": timestamp_text(time),
            "amount": amount_text(self._cents(customer, category, drifted)),
            "category": label_text(self.categories, category),
            "channel": label_text(self.channels, channel),
        }
        return render(self.contract, texts, codes, self.rng, JSON_LINES)

    def _cents(self, customer: IntArray, category: IntArray, drifted: BoolArray) -> IntArray:
        """Amounts in cents: category price level x customer spend x noise; some refunds."""
        noise = self.rng.lognormal(0.0, 0.5, customer.size)
        amount = self.behaviour.price_level[category] * self.behaviour.spend[customer] * noise
        amount = np.maximum(np.where(drifted, amount * DRIFT_AMOUNT_FACTOR, amount), 0.5)
        amount = np.where(self.rng.random(customer.size) < REFUND_SHARE, -amount, amount)
        low, high = self.cent_bounds
        return np.clip(np.rint(amount * 100), low, high).astype(np.int64)
