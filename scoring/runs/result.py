"""What every pipeline step returns: its counts and the table versions it wrote.

The `runs` table (one row per step run) and the pipeline's summary are built from these.
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
