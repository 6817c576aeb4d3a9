"""Reading Parquet drops: typed records through the text checks, schema problems named by file."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scoring.core.contracts import read_contract
from scoring.core.errors import DataError
from scoring.ingest.drops import find_delivery
from scoring.ingest.reading import checked_records

DAY = date(2026, 3, 1)
LATEST = datetime(2026, 3, 3, tzinfo=UTC)
CONTRACT = """\
name: policies
kind: raw_source
description: d
format: parquet
file_glob: "policies_*.parquet"
keys: [policy_no]
columns:
  - {name: policy_no, type: bigint, nullable: false, description: p}
  - {name: product, type: string, nullable: false, allowed: [auto, home], description: p}
  - {name: value, type: double, nullable: true, range: [0, 1000], description: v}
  - {name: start, type: date, nullable: false, description: s}
"""


@pytest.fixture
def contract(tmp_path):
    path = tmp_path / "policies.yaml"
    path.write_text(CONTRACT)
    return read_contract(path)


def write(folder, name, columns: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), folder / name)


def test_typed_records_get_the_same_checks_and_reasons_as_text(spark, contract, tmp_path):
    folder = tmp_path / "raw" / "policies" / DAY.isoformat()
    write(
        folder,
        "policies_a.parquet",
        {
            "policy_no": pa.array([1, 2, 3], pa.int64()),
            "product": ["auto", "boat", "home"],
            "value": pa.array([10.0, 20.0, 5000.0]),
            "start": pa.array([DAY, DAY, None], pa.date32()),
            "extra": ["x", "y", "z"],  # ignored: not in the contract
        },
    )
    files = find_delivery(spark, str(tmp_path / "raw"), "policies", contract, DAY).files
    rows = {r["policy_no"]: r for r in checked_records(spark, files, contract, LATEST).collect()}
    assert rows[1]["_reasons"] == [] and rows[1]["_status"] == "valid"
    assert (rows[1]["value"], rows[1]["start"]) == (10.0, DAY)
    assert rows[2]["_reasons"] == ["not_allowed:product"]
    assert rows[3]["_reasons"] == ["out_of_range:value", "missing:start"]  # contract order
    assert rows[3]["value"] == 5000.0  # a contract column may be called `value`
    assert rows[2]["_source_file"].endswith("policies_a.parquet")


def test_the_quarantined_record_is_the_row_as_json(spark, contract, tmp_path):
    folder = tmp_path / "raw" / "policies" / DAY.isoformat()
    write(
        folder,
        "policies_a.parquet",
        {
            "policy_no": pa.array([7], pa.int64()),
            "product": ["boat"],
            "value": pa.array([None], pa.float64()),
            "start": pa.array([DAY], pa.date32()),
        },
    )
    files = find_delivery(spark, str(tmp_path / "raw"), "policies", contract, DAY).files
    (row,) = checked_records(spark, files, contract, LATEST).collect()
    assert row["_record"] == '{"policy_no":7,"product":"boat","start":"2026-03-01"}'


def test_files_with_different_schemas_are_read_each_with_its_own(spark, contract, tmp_path):
    folder = tmp_path / "raw" / "policies" / DAY.isoformat()
    base = {"product": ["auto"], "value": pa.array([1.0]), "start": pa.array([DAY], pa.date32())}
    write(folder, "policies_a.parquet", {"policy_no": pa.array([1], pa.int64()), **base})
    write(
        folder,
        "policies_b.parquet",
        {"policy_no": pa.array([2], pa.int32()), **base, "note": ["n"]},
    )
    files = find_delivery(spark, str(tmp_path / "raw"), "policies", contract, DAY).files
    checked = checked_records(spark, files, contract, LATEST)
    assert sorted(r["policy_no"] for r in checked.collect()) == [1, 2]


def test_a_file_without_a_contract_column_fails_naming_file_and_column(spark, contract, tmp_path):
    folder = tmp_path / "raw" / "policies" / DAY.isoformat()
    write(
        folder, "policies_a.parquet", {"policy_no": pa.array([1], pa.int64()), "product": ["auto"]}
    )
    files = find_delivery(spark, str(tmp_path / "raw"), "policies", contract, DAY).files
    with pytest.raises(
        DataError, match=r"policies_a\.parquet: Parquet schema lacks required column 'value'"
    ):
        checked_records(spark, files, contract, LATEST)


def test_a_file_that_is_not_parquet_fails_naming_it(spark, contract, tmp_path):
    folder = tmp_path / "raw" / "policies" / DAY.isoformat()
    folder.mkdir(parents=True)
    (folder / "policies_a.parquet").write_text("policy_no,product\n1,auto\n")
    with pytest.raises(DataError, match=r"policies_a\.parquet: not a Parquet file"):
        find_delivery(spark, str(tmp_path / "raw"), "policies", contract, DAY)


RENAMED = """\
name: policies
kind: raw_source
description: d
format: {format}
file_glob: "policies_*.{format}"
keys: [policy_no]
columns:
  - {{name: policy_no, delivered_as: "Policy No.", type: bigint, nullable: false, description: p}}
  - {{name: product, delivered_as: "Product (line)", type: string, nullable: false, description: p}}
  - {{name: value, type: double, nullable: true, description: v}}
