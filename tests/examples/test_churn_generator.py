"""Tests of the churn demo's data generator (examples/churn/generator).

Every expectation comes from parsing the written files with `csv` / `json` and checking them
against the use case's contracts, never from the generator's own helpers.
"""

from __future__ import annotations

import csv
import datetime
import json
import re
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any, TypeAlias

import pytest

from scoring.core.contracts import ColumnSpec, Contract
from scoring.core.errors import ConfigError
from scoring.usecase import import_module, load_usecase
from tests.conftest import CHURN_DIR

CHURN = load_usecase(CHURN_DIR)
demo = import_module(CHURN, "generator")
generate_demo_data = demo.generate_demo_data
# The generator is use case code, imported at run time: its types are opaque to mypy here.
Summary: TypeAlias = Any

START = datetime.date(2026, 3, 1)
DAYS = 3
SMALL: dict[str, Any] = {
    "customers": 2500,
    "days": DAYS,
    "seed": 11,
    "start": START,
    "history_days": 30,
}
CUSTOMERS = CHURN.sources["customers"].contract
TRANSACTIONS = CHURN.sources["transactions"].contract
OUTCOMES = CHURN.sources["outcomes"].contract
#: The outcome extract arrives 30 days after the last delivery day but one.
ARRIVAL = START + datetime.timedelta(days=DAYS - 2 + 30)
INVALID = ("malformed", "null_key", "null_required", "unknown_category", "bad_cast", "out_of_range")
ISO_TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"


# --- an independent reader of the raw files ----------------------------------------------


def delivery_days() -> list[datetime.date]:
    return [START + datetime.timedelta(days=i) for i in range(DAYS)]


def day_files(root: Path, contract: Contract, day: datetime.date) -> list[Path]:
    return sorted((root / contract.name / day.isoformat()).iterdir())


def raw_lines(paths: list[Path], header: bool) -> list[str]:
    """The lines of the files as written, without their line ends (and without a header)."""
    lines: list[str] = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert text == "" or text.endswith("\n"), f"{path} does not end with a newline"
        file_lines = text.split("\n")[:-1]
        lines += file_lines[1:] if header else file_lines
    return lines


def cast(spec: ColumnSpec, value: Any) -> Any:
    """The value in the column's type; ValueError when it does not cast."""
    if spec.type == "date":
        return datetime.date.fromisoformat(value)
    if spec.type == "timestamp":
        return datetime.datetime.strptime(value, ISO_TIMESTAMP)
    if spec.type == "int":
        if not re.fullmatch(r"-?[0-9]+", str(value)):
            raise ValueError(value)
        return int(value)
    if spec.type == "boolean":
        if value not in ("true", "false", True, False):
            raise ValueError(value)
        return value in ("true", True)
    if spec.type.startswith("decimal"):
        if not isinstance(value, Decimal):  # JSON: an amount is a number, never a string
            raise ValueError(value)
        return value
    return value


def in_range(spec: ColumnSpec, value: Any) -> bool:
    if spec.range is None:
        return True
    low, high = (cast(spec, str(v)) if spec.type == "date" else v for v in spec.range)
    if spec.type.startswith("decimal"):
        low, high = Decimal(str(low)), Decimal(str(high))
    return bool(low <= value <= high)


def classify(contract: Contract, record: dict[str, Any] | None) -> str:
    """Which defect a parsed record has, or `valid`; None is a line that did not parse."""
    if record is None or list(record) != list(contract.column_names):
        return "malformed"
    if any(record[c.name] is None for c in contract.columns if c.pattern):
        return "null_key"
    if any(record[c.name] is None for c in contract.columns if not c.nullable):
        return "null_required"
    present = [c for c in contract.columns if record[c.name] is not None]
    if any(c.allowed and record[c.name] not in c.allowed for c in present):
        return "unknown_category"
    try:
        values = {c.name: cast(c, record[c.name]) for c in present}
    except (ValueError, InvalidOperation):
        return "bad_cast"
    if not all(in_range(c, values[c.name]) for c in present):
        return "out_of_range"
    return "valid"


