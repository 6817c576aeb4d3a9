"""End to end: `run_ingest` and `run_features` of the churn demo on temporary Delta tables and
hand-made drops.

One module-scoped lakehouse runs the happy path once (ingest day 1, rerun day 1, features
as of day 1, ingest day 2, features as of day 2, features as of day 1 again); each test
checks one behaviour of that history. The failure tests then run against the same tables
and check that no table version moved.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from scoring.core import io
from scoring.core.config import Config, IngestSettings
from scoring.core.errors import DataError
from scoring.features.step import run_features
from scoring.ingest.step import run_ingest
from scoring.usecase import load_usecase
from tests.conftest import CHURN_DIR, churn_tables, make_config
from tests.helpers import assert_frames_equal
from tests.ingest.drops import (
    CUSTOMER_HEADER,
    CUSTOMERS_DAY1,
    CUSTOMERS_DAY2,
    T0,
    TRANSACTIONS_DAY1,
    TRANSACTIONS_DAY2,
    write_drop,
)

pytestmark = pytest.mark.slow
DAY1, DAY2 = date(2026, 3, 1), date(2026, 3, 2)
STARTED = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
TABLES = ("bronze_customers", "bronze_transactions", "quarantine", "features")
CHURN = load_usecase(CHURN_DIR)


def ingest(
    spark, config: Config, day: date, run_id: str, max_share: float = 1.0, sources=CHURN.sources
):
    return run_ingest(
        spark,
        churn_tables(config),
        sources,
        raw_root=config.raw_root("churn"),
        settings=IngestSettings(max_share, "error", 24.0),
        run_date=day,
        run_id=run_id,
        started_at=STARTED,
    )


def features(spark, config: Config, day: date, run_id: str):
    return run_features(spark, churn_tables(config), CHURN, day, run_id)


def versions(spark, config: Config) -> dict[str, int | None]:
    return {t: io.current_version(spark, churn_tables(config)[t]) for t in TABLES}


@pytest.fixture(scope="module")
def history(spark, tmp_path_factory) -> dict[str, Any]:
    """Run the happy path once; keep each step's result and the table versions after it."""
    config = make_config(tmp_path_factory.mktemp("ingest") / "lakehouse")
    raw = Path(config.raw_root("churn"))
    write_drop(raw, DAY1.isoformat(), CUSTOMERS_DAY1, TRANSACTIONS_DAY1)
    write_drop(raw, DAY2.isoformat(), CUSTOMERS_DAY2, TRANSACTIONS_DAY2)
    out: dict[str, Any] = {"config": config}
    for name, step in [
        ("ingest1", lambda: ingest(spark, config, DAY1, "ingest-1")),
        ("ingest1_again", lambda: ingest(spark, config, DAY1, "ingest-1b")),
        ("features1", lambda: features(spark, config, DAY1, "features-1")),
        ("ingest2", lambda: ingest(spark, config, DAY2, "ingest-2")),
        ("features2", lambda: features(spark, config, DAY2, "features-2")),
        ("features1_again", lambda: features(spark, config, DAY1, "features-1b")),
    ]:
        out[name] = step()
        out[f"versions_after_{name}"] = versions(spark, config)
    return out


def table_at(spark, history, table: str, after: str) -> DataFrame:
    version = history[f"versions_after_{after}"][table]
    return io.read_table(spark, churn_tables(history["config"])[table], version)


def test_dirty_drop_accounts_for_every_record_per_source(history):
    details = history["ingest1"].details
    assert {k: v for k, v in details["customers"].items() if k != "files"} == {
        "lines": 12,
        "inserted": 3,
        "updated": 0,
        "duplicates_in_drop": 2,
        "already_in_bronze": 0,
        "quarantined": 7,
    }
    assert {k: v for k, v in details["transactions"].items() if k != "files"} == {
        "lines": 9,
        "inserted": 3,
        "updated": 0,
        "duplicates_in_drop": 1,
        "already_in_bronze": 0,
        "quarantined": 5,
    }
    result = history["ingest1"]
    assert (result.rows_in, result.rows_out, result.rows_quarantined) == (21, 6, 12)
    assert result.rows_deduplicated == 3


def test_quarantine_keeps_original_text_file_and_every_reason(spark, history):
    raw = history["config"].raw_root("churn")
    actual = table_at(spark, history, "quarantine", "ingest1").select(
        "delivery_date", "source", "source_file", "record", "reasons", "run_id"
    )
    c_file = f"file:{raw}/customers/2026-03-01/customers_001.csv"
    t_file = f"file:{raw}/transactions/2026-03-01/transactions_001.jsonl"
    bad = [(CUSTOMERS_DAY1[i], r) for i, r in zip(range(5, 12), CUSTOMER_REASONS, strict=True)]
    rows = [(DAY1, "customers", c_file, line, reasons, "ingest-1") for line, reasons in bad]
    bad_t = [(TRANSACTIONS_DAY1[i], r) for i, r in TRANSACTION_REASONS]
    rows += [(DAY1, "transactions", t_file, line, reasons, "ingest-1") for line, reasons in bad_t]
    expected = spark.createDataFrame(
        rows,
        "delivery_date date, source string, source_file string, record string, "
        "reasons array<string>, run_id string",
    )
    assert_frames_equal(actual, expected)


