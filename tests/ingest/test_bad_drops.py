"""Bad raw drops that used to get through: each is planted in its own delivery date of one
lakehouse (the churn demo's sources), and the tables and the counts are checked before and
after. A drop that cannot be read fails naming the file and changes nothing; a record that
cannot be trusted is quarantined with its reason; every record is accounted for."""

from __future__ import annotations

import gzip
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from deltalake import DeltaTable as RustDeltaTable
from pyspark.sql import functions as F

from scoring.core import io
from scoring.core.config import IngestSettings
from scoring.core.errors import DataError
from scoring.ingest.step import run_ingest
from scoring.runs.steps import usecase_tables
from scoring.usecase import load_usecase
from tests.conftest import CHURN_DIR, churn_tables, make_config
from tests.ingest.drops import CUSTOMER_HEADER, txn

pytestmark = pytest.mark.slow
CHURN = load_usecase(CHURN_DIR)
BASE = date(2026, 3, 1)
T0 = "2026-02-28T10:00:00"
GOOD_CUSTOMERS = [f"C000010{i},2024-01-10,DE,consumer,1980,true,{T0}" for i in range(3)]
GOOD_TXNS = [
    txn(100 + i, "C0000100", "2026-02-28T12:00:00Z", "10.00", "toys", "web") for i in range(3)
]


def ingest(spark, config, day: date, unexpected: str = "error"):
    return run_ingest(
        spark,
        churn_tables(config),
        CHURN.sources,
        raw_root=config.raw_root("churn"),
        settings=IngestSettings(1.0, unexpected, 24.0),  # type: ignore[arg-type]
        run_date=day,
        run_id=f"ingest-{day}",
        started_at=datetime(2026, 3, 9, tzinfo=UTC),
    )


def folder(config, source: str, day: date) -> Path:
    path = Path(config.raw_root("churn")) / source / day.isoformat()
    path.mkdir(parents=True, exist_ok=True)
    return path


def plain_drop(config, day: date, customers=GOOD_CUSTOMERS, transactions=GOOD_TXNS) -> None:
    """A regular drop of `day`: one CSV, one JSON lines file."""
    (folder(config, "customers", day) / "customers_1.csv").write_text(
        "\n".join([CUSTOMER_HEADER, *customers]) + "\n"
    )
    (folder(config, "transactions", day) / "transactions_1.jsonl").write_text(
        "\n".join(transactions) + "\n"
    )


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """A lakehouse after one regular drop (BASE): the stored records the bad ones meet."""
    config = make_config(tmp_path_factory.mktemp("bad") / "lakehouse")
    plain_drop(config, BASE)
    ingest(spark, config, BASE)
    return config


def versions(spark, config) -> dict[str, int | None]:
    tables = churn_tables(config)
    return {
        n: io.current_version(spark, tables[n])
        for n in ("bronze_customers", "bronze_transactions", "quarantine")
    }


def quarantined(spark, config, day: date) -> list[dict]:
    rows = io.read_table(spark, churn_tables(config)["quarantine"]).where(
        F.col("delivery_date") == day
    )
    return [r.asDict() for r in rows.orderBy("source", "record").collect()]


def fails_and_changes_nothing(spark, config, day: date, match: str) -> None:
    before = versions(spark, config)
    with pytest.raises(DataError, match=match):
        ingest(spark, config, day)
    assert versions(spark, config) == before


def test_compressed_drops_are_read(spark, lake):
    day = date(2026, 3, 2)
    customers = [f"C000020{i},2024-01-10,DE,consumer,1980,true,{T0}" for i in range(3)]
    body = "\n".join([CUSTOMER_HEADER, *customers]) + "\n"
    (folder(lake, "customers", day) / "customers_2026-03-02_probe.csv.gz").write_bytes(
        gzip.compress(body.encode())
    )
    lines = [
        txn(200 + i, "C0000200", "2026-03-01T12:00:00Z", "5.00", "toys", "web") for i in range(3)
    ]
    (folder(lake, "transactions", day) / "transactions_probe.jsonl.gz").write_bytes(
        gzip.compress(("\n".join(lines) + "\n").encode())
    )
    result = ingest(spark, lake, day)
    assert (
        result.details["customers"]["inserted"],
        result.details["transactions"]["inserted"],
    ) == (3, 3)
    assert result.rows_in == 6 and result.rows_quarantined == 0