def parse_json(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line, parse_float=Decimal)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def parse_csv(line: str) -> dict[str, Any] | None:
    fields = next(csv.reader([line]))
    if len(fields) != len(CUSTOMERS.columns):
        return None
    return {name: value or None for name, value in zip(CUSTOMERS.column_names, fields, strict=True)}


@cache
def records(root: Path, contract: Contract, day: datetime.date) -> tuple[tuple[str, Any], ...]:
    """(raw line, parsed record or None) of one delivery; each folder is read once."""
    is_csv = contract.format == "csv"
    lines = raw_lines(day_files(root, contract, day), header=is_csv)
    parse = parse_csv if is_csv else parse_json
    return tuple((line, parse(line)) for line in lines)


def event_day(record: dict[str, Any]) -> datetime.date:
    return datetime.datetime.strptime(record["event_time"], ISO_TIMESTAMP).date()


def all_files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Summary]]:
    root = tmp_path_factory.mktemp("raw")
    yield root, generate_demo_data(root, **SMALL)


# --- determinism and layout --------------------------------------------------------------


def test_the_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    generate_demo_data(tmp_path / "a", **SMALL)
    generate_demo_data(tmp_path / "b", **SMALL)
    generate_demo_data(tmp_path / "c", **{**SMALL, "seed": SMALL["seed"] + 1})
    first, second, other = (all_files(tmp_path / name) for name in "abc")
    assert first and first == second
    assert first.keys() == other.keys()
    assert first != other


def test_each_source_has_one_folder_per_delivery_day_with_contract_file_names(
    generated: tuple[Path, Summary],
) -> None:
    root, _ = generated
    for day in delivery_days():
        date = day.isoformat()
        assert [p.name for p in day_files(root, CUSTOMERS, day)] == [f"customers_{date}.csv"]
        assert [p.name for p in day_files(root, TRANSACTIONS, day)] == [
            f"transactions_{date}_part-0000.jsonl"
        ]
    for contract in (CUSTOMERS, TRANSACTIONS):
        folders = sorted(p.name for p in (root / contract.name).iterdir())
        assert folders == [day.isoformat() for day in [*delivery_days(), ARRIVAL]]
    assert [p.name for p in (root / OUTCOMES.name).iterdir()] == [ARRIVAL.isoformat()]


def test_the_other_sources_deliver_empty_drops_on_the_arrival_date(
    generated: tuple[Path, Summary],
) -> None:
    root, summary = generated
    assert summary.arrival == ARRIVAL
    (customers,) = day_files(root, CUSTOMERS, ARRIVAL)
    assert customers.read_text() == ",".join(CUSTOMERS.column_names) + "\n"
    assert [p.read_text() for p in day_files(root, TRANSACTIONS, ARRIVAL)] == [""]


def test_csv_header_and_json_keys_are_the_contract_columns(
    generated: tuple[Path, Summary],
) -> None:
    root, _ = generated
    for day in delivery_days():
        header = day_files(root, CUSTOMERS, day)[0].read_text().split("\n")[0]
        assert header.split(",") == list(CUSTOMERS.column_names)
        parsed = [r for _, r in records(root, TRANSACTIONS, day) if r is not None]
        assert parsed and all(list(r) == list(TRANSACTIONS.column_names) for r in parsed)


def test_summary_lists_the_files_written(generated: tuple[Path, Summary]) -> None:
    root, summary = generated
    listed = sorted(path for counts in summary.deliveries for path in counts.files)
    assert listed == sorted(path for path in root.rglob("*") if path.is_file())


# --- counts ------------------------------------------------------------------------------