CUSTOMER_REASONS = [
    ["pattern:customer_id"],
    ["bad_type:signup_date"],
    ["not_allowed:country"],
    ["out_of_range:birth_year"],
    ["missing:segment"],
    ["malformed"],
    ["missing:customer_id", "not_allowed:segment", "bad_type:marketing_opt_in"],
]
TRANSACTION_REASONS = [
    (4, ["malformed"]),
    (6, ["out_of_range:amount"]),
    (7, ["not_allowed:category"]),
    (8, ["bad_type:amount"]),
    (9, ["missing:event_time"]),
]


def test_bronze_customers_keep_every_newer_version_with_its_lineage(spark, history):
    raw = history["config"].raw_root("churn")
    actual = table_at(spark, history, "bronze_customers", "ingest2").drop("_ingested_at")
    f1 = f"file:{raw}/customers/2026-03-01/customers_001.csv"
    f2 = f"file:{raw}/customers/2026-03-02/customers_001.csv"
    t0, t1, t9 = datetime(2026, 2, 28, 10), datetime(2026, 3, 1, 8), datetime(2026, 3, 2, 8)
    c1 = ("C0000001", date(2024, 1, 10), "DE")
    expected = spark.createDataFrame(
        [
            (*c1, "consumer", 1980, True, t0, DAY1, f1, "ingest-1"),
            (*c1, "smb", 1981, False, t1, DAY2, f2, "ingest-2"),  # newer: stored beside
            ("C0000002", date(2024, 2, 1), "FR", "smb", None, False, t0, DAY1, f1, "ingest-1"),
            (
                "C0000003",
                date(2024, 3, 1),
                None,
                "enterprise",
                None,
                None,
                t0,
                DAY1,
                f1,
                "ingest-1",
            ),
            ("C0000009", date(2026, 3, 2), "GB", "consumer", 1999, True, t9, DAY2, f2, "ingest-2"),
        ],
        "customer_id string, signup_date date, country string, segment string, birth_year int, "
        "marketing_opt_in boolean, updated_at timestamp, _delivery_date date, "
        "_source_file string, _ingest_run_id string",
    )
    assert_frames_equal(actual, expected)


def test_bronze_transactions_keep_late_events_at_their_event_time(spark, history):
    actual = table_at(spark, history, "bronze_transactions", "ingest2").select(
        "transaction_id", "event_time", "amount", "_delivery_date"
    )
    expected = spark.createDataFrame(
        [
            ("T0000000001", datetime(2026, 2, 28, 12), Decimal("12.50"), DAY1),
            ("T0000000002", datetime(2026, 2, 28, 13), Decimal("-3.00"), DAY1),
            ("T0000000003", datetime(2026, 2, 10, 8, 30), Decimal("40.00"), DAY1),
            ("T0000000009", datetime(2026, 3, 2, 9), Decimal("7.25"), DAY2),
            ("T0000000010", datetime(2026, 3, 2, 0), Decimal("20.00"), DAY2),
            ("T0000000011", datetime(2026, 2, 28, 18), Decimal("9.99"), DAY2),
        ],
        "transaction_id string, event_time timestamp, amount decimal(12,2), _delivery_date date",
    )
    assert_frames_equal(actual, expected)


def test_second_delivery_counts_new_versions_inserts_and_known_rows(history):
    details = history["ingest2"].details
    assert (details["customers"]["inserted"], details["customers"]["updated"]) == (2, 0)
    assert details["customers"]["already_in_bronze"] == 2  # a stale and an identical record
    assert (details["transactions"]["inserted"], details["transactions"]["already_in_bronze"]) == (
        3,
        1,
    )


def test_rerun_of_a_date_leaves_the_same_rows(spark, history):
    for table in ("bronze_customers", "bronze_transactions"):
        before = table_at(spark, history, table, "ingest1")
        after = table_at(spark, history, table, "ingest1_again")
        assert_frames_equal(after, before)
    keep = ["delivery_date", "source", "source_file", "record", "reasons"]
    quarantine_before = table_at(spark, history, "quarantine", "ingest1").select(keep)
    quarantine_after = table_at(spark, history, "quarantine", "ingest1_again").select(keep)
    assert_frames_equal(quarantine_after, quarantine_before)
    assert history["ingest1_again"].rows_out == 0


