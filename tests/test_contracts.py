from __future__ import annotations

import pytest
from pyspark.sql import types as T

from scoring.contracts import load_contract, parse_type, spark_schema
from scoring.errors import ContractError


def test_transactions_contract_builds_its_spark_schema():
    schema = spark_schema(load_contract("transactions"))
    assert schema["transaction_id"] == T.StructField("transaction_id", T.StringType(), False)
    assert schema["amount"].dataType == T.DecimalType(12, 2)
    assert schema["event_time"].dataType == T.TimestampType()


def test_customers_contract_has_keys_version_column_and_allowed_values():
    contract = load_contract("customers")
    assert contract.keys == ("customer_id",)
    assert contract.version_column == "updated_at"
    assert contract.column("segment").allowed == ("consumer", "smb", "enterprise")
    assert contract.column("country").nullable is True


def test_every_column_has_a_description():
    for name in ("customers", "transactions"):
        assert all(c.description for c in load_contract(name).columns)


@pytest.mark.parametrize("bad", ["varchar", "decimal(12)", "map<string,int>", None])
def test_unknown_type_is_rejected_with_the_known_ones(bad):
    with pytest.raises((ValueError, KeyError, TypeError)):
        parse_type(bad)


def write(tmp_path, text):
    (tmp_path / "broken.yaml").write_text(text)
    return str(tmp_path)


def test_contract_with_unknown_column_key_names_file_and_column(tmp_path):
    folder = write(
        tmp_path,
        "name: b\nkind: raw_source\ndescription: d\ncolumns:\n"
        "  - {name: id, type: string, nullable: false, description: x, nulable: true}\n",
    )
    with pytest.raises(ContractError, match=r"broken\.yaml: columns\[0\] \(id\): unknown key"):
        load_contract("broken", folder)


def test_contract_key_that_is_not_a_column_is_rejected(tmp_path):
    folder = write(
        tmp_path,
        "name: b\nkind: raw_source\ndescription: d\nkeys: [nope]\ncolumns:\n"
        "  - {name: id, type: string, nullable: false, description: x}\n",
    )
    with pytest.raises(ContractError, match="contract 'b' has no column 'nope'"):
        load_contract("broken", folder)


def test_contract_with_bad_type_names_the_column(tmp_path):
    folder = write(
        tmp_path,
        "name: b\nkind: raw_source\ndescription: d\ncolumns:\n"
        "  - {name: amount, type: money, nullable: false, description: x}\n",
    )
    with pytest.raises(ContractError, match=r"\(amount\): unknown type 'money'"):
        load_contract("broken", folder)


def test_array_of_strings_type_is_supported():
    assert parse_type("array<string>") == T.ArrayType(T.StringType(), containsNull=True)


def test_quarantine_contract_has_reasons_as_array_of_strings():
    schema = spark_schema(load_contract("quarantine"))
    assert schema["reasons"].dataType == T.ArrayType(T.StringType(), containsNull=True)
    assert load_contract("quarantine").partition_by == ("delivery_date",)