@pytest.mark.parametrize("contract", [CUSTOMERS, TRANSACTIONS], ids=lambda c: c.name)
def test_lines_and_invalid_kinds_equal_the_summary(
    generated: tuple[Path, Summary], contract: Contract
) -> None:
    root, summary = generated
    for day in delivery_days():
        found = Counter(classify(contract, record) for _, record in records(root, contract, day))
        counts = summary.delivery(contract.name, day)
        assert sum(found.values()) == counts.lines
        assert {kind: found[kind] for kind in INVALID} == {
            kind: getattr(counts, kind) for kind in INVALID
        }
        assert counts.invalid == sum(found[kind] for kind in INVALID)


@pytest.mark.parametrize("contract", [CUSTOMERS, TRANSACTIONS], ids=lambda c: c.name)
def test_every_invalid_kind_is_present(generated: tuple[Path, Summary], contract: Contract) -> None:
    root, _ = generated
    found = Counter(
        classify(contract, record)
        for day in delivery_days()
        for _, record in records(root, contract, day)
    )
    assert all(found[kind] > 0 for kind in INVALID), found


def test_malformed_lines_include_truncated_json_and_garbage(
    generated: tuple[Path, Summary],
) -> None:
    root, _ = generated
    broken = [
        line
        for day in delivery_days()
        for line, record in records(root, TRANSACTIONS, day)
        if record is None
    ]
    assert any(line.startswith('{"') for line in broken)
    assert any(not line.startswith("{") for line in broken)


def test_null_keys_are_json_null_and_csv_empty(generated: tuple[Path, Summary]) -> None:
    root, _ = generated
    lines = [line for day in delivery_days() for line, _ in records(root, TRANSACTIONS, day)]
    assert any('"customer_id":null' in line for line in lines)
    rows = [r for day in delivery_days() for _, r in records(root, CUSTOMERS, day)]
    assert any(r is not None and r["customer_id"] is None for r in rows)


def test_nullable_customer_columns_hold_nulls_in_valid_rows(
    generated: tuple[Path, Summary],
) -> None:
    root, _ = generated
    valid = [r for _, r in records(root, CUSTOMERS, START) if classify(CUSTOMERS, r) == "valid"]
    for spec in CUSTOMERS.columns:
        if spec.nullable:
            assert any(r[spec.name] is None for r in valid), spec.name


def test_unknown_categories_are_outside_the_allowed_lists(
    generated: tuple[Path, Summary],
) -> None:
    root, _ = generated
    spec = TRANSACTIONS.column("category")
    seen = {
        r["category"]
        for day in delivery_days()
        for _, r in records(root, TRANSACTIONS, day)
        if classify(TRANSACTIONS, r) == "unknown_category"
    }
    assert seen - set(spec.allowed or ())


def test_amounts_have_two_decimals_and_timestamps_are_iso_utc(
    generated: tuple[Path, Summary],
) -> None:
    root, _ = generated
    valid = [
        r for _, r in records(root, TRANSACTIONS, START) if classify(TRANSACTIONS, r) == "valid"
    ]
    assert valid and all(r["amount"].as_tuple().exponent == -2 for r in valid)
    stamp = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
    assert all(stamp.match(r["event_time"]) for r in valid)


# --- deliveries over days ----------------------------------------------------------------


def test_first_transaction_delivery_carries_the_history(
    generated: tuple[Path, Summary],
) -> None:
    root, _ = generated
    days = {event_day(r) for _, r in records(root, TRANSACTIONS, START) if _valid(r)}
    first = START - datetime.timedelta(days=SMALL["history_days"])
    assert min(days) == first
    assert max(days) == START


def test_redelivered_transactions_repeat_lines_of_the_previous_delivery_byte_for_byte(
    generated: tuple[Path, Summary],
) -> None:
    root, summary = generated
    for before, day in zip(delivery_days(), delivery_days()[1:], strict=False):
        previous = {line for line, r in records(root, TRANSACTIONS, before) if r is not None}
        repeated = [line for line, r in records(root, TRANSACTIONS, day) if line in previous]
        assert len(repeated) == summary.delivery("transactions", day).redelivered > 0