def test_a_file_no_contract_takes_fails_naming_it(spark, lake):
    day = date(2026, 3, 3)
    plain_drop(lake, day)
    (folder(lake, "customers", day) / "customers_export.xlsx").write_bytes(b"PK\x03\x04...")
    fails_and_changes_nothing(
        spark, lake, day, r"customers_export\.xlsx: no contract takes this file"
    )


def test_with_warn_a_file_no_contract_takes_is_left_and_recorded(spark, lake):
    day = date(2026, 3, 3)  # the same drop as above, now read with the warning
    result = ingest(spark, lake, day, unexpected="warn")
    (warning,) = result.warnings
    assert "customers_export.xlsx: no contract takes this file; not read" in warning
    assert result.details["customers"]["lines"] == 3


def test_gzip_bytes_under_a_plain_name_fail_naming_the_file(spark, lake):
    day = date(2026, 3, 4)
    plain_drop(lake, day)
    (folder(lake, "transactions", day) / "transactions_1.jsonl").write_bytes(
        gzip.compress(b'{"transaction_id": "T1"}\n')
    )
    fails_and_changes_nothing(
        spark, lake, day, r"transactions_1\.jsonl: holds gzip bytes but its name says jsonl"
    )


def test_a_file_outside_the_raw_root_is_refused(spark, lake, tmp_path):
    day = date(2026, 3, 5)
    plain_drop(lake, day)
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (folder(lake, "customers", day) / "customers_2.csv").symlink_to(secret)
    fails_and_changes_nothing(
        spark, lake, day, r"customers_2\.csv: resolves to .*passwd, outside the raw root"
    )


def test_latin1_bytes_are_quarantined_as_valid_text_with_their_bytes(spark, lake):
    day = date(2026, 3, 6)
    plain_drop(lake, day)
    line = f"C0000301,2024-01-10,DE,c\xf6nsumer,1980,true,{T0}".encode("latin-1")
    good = "\n".join([CUSTOMER_HEADER, *GOOD_CUSTOMERS]).encode()
    (folder(lake, "customers", day) / "customers_1.csv").write_bytes(good + b"\n" + line + b"\n")
    result = ingest(spark, lake, day)
    assert result.details["customers"]["quarantined"] == 1
    (row,) = quarantined(spark, lake, day)
    assert row["reasons"] == ["encoding"]
    assert "c\ufffdnsumer" in row["record"]
    assert row["record_base64"] is not None
    # A reader that is not Spark reads the whole table (it did not, with raw bytes in a string).
    table = RustDeltaTable(str(churn_tables(lake)["quarantine"].path)).to_pyarrow_table()
    assert "c\ufffdnsumer" in "".join(table.column("record").to_pylist())


def test_a_version_after_the_delivery_date_is_quarantined_and_loses_nothing(spark, lake):
    day = date(2026, 3, 7)
    future = "C0000100,2024-01-10,DE,smb,1980,true,2030-01-01T00:00:00"  # stored: T0
    plain_drop(
        lake,
        day,
        customers=[future],
        transactions=[
            txn(700, "C0000100", "2030-01-01T00:00:00Z", "1.00", "toys", "web"),
            txn(701, "C0000100", "2026-03-07T12:00:00Z", "1.00", "toys", "web"),
        ],
    )
    result = ingest(spark, lake, day)
    reasons = {r["source"]: r["reasons"] for r in quarantined(spark, lake, day)}
    assert reasons == {"customers": ["future:updated_at"], "transactions": ["future:event_time"]}
    assert (result.rows_in, result.rows_out, result.rows_quarantined) == (3, 1, 2)
    stored = io.read_table(spark, churn_tables(lake)["bronze_customers"]).where(
        "customer_id = 'C0000100'"
    )
    assert [r["segment"] for r in stored.collect()] == ["consumer"]


def test_a_decimal_with_more_digits_than_its_scale_is_quarantined(spark, lake):
    day = date(2026, 3, 8)
    plain_drop(
        lake,
        day,
        customers=[],
        transactions=[
            txn(800, "C0000100", "2026-03-08T12:00:00Z", "12.345", "toys", "web"),
            txn(801, "C0000100", "2026-03-08T12:00:00Z", "12.34", "toys", "web"),
        ],
    )
    ingest(spark, lake, day)
    (row,) = quarantined(spark, lake, day)
    assert row["reasons"] == ["precision:amount"]