def test_features_of_a_date_rebuilt_after_later_drops_equal_the_first_build(spark, history):
    # Day 2 delivered a new version of C0000001 (smb), a late purchase of 2026-02-28 by
    # C0000002 and a purchase of 2026-03-02: none of it was known on 2026-03-01.
    first = table_at(spark, history, "features", "features1").drop("feature_run_id")
    again = (
        table_at(spark, history, "features", "features1_again")
        .filter(F.col("as_of_date") == DAY1)
        .drop("feature_run_id")
    )
    assert_frames_equal(again, first)


def test_features_of_the_later_date_see_what_was_delivered_by_then(spark, history):
    day2 = table_at(spark, history, "features", "features2").filter(F.col("as_of_date") == DAY2)
    rows = {r["customer_id"]: r for r in day2.collect()}
    assert rows["C0000001"]["segment"] == "smb"
    assert rows["C0000002"]["txn_count_7d"] == 2  # T2 and the late T11


def test_rerunning_a_feature_date_leaves_other_dates_untouched(spark, history):
    day2 = F.col("as_of_date") == DAY2
    before = table_at(spark, history, "features", "features2").filter(day2)
    after = table_at(spark, history, "features", "features1_again").filter(day2)
    assert_frames_equal(after, before)


def test_feature_commit_records_run_id_and_bronze_versions_read(spark, history):
    commit = io.last_commit(spark, churn_tables(history["config"])["features"])
    bronze = history["versions_after_ingest2"]
    assert commit["userMetadata"]["run_id"] == "features-1b"
    assert commit["userMetadata"]["source_versions"] == {
        "bronze_customers": bronze["bronze_customers"],
        "bronze_transactions": bronze["bronze_transactions"],
    }


def test_missing_csv_column_fails_naming_file_and_column_and_changes_nothing(spark, history):
    config = history["config"]
    header = CUSTOMER_HEADER.replace(",segment", "")
    write_drop(
        Path(config.raw_root("churn")), "2026-03-05", ["C0000001"], TRANSACTIONS_DAY2, header
    )
    before = versions(spark, config)
    with pytest.raises(DataError, match=r"customers_001\.csv: CSV header lacks .*'segment'"):
        ingest(spark, config, date(2026, 3, 5), "ingest-bad")
    assert versions(spark, config) == before


def test_json_key_absent_from_every_record_fails_naming_file_and_key(spark, history):
    config = history["config"]
    no_channel = [
        line.replace(', "channel": "app"', "").replace(', "channel": "web"', "")
        for line in TRANSACTIONS_DAY2[1:]
    ]
    write_drop(Path(config.raw_root("churn")), "2026-03-06", CUSTOMERS_DAY2, no_channel)
    before = versions(spark, config)
    with pytest.raises(DataError, match=r"transactions_001\.jsonl: no record has .*'channel'"):
        ingest(spark, config, date(2026, 3, 6), "ingest-bad")
    assert versions(spark, config) == before


def test_missing_source_folder_fails_and_changes_nothing(spark, history):
    config = history["config"]
    write_drop(Path(config.raw_root("churn")), "2026-03-07", CUSTOMERS_DAY2, None)
    before = versions(spark, config)
    with pytest.raises(DataError, match=r"transactions/2026-03-07: source folder .* missing"):
        ingest(spark, config, date(2026, 3, 7), "ingest-bad")
    assert versions(spark, config) == before


def test_quarantine_share_above_the_limit_fails_and_changes_nothing(spark, history):
    config = history["config"]
    write_drop(Path(config.raw_root("churn")), "2026-03-08", CUSTOMERS_DAY1, TRANSACTIONS_DAY2)
    before = versions(spark, config)
    with pytest.raises(DataError, match=r"customers: 7 of 12 records quarantined \(58\.3%\)"):
        ingest(spark, config, date(2026, 3, 8), "ingest-bad", max_share=0.5)
    assert versions(spark, config) == before


def new_customer(number: int) -> list[str]:
    """A customers drop with one customer bronze lacks and one quarantined line."""
    return [f"C{number:07d},2024-01-10,DE,consumer,1980,true,{T0}", f"X{number},2024,DE"]