def test_late_transactions_are_one_to_six_days_older_than_their_drop(
    generated: tuple[Path, Summary],
) -> None:
    root, summary = generated
    for before, day in zip(delivery_days(), delivery_days()[1:], strict=False):
        previous = {line for line, _ in records(root, TRANSACTIONS, before)}
        ages = [
            (day - event_day(r)).days
            for line, r in records(root, TRANSACTIONS, day)
            if _valid(r) and line not in previous
        ]
        # A drop filed under business date D carries D's events; anything older is late.
        late = [age for age in ages if age != 0]
        assert len(late) == summary.delivery("transactions", day).late > 0
        assert all(1 <= age <= 6 for age in late)


def test_later_customer_deliveries_hold_new_updated_and_resent_records(
    generated: tuple[Path, Summary],
) -> None:
    root, summary = generated
    last_line: dict[str, str] = {}
    last_record: dict[str, dict[str, Any]] = {}
    for day in delivery_days():
        counts, same, changed, new = summary.delivery("customers", day), 0, 0, 0
        for line, record in records(root, CUSTOMERS, day):
            if classify(CUSTOMERS, record) != "valid":
                continue
            key = record["customer_id"]
            if key not in last_line:
                new += day != START
            elif last_line[key] == line:
                same += 1
            else:
                changed += 1
                _assert_a_real_update(last_record[key], record)
            last_line[key], last_record[key] = line, record
        assert (same, changed) == (counts.redelivered, counts.updated)
        if day != START:
            assert same > 0 and changed > 0 and new > 0


