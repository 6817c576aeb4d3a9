"""Hand-made raw deliveries for the ingest tests; every line's fate is written next to it."""

from __future__ import annotations

from pathlib import Path

CUSTOMER_HEADER = "customer_id,signup_date,country,segment,birth_year,marketing_opt_in,updated_at"
T0 = "2026-02-28T10:00:00"

# Day 1 customers: 12 lines -> 3 valid, 2 duplicates in the drop, 7 quarantined.
CUSTOMERS_DAY1 = [
    f"C0000001,2024-01-10,DE,consumer,1980,true,{T0}",  # valid
    f"C0000002,2024-02-01,FR,smb,,false,{T0}",  # valid (birth_year may be null)
    f"C0000003,2024-03-01,,enterprise,,,{T0}",  # valid (country, opt-in may be null)
    "C0000002,2024-02-01,FR,smb,,false,2026-02-28T09:00:00",  # duplicate: older version
    f"C0000001,2024-01-10,DE,consumer,1980,true,{T0}",  # duplicate: identical re-delivery
    f"X123,2024-01-01,DE,consumer,1990,true,{T0}",  # pattern:customer_id
    f"C0000004,not-a-date,DE,consumer,1990,true,{T0}",  # bad_type:signup_date
    f"C0000005,2024-01-01,XX,consumer,1990,true,{T0}",  # not_allowed:country
    f"C0000006,2024-01-01,DE,consumer,1850,true,{T0}",  # out_of_range:birth_year
    f"C0000007,2024-01-01,DE,,1990,true,{T0}",  # missing:segment
    "C0000008,2024-01-01,DE",  # malformed: too few fields
    f",2024-01-01,DE,retail,1990,maybe,{T0}",  # three reasons
]


def txn(tid: int, customer: str, when: str, amount: str, category: str, channel: str) -> str:
    """One JSON line of the transactions source (amount as given: a JSON number or string)."""
    return (
        f'{{"transaction_id": "T{tid:010d}", "customer_id": "{customer}", "event_time": '
        f'"{when}", "amount": {amount}, "category": "{category}", "channel": "{channel}"}}'
    )


# Day 1 transactions: 9 records (the blank line is not a record) -> 3 valid, 1 dup, 5 quarantined.
TRANSACTIONS_DAY1 = [
    txn(1, "C0000001", "2026-02-28T12:00:00Z", "12.50", "grocery", "web"),  # valid
    txn(2, "C0000002", "2026-02-28T13:00:00Z", "-3.00", "fashion", "app"),  # valid (refund)
    txn(1, "C0000001", "2026-02-28T12:00:00Z", "12.50", "grocery", "web"),  # duplicate
    txn(3, "C0000001", "2026-02-10T08:30:00Z", "40", "home", "store"),  # valid, late event
    '{"transaction_id": "T0000000004", "customer_id": ',  # malformed
    "",  # blank: not a record
    txn(5, "C0000002", "2026-02-28T14:00:00Z", "99999", "toys", "web"),  # out_of_range:amount
    txn(6, "C0000002", "2026-02-28T15:00:00Z", "5", "garden", "web"),  # not_allowed:category
    txn(7, "C0000003", "2026-02-28T16:00:00Z", '"abc"', "toys", "web"),  # bad_type:amount
    txn(8, "C0000003", "2026-02-28T16:00:00Z", "1", "toys", "web").replace(  # missing:event_time
        '"2026-02-28T16:00:00Z"', "null"
    ),
]

# Day 2: C0000001 changed (a newer version: now smb, born 1981, opted out), C0000002 stale
# (older than stored), C0000003 identical, C0000009 new (signed up after 2026-03-01); T1
# again, T9 new, T10 a purchase after 2026-03-01 by a known customer, T11 a late purchase
# of 2026-02-28 delivered on day 2 (after 2026-03-01: the features of 2026-03-01 never see it).
CUSTOMERS_DAY2 = [
    "C0000001,2024-01-10,DE,smb,1981,false,2026-03-01T08:00:00",  # a newer version
    "C0000002,2024-02-01,NL,smb,,false,2026-02-27T08:00:00",  # already in bronze (stale)
    f"C0000003,2024-03-01,,enterprise,,,{T0}",  # already in bronze (identical)
    "C0000009,2026-03-02,GB,consumer,1999,true,2026-03-02T08:00:00",  # inserted
]
TRANSACTIONS_DAY2 = [
    txn(1, "C0000001", "2026-02-28T12:00:00Z", "12.50", "grocery", "web"),  # already in bronze
    txn(9, "C0000009", "2026-03-02T09:00:00Z", "7.25", "beauty", "app"),  # inserted
    txn(10, "C0000001", "2026-03-02T00:00:00Z", "20", "toys", "app"),  # inserted, after D1
    txn(11, "C0000002", "2026-02-28T18:00:00Z", "9.99", "home", "web"),  # inserted, late
]


def write_drop(
    raw_root: Path,
    day: str,
    customers: list[str] | None,
    transactions: list[str] | None,
    header: str = CUSTOMER_HEADER,
) -> None:
    """Write one delivery date: a CSV with `header` and a JSONL file (None: no source folder)."""
    if customers is not None:
        folder = raw_root / "customers" / day
        folder.mkdir(parents=True)
        (folder / "customers_001.csv").write_text("\n".join([header, *customers]) + "\n")
    if transactions is not None:
        folder = raw_root / "transactions" / day
        folder.mkdir(parents=True)
        (folder / "transactions_001.jsonl").write_text("\n".join(transactions) + "\n")