def fail_second_merge(monkeypatch, before_failing=None) -> None:
    """Make the second bronze MERGE of the next ingest raise, after the quarantine write and
    the first MERGE committed; `before_failing` runs first (another writer's commit)."""
    import scoring.ingest.step as step

    real, calls = step.merge_bronze, []

    def merge(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            if before_failing:
                before_failing()
            raise OSError("storage went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(step, "merge_bronze", merge)


def test_a_failure_between_commits_restores_every_table_the_run_committed_to(
    spark, history, monkeypatch
):
    config = history["config"]
    write_drop(Path(config.raw_root("churn")), "2026-03-09", new_customer(50), TRANSACTIONS_DAY2)
    before = versions(spark, config)
    rows = {t: io.read_table(spark, churn_tables(config)[t]).count() for t in TABLES[:3]}
    fail_second_merge(monkeypatch)
    with pytest.raises(OSError, match="storage went away"):
        ingest(spark, config, date(2026, 3, 9), "ingest-cut")
    after = versions(spark, config)
    # Each table the run committed to got one RESTORE commit back to its content before.
    for table in TABLES[:3]:
        ref = churn_tables(config)[table]
        assert io.read_table(spark, ref).count() == rows[table], table
        if after[table] != before[table]:
            last = io.delta_table(spark, ref).history(1).first()
            assert last is not None and last["operation"] == "RESTORE", table
    assert after["bronze_transactions"] == before["bronze_transactions"]  # never merged
    assert after["quarantine"] != before["quarantine"]  # written, then restored
    assert after["bronze_customers"] != before["bronze_customers"]  # merged, then restored


def test_a_failed_ingest_never_restores_over_another_runs_commit(spark, history, monkeypatch):
    config = history["config"]
    tables = churn_tables(config)
    write_drop(Path(config.raw_root("churn")), "2026-03-10", new_customer(51), TRANSACTIONS_DAY2)

    def other_run_writes_quarantine() -> None:  # a commit of another run, no row changed
        with io.commit_metadata(spark, {"run_id": "other-run", "step": "manual"}):
            spark.sql(
                f"ALTER TABLE delta.`{tables['quarantine'].path}` "
                "SET TBLPROPERTIES ('scoring.test.touched' = 'yes')"
            )

    fail_second_merge(monkeypatch, other_run_writes_quarantine)
    with pytest.raises(OSError, match="storage went away"):
        ingest(spark, config, date(2026, 3, 10), "ingest-cut-2")
    last = io.delta_table(spark, tables["quarantine"]).history(1).first()
    assert last is not None and last["operation"] == "SET TBLPROPERTIES"  # the other run's
    bronze = io.delta_table(spark, tables["bronze_customers"]).history(1).first()
    assert bronze is not None and bronze["operation"] == "RESTORE"  # only ours: undone


def renamed_sources(sources):
    """The demo's sources, where the files call `segment` 'Customer Segment' and `channel`
    'Sales Channel'."""
    renamed = {"customers": "segment", "transactions": "channel"}
    out = dict(sources)
    for name, column in renamed.items():
        contract = sources[name].contract
        delivered = f"{'Customer' if name == 'customers' else 'Sales'} {column.title()}"
        columns = tuple(
            replace(c, delivered_as=delivered) if c.name == column else c for c in contract.columns
        )
        out[name] = replace(sources[name], contract=replace(contract, columns=columns))
    return out


def test_files_that_name_columns_otherwise_are_ingested_by_the_delivered_names(spark, tmp_path):
    config = make_config(tmp_path / "lakehouse")
    raw = Path(config.raw_root("churn"))
    header = CUSTOMER_HEADER.replace(",segment,", ",Customer Segment,")
    transactions = [line.replace('"channel"', '"Sales Channel"') for line in TRANSACTIONS_DAY1]
    write_drop(raw, DAY1.isoformat(), CUSTOMERS_DAY1, transactions, header)
    ingest(spark, config, DAY1, "ingest-renamed", sources=renamed_sources(CHURN.sources))
    tables = churn_tables(config)
    customers = io.read_table(spark, tables["bronze_customers"])
    segments = {r["customer_id"]: r["segment"] for r in customers.collect()}
    assert segments == {"C0000001": "consumer", "C0000002": "smb", "C0000003": "enterprise"}
    bronze = io.read_table(spark, tables["bronze_transactions"])
    channels = {r["transaction_id"]: r["channel"] for r in bronze.collect()}
    assert channels == {"T0000000001": "web", "T0000000002": "app", "T0000000003": "store"}


def test_a_json_file_keyed_by_the_contract_name_not_the_delivered_one_fails_naming_the_key(
    spark, tmp_path
):
    config = make_config(tmp_path / "lakehouse")
    header = CUSTOMER_HEADER.replace(",segment,", ",Customer Segment,")
    write_drop(
        Path(config.raw_root("churn")), DAY1.isoformat(), CUSTOMERS_DAY1, TRANSACTIONS_DAY1, header
    )
    before = versions(spark, config)
    with pytest.raises(
        DataError, match=r"transactions_001\.jsonl: no record has required key 'Sales Channel'"
    ):
        ingest(spark, config, DAY1, "ingest-renamed", sources=renamed_sources(CHURN.sources))
    assert versions(spark, config) == before