def _assert_a_real_update(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert new["updated_at"] > old["updated_at"]
    attributes = ("segment", "country", "marketing_opt_in")
    assert any(new[name] != old[name] for name in attributes)


def test_transactions_mostly_refer_to_delivered_customers(
    generated: tuple[Path, Summary],
) -> None:
    root, _ = generated
    known: set[str] = set()
    referenced: list[str] = []
    for day in delivery_days():
        known |= {r["customer_id"] for _, r in records(root, CUSTOMERS, day) if r is not None}
        referenced += [r["customer_id"] for _, r in records(root, TRANSACTIONS, day) if _valid(r)]
    share = sum(key in known for key in referenced) / len(referenced)
    assert share > 0.95


def _valid(record: dict[str, Any] | None) -> bool:
    return classify(TRANSACTIONS, record) == "valid"


# --- drift -------------------------------------------------------------------------------


def amounts_by_period(
    root: Path, drift_from: datetime.date, days: int = 4
) -> tuple[list[Decimal], list[Decimal]]:
    """Valid amounts of events before and on/after `drift_from`, in the first `days` drops."""
    before: list[Decimal] = []
    after: list[Decimal] = []
    for day in [START + datetime.timedelta(days=i) for i in range(days)]:
        for _, record in records(root, TRANSACTIONS, day):
            if _valid(record):
                (after if event_day(record) >= drift_from else before).append(record["amount"])
    return before, after


def mean(values: list[Decimal]) -> float:
    return float(sum(values)) / len(values)


@pytest.fixture(scope="module")
def drift_and_plain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same demo twice, drifting from delivery 2 (business date START + 2) and not."""
    root = tmp_path_factory.mktemp("drift")
    arguments = {**SMALL, "customers": 2000, "days": 4, "seed": 3}
    generate_demo_data(root / "drift", **arguments, drift_day=2)
    generate_demo_data(root / "plain", **arguments)
    return root / "drift", root / "plain"


def test_drift_day_raises_the_amounts_from_that_delivery_on(
    drift_and_plain: tuple[Path, Path],
) -> None:
    drifted, plain = drift_and_plain
    # Delivery 2 is filed under START + 2 and carries that day's events.
    drift_from = START + datetime.timedelta(days=2)
    before, after = amounts_by_period(drifted, drift_from)
    _, plain_after = amounts_by_period(plain, drift_from)
    # DRIFT_AMOUNT_FACTOR is 11 (kronor for euros); clipping to the contract and noise keep
    # the measured ratio a little below it.
    assert mean(after) / mean(before) > 6
    # The drops before the drift are the plain run's; later ones carry other events (the
    # migration drives customers away), so their late lines differ too.
    assert (
        amounts_by_period(drifted, drift_from, 2)[0] == amounts_by_period(plain, drift_from, 2)[0]
    )
    assert mean(after) / mean(plain_after) > 6


def segments(root: Path, day: datetime.date) -> list[str]:
    return [r["segment"] for _, r in records(root, CUSTOMERS, day) if r and r["segment"]]


def test_drift_day_refiles_a_share_of_private_customers_once(
    drift_and_plain: tuple[Path, Path],
) -> None:
    drifted, plain = drift_and_plain
    private = segments(drifted, START).count("consumer")  # the full extract
    day = START + datetime.timedelta(days=2)
    extra_smb = segments(drifted, day).count("smb") - segments(plain, day).count("smb")
    # DRIFT_SEGMENT_SHARE (0.6) of the private customers, give or take the day's own changes.
    assert 0.5 * private < extra_smb < 0.65 * private
    for earlier in (START, START + datetime.timedelta(days=1)):
        assert segments(drifted, earlier) == segments(plain, earlier)
    later = START + datetime.timedelta(days=3)
    assert abs(len(segments(drifted, later)) - len(segments(plain, later))) < 0.05 * private


# --- regeneration and parts --------------------------------------------------------------


def test_regenerating_replaces_a_day_without_stale_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "PART_LINES", 1_000)
    generate_demo_data(tmp_path, **SMALL)
    folder = tmp_path / "transactions" / START.isoformat()
    assert len(list(folder.iterdir())) > 1
    (tmp_path / "customers" / START.isoformat() / "stray.csv").write_text("x\n")
    monkeypatch.setattr(demo, "PART_LINES", 1_000_000)
    summary = generate_demo_data(tmp_path, **SMALL)
    assert [p.name for p in folder.iterdir()] == [f"transactions_{START}_part-0000.jsonl"]
    written = sorted(path for counts in summary.deliveries for path in counts.files)
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == written


def test_large_deliveries_are_split_into_numbered_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "PART_LINES", 1_000)
    summary = generate_demo_data(tmp_path, **SMALL)
    files = day_files(tmp_path, TRANSACTIONS, START)
    names = [f"transactions_{START}_part-{i:04d}.jsonl" for i in range(len(files))]
    assert [p.name for p in files] == names
    sizes = [len(raw_lines([path], header=False)) for path in files]
    assert max(sizes) <= 1_000 and sum(sizes) == summary.delivery("transactions", START).lines


# --- arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"customers": 0}, "customers"),
        ({"days": 0}, "days"),
        ({"seed": -1}, "seed"),
        ({"history_days": -1}, "history_days"),
        ({"drift_day": DAYS}, "drift_day"),
    ],
)
def test_bad_arguments_raise_an_error_naming_them(
    tmp_path: Path, override: dict[str, int], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        generate_demo_data(tmp_path, **{**SMALL, **override})
    assert not any(tmp_path.iterdir())


# --- outcomes ----------------------------------------------------------------------------

#: A run long enough that the 30 days after its first dates, and the late lines of those
#: days, are all delivered: their outcomes can be recomputed from the transaction drops.
LONG: dict[str, Any] = {**SMALL, "customers": 60, "days": 40, "seed": 5}
CHECKED_AS_OF = [START + datetime.timedelta(days=i) for i in range(3)]


def outcome_rows(root: Path) -> list[dict[str, str]]:
    (path,) = sorted((root / OUTCOMES.name).glob("*/*.csv"))
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def clean_long_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """LONG without dirt, so that every purchase is a line this test can read."""
    root = tmp_path_factory.mktemp("long")
    dirt = __import__(f"{demo.__name__}.dirt", fromlist=["dirt"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dirt, "DIRT_SHARES", dict.fromkeys(dirt.DIRT_SHARES, 0.0))
        patch.setattr(dirt, "EVERY_DEFECT_FROM_LINES", 10**9)
        generate_demo_data(root, **LONG)
    yield root


def test_the_outcome_is_no_purchase_in_the_30_days_after_the_as_of_date(
    clean_long_run: Path,
) -> None:
    """train.py's label, recomputed from the delivered transactions (refunds count, as
    txn_count_30d counts them), for every customer signed up by the as-of date."""
    root = clean_long_run
    days = [START + datetime.timedelta(days=i) for i in range(LONG["days"])]
    bought: dict[str, set[datetime.date]] = {}
    for day in days:
        for _, record in records(root, TRANSACTIONS, day):
            assert record is not None
            bought.setdefault(record["customer_id"], set()).add(event_day(record))
    signup = {
        r["customer_id"]: datetime.date.fromisoformat(r["signup_date"])
        for day in days
        for _, r in records(root, CUSTOMERS, day)
        if r is not None
    }
    rows = outcome_rows(root)
    known = [r for r in rows if r["customer_id"] in signup and r["churned"] in ("0", "1")]
    for as_of in CHECKED_AS_OF:
        window = {as_of + datetime.timedelta(days=n) for n in range(1, 31)}
        expected = {
            customer: "0" if bought.get(customer, set()) & window else "1"
            for customer, signed in signup.items()
            if signed <= as_of
        }
        got = [(r["customer_id"], r["churned"]) for r in known if r["as_of_date"] == str(as_of)]
        twice = {c for c, _ in got if sum(1 for d, _ in got if d == c) > 1}
        assert {c: o for c, o in got if c not in twice} == {
            c: o for c, o in expected.items() if c not in twice
        }
    churned = [r["churned"] for r in known]
    # Noisy, not a copy of a feature: both outcomes are common.
    assert 0.1 < churned.count("1") / len(churned) < 0.7


def test_outcomes_cover_every_delivery_day_but_the_last_and_plant_bad_lines(
    generated: tuple[Path, Summary],
) -> None:
    root, summary = generated
    rows = outcome_rows(root)
    assert {r["as_of_date"] for r in rows} == {str(d) for d in delivery_days()[:-1]}
    assert {r["delivered_at"] for r in rows} == {f"{ARRIVAL}T05:00:00Z"}
    signed_up = {
        r["customer_id"] for d in delivery_days() for _, r in records(root, CUSTOMERS, d) if r
    }
    assert [r["churned"] for r in rows if r["churned"] not in ("0", "1")] == ["2"]
    # A customer number the CRM never issued: far beyond every number it delivered.
    issued = max(int(c[1:]) for c in signed_up if c)
    assert len([r for r in rows if int(r["customer_id"][1:]) > issued + 100]) == 1
    keys = Counter((r["customer_id"], r["as_of_date"]) for r in rows)
    repeated = [key for key, n in keys.items() if n > 1]
    # The key sent twice with two outcomes, and the key whose extra line has outcome 2.
    assert len(repeated) == 2
    outcomes_of = {
        k: {r["churned"] for r in rows if (r["customer_id"], r["as_of_date"]) == k}
        for k in repeated
    }
    assert sorted(sorted(v) for v in outcomes_of.values()) in (
        [["0", "1"], ["0", "2"]],
        [["0", "1"], ["1", "2"]],
    )
    counts = summary.delivery(OUTCOMES.name, ARRIVAL)
    assert (counts.lines, counts.conflicting, counts.unknown_category, counts.unknown_entity) == (
        len(rows),
        2,
        1,
        1,
    )
    assert counts.invalid == 3
