"""Demo data: raw client drops of customers (CSV), transactions (JSON lines) and churn
outcomes (CSV), with dirt.

The generator plays the client's source systems, so that the whole pipeline (ingest,
features, train, score, monitor) has realistic input to run on. Columns, file names, allowed
values and ranges come from the use case's raw contracts in `contracts/`.

Layout, one folder per source and delivery day D = start, start + 1, ..., start + days - 1:

    <raw_root>/customers/D/customers_D.csv
    <raw_root>/transactions/D/transactions_D_part-0000.jsonl   (a part per PART_LINES lines)
    <raw_root>/outcomes/A/outcomes_A.csv   (once, on the arrival date A: see `outcomes`)

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
    * every drop is an end-of-day extract filed under its business date D (the folder
      `<source>/<D>/`): it holds what happened on D, so features as of D see all of it.
    * customers: the first drop is a full extract (state at the end of start); a later drop D
      holds the customers who signed up on D (new), changed records (`updated`: a later
      `updated_at` and another segment, country or opt-in) and unchanged records sent again,
      byte for byte (`redelivered`).
    * transactions: the first drop holds the history backfill (events of start - history_days
      to the end of start); a later drop D holds the events of D, events 1-6 days older
      (`late`) and lines of the previous drop sent again, byte for byte (`redelivered`).

Dirt: a share of the freshly produced lines (DIRT_SHARES) gets exactly one defect each:
`malformed` (truncated JSON, a CSV line with the wrong delimiter or field count, an error
page), `null_key` (a null identifier: a key or the customer reference), `null_required` (a
null in another non-nullable column), `unknown_category` (a label the contract does not
allow), `bad_cast` (`12,5O` for an amount, `15.03.2026` for a date, `ja` for a boolean) and
`out_of_range` (outside the contract's range). A line carries at most one of these or of
`late`, `redelivered` and `updated`, so DemoSummary's counts are exact.

Behaviour: each customer has a latent engagement z ~ N(0, 1) that drives, with noise, both
what the features see (purchase rate, spend) and the hazard of a lapse: after a fade of a
few weeks the customer stops buying for a spell (mean LAPSE_MEAN_DAYS) and then comes back;
others pause for a few weeks (a holiday). Segment effects: the contract's segments in order
buy less often, spend more and lapse far less. The churn outcome (no purchase in the 30 days
after D, train.py's label) is therefore likely but not certain for a quiet customer and
possible for an active one: the demo model's held-out ROC AUC is about 0.8
(docs/monitoring.md, "The demo's model quality"). The days after the last delivery are
simulated too, never delivered, so the outcome of every delivery day is known (`outcomes`).
From delivery `drift_day` on, events are drifted: amounts times DRIFT_AMOUNT_FACTOR (a
currency mix-up in the client's export) and a share of purchases moved to DRIFT_CHANNEL; that
delivery also re-files DRIFT_SEGMENT_SHARE of the private customers under the second segment
(a CRM migration), which moves the features and the score on that very date; they still
lapse like private persons, so the model's quality drops from that date (concept drift).

Modules: `knobs` (the shares and rates named above, the kinds), `population` (the calendar,
CRM records, purchase behaviour), `events` (purchases and their deliveries), `values` (the
text of clean values), `dirt` (which lines get which defect, spoiled values), `formats`
(CSV / JSON lines, rendering rows with their dirt), `files` (names, day folders, bytes),
`customers`, `transactions` and `outcomes` (the deliveries of each source), `summary`
(the counts).

Example:
    >>> summary = generate_demo_data(Path("lakehouse/raw"), customers=2000, days=5, seed=7,
    ...                              start=datetime.date(2026, 3, 1))
    >>> summary.delivery("transactions", datetime.date(2026, 3, 2)).late > 0
    True
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np

from scoring.usecase import ConfigError, read_contract

from .customers import CustomerDeliveries
from .events import draw_events
from .knobs import INVALID_KINDS, KINDS, PART_LINES
from .outcomes import OutcomeDeliveries, arrival_date
from .population import draw_behaviour, draw_crm, make_plan
from .summary import DeliveryCounts, DemoSummary
from .transactions import TransactionDeliveries

#: The demo's raw contracts: the use case's own.
CONTRACTS = Path(__file__).resolve().parent.parent / "contracts"
#: The source that delivers the churn outcomes (usecase.yaml `labels.source`).
OUTCOME_SOURCE = "outcomes"

__all__ = [
    "INVALID_KINDS",
    "KINDS",
    "OUTCOME_SOURCE",
    "PART_LINES",
    "DeliveryCounts",
    "DemoSummary",
    "generate_demo_data",
]


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
        2816

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
    plan = make_plan(start, days, history_days, drift_day)
    customer_contract = read_contract(CONTRACTS / "customers.yaml")
    transaction_contract = read_contract(CONTRACTS / "transactions.yaml")
    outcome_contract = read_contract(CONTRACTS / "outcomes.yaml")
    seeds = np.random.default_rng(seed).spawn(4)
    population_rng, customer_rng, transaction_rng, outcome_rng = seeds
    crm = draw_crm(population_rng, customers, plan, customer_contract)
    behaviour = draw_behaviour(population_rng, crm, plan, transaction_contract)
    events = draw_events(population_rng, crm, behaviour, plan)
    root = Path(raw_root)
    written = CustomerDeliveries(
        customer_contract, crm, plan, customer_rng, behaviour.migrant
    ).write(root)
    # PART_LINES is looked up here, in the package, so that patching
    # the package's `PART_LINES` changes the part size.
    written += TransactionDeliveries(
        transaction_contract, crm, behaviour, events, plan, transaction_rng, part_lines=PART_LINES
    ).write(root)
    written += OutcomeDeliveries(
        outcome_contract,
        (customer_contract, transaction_contract),
        crm,
        events,
        plan,
        outcome_rng,
    ).write(root)
    return DemoSummary(raw_root=root, deliveries=tuple(written), arrival=arrival_date(plan))


def _check_arguments(
    customers: int, days: int, seed: int, history_days: int, drift_day: int | None
) -> None:
    """Raise ConfigError naming the first argument outside its range."""
    for name, value, low in (
        ("customers", customers, 1),
        ("days", days, 1),
        ("seed", seed, 0),
        ("history_days", history_days, 0),
    ):
        if value < low:
            raise ConfigError(f"generate-demo-data: {name} must be >= {low}, got {value}")
    if drift_day is not None and not 0 <= drift_day < days:
        raise ConfigError(
            f"generate-demo-data: drift_day must be in [0, {days - 1}] (an index of a "
            f"delivery day) or None, got {drift_day}"
        )
