from __future__ import annotations

import pytest
from pyspark.sql import types as T

from scoring.core.contracts import load_contract, parse_type, read_contract, spark_schema
from scoring.core.errors import ContractError


@pytest.mark.parametrize("bad", ["varchar", "decimal(12)", "map<string>", "map<,int>", None])
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


@pytest.mark.parametrize(
    ("name", "shown"),
    [("customer id", "' '"), ("order.date", "'.'"), ("amount(eur)", "'('"), ("a`b", "'`'")],
)
def test_a_column_name_delta_or_spark_cannot_carry_is_rejected_naming_it(tmp_path, name, shown):
    folder = write(
        tmp_path,
        "name: b\nkind: raw_source\ndescription: d\ncolumns:\n"
        "  - {name: id, type: string, nullable: false, description: x}\n"
        f"  - {{name: '{name}', type: string, nullable: true, description: x}}\n",
    )
    with pytest.raises(ContractError) as caught:
        load_contract("broken", folder)
    message = str(caught.value)
    assert f"broken.yaml: columns[1] ('{name}'): a column name cannot hold [{shown}" in message


@pytest.mark.parametrize("name", ["''", "7", "null"])
def test_a_column_name_that_is_not_text_is_rejected(tmp_path, name):
    folder = write(
        tmp_path,
        "name: b\nkind: raw_source\ndescription: d\ncolumns:\n"
        f"  - {{name: {name}, type: string, nullable: false, description: x}}\n",
    )
    with pytest.raises(ContractError, match=r"columns\[0\]: 'name' must be a non-empty text"):
        load_contract("broken", folder)


def test_names_accepted_by_delta_pass_the_check(tmp_path):
    folder = write(
        tmp_path,
        "name: b\nkind: raw_source\ndescription: d\nkeys: [Kunden-Nr]\ncolumns:\n"
        "  - {name: Kunden-Nr, type: string, nullable: false, description: x}\n"
        "  - {name: 2nd_score, type: double, nullable: true, description: x}\n"
        "  - {name: größe, type: double, nullable: true, description: x}\n",
    )
    contract = load_contract("broken", folder)
    assert contract.column_names == ("Kunden-Nr", "2nd_score", "größe")


def test_two_columns_differing_only_in_case_are_rejected(tmp_path):
    folder = write(
        tmp_path,
        "name: b\nkind: raw_source\ndescription: d\ncolumns:\n"
        "  - {name: Age, type: int, nullable: true, description: x}\n"
        "  - {name: age, type: int, nullable: true, description: x}\n",
    )
    with pytest.raises(ContractError, match=r"\['Age', 'age'\] declared more than once"):
        load_contract("broken", folder)


def test_delivered_as_names_the_column_in_the_files_and_may_hold_what_a_name_may_not(tmp_path):
    folder = write(
        tmp_path,
        "name: b\nkind: raw_source\ndescription: d\nformat: csv\nkeys: [customer_id]\n"
        "columns:\n"
        "  - {name: customer_id, delivered_as: 'Customer ID', type: string, nullable: false,"
        " description: x}\n"
        "  - {name: amount, type: double, nullable: true, description: x}\n",
    )
    contract = load_contract("broken", folder)
    assert contract.column_names == ("customer_id", "amount")
    assert contract.delivered_names == ("Customer ID", "amount")


@pytest.mark.parametrize(
    ("extra", "columns", "message"),
    [
        (
            "format: csv\n",
            "  - {name: a, delivered_as: x, type: string, nullable: true, description: x}\n"
            "  - {name: x, type: string, nullable: true, description: x}\n",
            r"broken\.yaml: two columns are delivered as \['x'\]",
        ),
        (
            "format: csv\n",
            "  - {name: a, delivered_as: '', type: string, nullable: true, description: x}\n",
            r"columns\[0\] \(a\): 'delivered_as' must be a non-empty text",
        ),
        (
            "format: csv\n",
            "  - {name: a, delivered_as: ' A', type: string, nullable: true, description: x}\n",
            r"broken\.yaml: delivered_as \[' A'\] begin or end with blanks.*CSV header",
        ),
        (
            "",
            "  - {name: a, delivered_as: A, type: string, nullable: true, description: x}\n",
            r"columns \['a'\] have 'delivered_as'.*no 'format'",
        ),
    ],
)
def test_a_bad_delivered_as_is_refused_naming_file_and_column(tmp_path, extra, columns, message):
    folder = write(
        tmp_path, f"name: b\nkind: raw_source\ndescription: d\n{extra}columns:\n{columns}"
    )
    with pytest.raises(ContractError, match=message):
        load_contract("broken", folder)