"""


def renamed_contract(tmp_path, format_):
    path = tmp_path / "policies.yaml"
    path.write_text(RENAMED.format(format=format_))
    return read_contract(path)


def test_csv_columns_are_read_by_the_header_names_the_contract_says_they_are_delivered_as(
    spark, tmp_path
):
    contract = renamed_contract(tmp_path, "csv")
    folder = tmp_path / "raw" / "policies" / DAY.isoformat()
    folder.mkdir(parents=True)
    (folder / "policies_a.csv").write_text(
        'value,"Product (line)",Policy No.\n2.5,auto,11\n,home,12\n'
    )
    files = find_delivery(spark, str(tmp_path / "raw"), "policies", contract, DAY).files
    checked = checked_records(spark, files, contract, LATEST)
    rows = sorted(
        (r["policy_no"], r["product"], r["value"], r["_status"])
        for r in checked.select("policy_no", "product", "value", "_status").collect()
    )
    assert rows == [(11, "auto", 2.5, "valid"), (12, "home", None, "valid")]


def test_a_csv_header_with_the_contract_name_instead_of_the_delivered_one_fails_naming_it(
    spark, tmp_path
):
    contract = renamed_contract(tmp_path, "csv")
    folder = tmp_path / "raw" / "policies" / DAY.isoformat()
    folder.mkdir(parents=True)
    (folder / "policies_a.csv").write_text('policy_no,"Product (line)",value\n11,auto,2.5\n')
    files = find_delivery(spark, str(tmp_path / "raw"), "policies", contract, DAY).files
    with pytest.raises(
        DataError, match=r"policies_a\.csv: CSV header lacks required column 'Policy No\.'"
    ):
        checked_records(spark, files, contract, LATEST)


def test_json_keys_and_parquet_columns_are_read_by_their_delivered_names(spark, tmp_path):
    (tmp_path / "j").mkdir()
    json_contract = renamed_contract(tmp_path / "j", "jsonl")
    folder = tmp_path / "raw" / "policies" / DAY.isoformat()
    folder.mkdir(parents=True)
    (folder / "policies_a.jsonl").write_text(
        '{"Policy No.": 21, "Product (line)": "home", "value": 7.0}\n'
        '{"policy_no": 22, "product": "auto", "value": 1.0}\n'
    )
    files = find_delivery(spark, str(tmp_path / "raw"), "policies", json_contract, DAY).files
    rows = {
        r["_record"][:14]: (r["policy_no"], r["product"], r["_reasons"])
        for r in checked_records(spark, files, json_contract, LATEST).collect()
    }
    assert rows['{"Policy No.":'] == (21, "home", [])
    # the contract's own names are not the delivered ones: both required values are missing
    assert rows['{"policy_no": '] == (None, None, ["missing:policy_no", "missing:product"])

    parquet_contract = renamed_contract(tmp_path, "parquet")
    parquet_folder = tmp_path / "rawp" / "policies" / DAY.isoformat()
    write(
        parquet_folder,
        "policies_a.parquet",
        {
            "Policy No.": pa.array([31], pa.int64()),
            "Product (line)": ["auto"],
            "value": pa.array([None], pa.float64()),
        },
    )
    files = find_delivery(spark, str(tmp_path / "rawp"), "policies", parquet_contract, DAY).files
    (row,) = checked_records(spark, files, parquet_contract, LATEST).collect()
    assert (row["policy_no"], row["product"], row["value"], row["_status"]) == (
        31,
        "auto",
        None,
        "valid",
    )
    assert row["_record"] == '{"Policy No.":31,"Product (line)":"auto"}'
