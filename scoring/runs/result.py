"""What every pipeline step returns: its counts and the table versions it wrote.

The `runs` table (one row per step run), the log line that ends each step and the
pipeline's summary are built from these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any


@dataclass(frozen=True)
class StepResult:
    """The outcome of one step run (ingest, features, train, score, monitor)."""

    step: str
    run_id: str
    run_date: date
    rows_in: int | None = None
    rows_out: int | None = None
    rows_quarantined: int | None = None
    rows_deduplicated: int | None = None
    # Logical table name -> Delta version this run committed.
    table_versions: Mapping[str, int] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    # Wall-clock seconds of the step, set by whoever timed it (`scoring.runs.steps`).
    seconds: float | None = None
    # What the step let pass but a person should know (recorded in `runs`, logged).
    warnings: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line for people: counts, tables and versions written, seconds.

        Example: `15939 rows in, 15782 out, 157 quarantined, 0 deduplicated; wrote
        bronze_customers v1, quarantine v1; 26.1 s`.
        """
        counts = [
            f"{value} {label}"
            for value, label in (
                (self.rows_in, "rows in"),
                (self.rows_out, "out"),
                (self.rows_quarantined, "quarantined"),
                (self.rows_deduplicated, "deduplicated"),
            )
            if value is not None
        ]
        parts = [", ".join(counts)] if counts else []
        if self.table_versions:
            written = ", ".join(f"{t} v{v}" for t, v in self.table_versions.items())
            parts.append(f"wrote {written}")
        if self.seconds is not None:
            parts.append(f"{self.seconds:.1f} s")
        return "; ".join(parts)