def test_a_json_key_written_twice_is_ambiguous(spark, lake):
    day = date(2026, 3, 9)
    twice = txn(900, "C0000100", "2026-03-09T12:00:00Z", "10.00", "toys", "web").replace(
        '"amount": 10.00', '"amount": 10.00, "amount": 40000.00'
    )
    plain_drop(lake, day, customers=[], transactions=[twice, GOOD_TXNS[0]])
    ingest(spark, lake, day)
    (row,) = quarantined(spark, lake, day)
    assert row["reasons"][0] == "ambiguous"


def test_a_key_resent_with_other_content_is_a_conflict_with_the_stored_version_kept(spark, lake):
    day = date(2026, 3, 10)
    corrected = GOOD_TXNS[0].replace('"amount": 10.00', '"amount": 99.00')  # T100, stored 10.00
    plain_drop(lake, day, customers=[], transactions=[corrected, GOOD_TXNS[1]])
    result = ingest(spark, lake, day)
    (row,) = quarantined(spark, lake, day)
    assert row["reasons"] == ["conflict_with_stored"]
    assert '"amount":10.00' in row["stored_record"]
    assert result.details["transactions"]["already_in_bronze"] == 1  # T101, identical
    stored = io.read_table(spark, churn_tables(lake)["bronze_transactions"]).where(
        "transaction_id = 'T0000000100'"
    )
    assert [str(r["amount"]) for r in stored.collect()] == ["10.00"]


def test_one_key_and_version_twice_in_a_drop_with_other_content_quarantines_both(spark, lake):
    day = date(2026, 3, 11)
    one = f"C0000400,2024-01-10,DE,consumer,1980,true,{T0}"
    other = f"C0000400,2024-01-10,FR,consumer,1980,true,{T0}"  # same key and updated_at
    plain_drop(lake, day, customers=[one, other], transactions=[])
    result = ingest(spark, lake, day)
    assert [r["reasons"] for r in quarantined(spark, lake, day)] == [["conflict"], ["conflict"]]
    assert result.details["customers"]["inserted"] == 0


class EditedChurn:
    """The churn demo with one contract edited, and a fresh lakehouse to ingest it into."""

    def __init__(self, tmp_path: Path, contract: str, old: str, new: str) -> None:
        folder_ = tmp_path / "uc"
        shutil.copytree(CHURN_DIR, folder_)
        path = folder_ / "contracts" / contract
        assert old in path.read_text()
        path.write_text(path.read_text().replace(old, new))
        self.usecase = load_usecase(folder_)
        self.config = make_config(tmp_path / "lakehouse")
        self.tables = usecase_tables(self.config, self.usecase)

    def ingest(self, spark, day: date):
        return run_ingest(
            spark,
            self.tables,
            self.usecase.sources,
            raw_root=self.config.raw_root("churn"),
            settings=IngestSettings(1.0, "error", 24.0),
            run_date=day,
            run_id=f"i-{day}",
        )

    def rows(self, spark, table: str, where: str) -> list[dict]:
        found = io.read_table(spark, self.tables[table]).where(where)
        return [r.asDict() for r in found.collect()]


def test_with_corrections_apply_a_resent_key_with_other_content_updates_bronze(spark, tmp_path):
    lake_ = EditedChurn(
        tmp_path,
        "transactions.yaml",
        "keys: [transaction_id]",
        "keys: [transaction_id]\ncorrections: apply",
    )
    plain_drop(lake_.config, BASE)
    lake_.ingest(spark, BASE)
    day = date(2026, 3, 2)
    corrected = GOOD_TXNS[0].replace('"amount": 10.00', '"amount": 99.00')
    plain_drop(lake_.config, day, customers=[], transactions=[corrected])
    result = lake_.ingest(spark, day)
    assert (result.details["transactions"]["updated"], result.rows_quarantined) == (1, 0)
    stored = lake_.rows(spark, "bronze_transactions", "transaction_id = 'T0000000100'")
    assert [(str(r["amount"]), r["_delivery_date"]) for r in stored] == [("99.00", day)]