def test_array_of_strings_type_is_supported():
    assert parse_type("array<string>") == T.ArrayType(T.StringType(), containsNull=True)


def test_quarantine_contract_has_reasons_as_array_of_strings():
    schema = spark_schema(load_contract("quarantine"))
    assert schema["reasons"].dataType == T.ArrayType(T.StringType(), containsNull=True)
    assert load_contract("quarantine").partition_by == ("delivery_date",)


def test_map_type_is_supported_for_class_probabilities():
    assert parse_type("map<string,double>") == T.MapType(T.StringType(), T.DoubleType(), True)


def test_a_use_case_contract_is_read_from_its_own_path(tmp_path):
    path = tmp_path / "policies.yaml"
    path.write_text(
        "name: policies\nkind: raw_source\ndescription: d\nformat: parquet\n"
        "file_glob: '*.parquet'\nkeys: [policy_no]\ncolumns:\n"
        "  - {name: policy_no, type: bigint, nullable: false, description: x}\n"
    )
    contract = read_contract(path)
    assert (contract.format, contract.keys, contract.path) == ("parquet", ("policy_no",), str(path))


def test_a_missing_contract_file_is_named(tmp_path):
    with pytest.raises(ContractError, match=r"nope\.yaml: contract file not found"):
        read_contract(tmp_path / "nope.yaml")


def test_an_unknown_drop_format_is_refused_naming_the_formats(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(
        "name: x\nkind: raw_source\ndescription: d\nformat: xml\ncolumns:\n"
        "  - {name: id, type: string, nullable: false, description: x}\n"
    )
    with pytest.raises(ContractError, match=r"x\.yaml: format: 'xml' is not one of \['csv'"):
        read_contract(path)


def test_every_engine_table_column_has_a_description():
    for name in (
        "quarantine",
        "scores",
        "drift_metrics",
        "model_quality",
        "model_comparison",
        "runs",
        "bronze_lineage",
        "features_lineage",
        "score_outputs/binary",
        "score_outputs/multiclass",
        "score_outputs/regression",
    ):
        assert all(c.description for c in load_contract(name).columns), name


@pytest.mark.parametrize(("given", "spark_name"), [("latin-1", "iso-8859-1"), ("UTF8", "utf-8")])
def test_a_contract_encoding_is_named_as_spark_decodes_it(tmp_path, given, spark_name):
    path = tmp_path / "x.yaml"
    path.write_text(
        f"name: x\nkind: raw_source\ndescription: d\nencoding: {given}\ncolumns:\n"
        "  - {name: id, type: string, nullable: false, description: x}\n"
    )
    assert read_contract(path).encoding == spark_name


def test_an_encoding_spark_cannot_decode_is_refused_naming_the_ones_it_can(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(
        "name: x\nkind: raw_source\ndescription: d\nencoding: cp1252\ncolumns:\n"
        "  - {name: id, type: string, nullable: false, description: x}\n"
    )
    with pytest.raises(
        ContractError, match=r"encoding: 'cp1252' is not one Spark decodes \(iso-8859-1"
    ):
        read_contract(path)


def test_rounding_is_only_for_decimals(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(
        "name: x\nkind: raw_source\ndescription: d\ncolumns:\n"
        "  - {name: id, type: string, nullable: false, description: x, rounding: half_even}\n"
    )
    with pytest.raises(
        ContractError, match=r"\(id\): 'rounding' is one of \['half_up', 'half_even'\]"
    ):
        read_contract(path)


def test_a_raw_contract_delivers_daily_unless_it_says_occasional(tmp_path):
    path = tmp_path / "x.yaml"
    body = "name: x\nkind: raw_source\ndescription: d\nformat: csv\n{}columns:\n"
    body += "  - {{name: id, type: string, nullable: false, description: x}}\n"
    path.write_text(body.format(""))
    assert read_contract(path).schedule == "daily"
    path.write_text(body.format("schedule: occasional\n"))
    assert read_contract(path).schedule == "occasional"
    path.write_text(body.format("schedule: weekly\n"))
    with pytest.raises(ContractError, match=r"x\.yaml: schedule: 'weekly' is not one of"):
        read_contract(path)
