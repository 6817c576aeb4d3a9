"""What a bench run measured: timed runs, compiled-parity checks, and their JSON form."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from bench.models import DEMO
from bench.parity import ScoreParity

SCENARIOS = ("first", "steady")


@dataclass(frozen=True)
class Measurement:
    """One timed run of one variant."""

    rows: int
    shape: str
    model: str
    variant: str
    rep: int
    seconds: float
    predict_seconds: float | None
    worker_peak_mib: float
    workers_sum_mib: float
    load1: float
    table: str = DEMO
    scenario: str = SCENARIOS[0]


@dataclass(frozen=True)
class ParityCheck:
    """(a)'s scores against (n)'s in one repetition of one cell."""

    rows: int
    table: str
    scenario: str
    shape: str
    model: str
    rep: int
    parity: ScoreParity


@dataclass
class BenchResults:
    """Everything one run measured, in the order it ran."""

    measurements: list[Measurement] = field(default_factory=list)
    parity: list[ParityCheck] = field(default_factory=list)


def as_rows(items: Sequence[Measurement | ParityCheck]) -> list[dict[str, object]]:
    """Measurements or parity checks as plain dicts (for the JSON dump)."""
    return [asdict(m) for m in items]