def test_without_a_version_column_a_later_delivery_with_other_content_is_a_new_version(
    spark, tmp_path
):
    """A dimension without a version column is versioned by delivery date: new content on a
    later date is a new version, the same content is already stored, and other content for
    the same date again is a conflict with what that date stored."""
    lake_ = EditedChurn(tmp_path, "customers.yaml", "version_column: updated_at\n", "")
    plain_drop(lake_.config, BASE)
    lake_.ingest(spark, BASE)
    day = date(2026, 3, 2)
    moved = GOOD_CUSTOMERS[0].replace(",DE,", ",FR,")
    plain_drop(lake_.config, day, customers=[moved, GOOD_CUSTOMERS[1]], transactions=[])
    result = lake_.ingest(spark, day)
    counts = result.details["customers"]
    assert (counts["inserted"], counts["already_in_bronze"], result.rows_quarantined) == (1, 1, 0)
    first = lake_.rows(spark, "bronze_customers", "customer_id = 'C0000100'")
    assert sorted((r["_delivery_date"], r["country"]) for r in first) == [
        (BASE, "DE"),
        (day, "FR"),
    ]

    resent = GOOD_CUSTOMERS[0].replace(",DE,", ",IT,")
    plain_drop(lake_.config, day, customers=[resent, GOOD_CUSTOMERS[1]], transactions=[])
    rerun = lake_.ingest(spark, day)
    assert rerun.details["customers"]["already_in_bronze"] == 1
    conflict = lake_.rows(spark, "quarantine", f"delivery_date = '{day}'")
    assert [(r["reasons"], "IT" in r["record"], "FR" in r["stored_record"]) for r in conflict] == [
        (["conflict_with_stored"], True, True)
    ]
    again = lake_.rows(spark, "bronze_customers", "customer_id = 'C0000100'")
    assert sorted(r["country"] for r in again) == ["DE", "FR"]


OUTCOME_HEADER = "customer_id,as_of_date,churned,delivered_at"
SENT = "2026-03-02T05:00:00Z"


def test_an_occasional_source_is_skipped_without_a_folder_and_ingested_with_one(spark, tmp_path):
    """The churn outcomes (schedule: occasional): a date without their folder ingests the
    daily sources only; a later drop lands in bronze, its bad lines in quarantine."""
    config = make_config(tmp_path / "lakehouse")
    tables = churn_tables(config)
    plain_drop(config, BASE)
    first = ingest(spark, config, BASE)
    assert set(first.details) == {"customers", "transactions"}
    assert io.current_version(spark, tables.bronze("outcomes")) is None
    day = date(2026, 3, 2)
    plain_drop(config, day)
    (folder(config, "outcomes", day) / "outcomes_x.csv").write_text(
        "\n".join(
            [
                OUTCOME_HEADER,
                f"C0000100,2026-03-01,1,{SENT}",
                f"C0000101,2026-03-01,0,{SENT}",
                f"C0000101,2026-03-01,2,{SENT}",  # not allowed; the line above stays
                f"C0000102,2026-03-01,0,{SENT}",  # one key and version, two outcomes
                f"C0000102,2026-03-01,1,{SENT}",
            ]
        )
        + "\n"
    )
    result = ingest(spark, config, day)
    assert {k: v for k, v in result.details["outcomes"].items() if k != "files"} == {
        "lines": 5,
        "inserted": 2,
        "updated": 0,
        "duplicates_in_drop": 0,
        "already_in_bronze": 0,
        "quarantined": 3,
    }
    stored = io.read_table(spark, tables.bronze("outcomes")).orderBy("customer_id").collect()
    assert [(r["customer_id"], r["churned"]) for r in stored] == [
        ("C0000100", 1),
        ("C0000101", 0),
    ]
    reasons = [
        (r["record"].split(",")[0], r["reasons"])
        for r in quarantined(spark, config, day)
        if r["source"] == "outcomes"
    ]
    assert sorted(reasons) == [
        ("C0000101", ["not_allowed:churned"]),
        ("C0000102", ["conflict"]),
        ("C0000102", ["conflict"]),
    ]


def test_a_missing_folder_of_a_daily_source_still_fails(spark, tmp_path):
    config = make_config(tmp_path / "lakehouse")
    (folder(config, "customers", BASE) / "customers_1.csv").write_text(CUSTOMER_HEADER + "\n")
    with pytest.raises(DataError, match=r"source folder for transactions on 2026-03-01 is missing"):
        ingest(spark, config, BASE)
