"""What the demo generator reports: lines and injected kinds per source and delivery day."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .knobs import CODE, INVALID_KINDS, KINDS, CodeArray


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
    conflicting: int = 0
    unknown_entity: int = 0

    @property
    def invalid(self) -> int:
        """Lines the ingest must quarantine: those with one of INVALID_KINDS, and both lines
        of a key sent twice with different content."""
        return sum(getattr(self, kind) for kind in INVALID_KINDS) + self.conflicting


@dataclass(frozen=True)
class DemoSummary:
    """What generate_demo_data wrote: one DeliveryCounts per source and delivery day."""

    raw_root: Path
    deliveries: tuple[DeliveryCounts, ...]
    #: The day the outcome extract arrives (every source has a drop then); None: no outcome.
    arrival: datetime.date | None = None

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


def tally(
    source: str, day: datetime.date, files: tuple[Path, ...], codes: CodeArray
) -> DeliveryCounts:
    """Tally the kinds of the lines of one delivery."""
    counts = np.bincount(codes.astype(np.int64), minlength=len(KINDS) + 1)
    kinds = {kind: int(counts[CODE[kind]]) for kind in KINDS}
    return DeliveryCounts(source, day, files, int(codes.size), **kinds)
