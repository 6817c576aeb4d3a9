from __future__ import annotations

from datetime import UTC, date, datetime

from pyspark.sql import functions as F

from scoring.ingest.records import (
    blank_to_null,
    column_reasons,
    decode_text,
    flag_future,
    mark_duplicates,
    parse_csv_lines,
    parse_json_lines,
    typed_value,
    validate,
)
from scoring.usecase import load_usecase
from tests.conftest import CHURN_DIR
from tests.helpers import assert_frames_equal

# The churn demo's raw contracts: a CSV dimension and a JSON lines event source.
CUSTOMERS = load_usecase(CHURN_DIR).sources["customers"].contract
TRANSACTIONS = load_usecase(CHURN_DIR).sources["transactions"].contract
REASONS_SCHEMA = "raw string, reasons array<string>"


def reasons_for(spark, contract, column, values):
    frame = spark.createDataFrame([(v,) for v in values], "raw string")
    spec = contract.column(column)
    return frame.select("raw", column_reasons(F.col("raw"), spec).alias("reasons"))


def test_range_is_inclusive_at_both_ends_and_a_null_optional_value_passes(spark):
    actual = reasons_for(spark, CUSTOMERS, "birth_year", ["1900", "2010", "1899", "2011", None])
    oor = ["out_of_range:birth_year"]
    expected = spark.createDataFrame(
        [("1900", []), ("2010", []), ("1899", oor), ("2011", oor), (None, [])], REASONS_SCHEMA
    )
    assert_frames_equal(actual, expected)


def test_value_that_does_not_cast_is_bad_type_and_null_required_value_is_missing(spark):
    actual = reasons_for(spark, TRANSACTIONS, "amount", ["12.5", "abc", None])
    expected = spark.createDataFrame(
        [("12.5", []), ("abc", ["bad_type:amount"]), (None, ["missing:amount"])], REASONS_SCHEMA
    )
    assert_frames_equal(actual, expected)


def test_pattern_is_checked_on_the_raw_text(spark):
    actual = reasons_for(spark, CUSTOMERS, "customer_id", ["C0000001", "C123", None])
    expected = spark.createDataFrame(
        [("C0000001", []), ("C123", ["pattern:customer_id"]), (None, ["missing:customer_id"])],
        REASONS_SCHEMA,
    )
    assert_frames_equal(actual, expected)


def test_value_outside_allowed_is_not_allowed_and_case_matters(spark):
    actual = reasons_for(spark, CUSTOMERS, "segment", ["smb", "SMB", None])
    expected = spark.createDataFrame(
        [("smb", []), ("SMB", ["not_allowed:segment"]), (None, ["missing:segment"])],
        REASONS_SCHEMA,
    )
    assert_frames_equal(actual, expected)


def test_date_range_bounds_are_dates(spark):
    actual = reasons_for(spark, CUSTOMERS, "signup_date", ["2000-01-01", "1999-12-31", None])
    expected = spark.createDataFrame(
        [
            ("2000-01-01", []),
            ("1999-12-31", ["out_of_range:signup_date"]),
            (None, ["missing:signup_date"]),
        ],
        REASONS_SCHEMA,
    )
    assert_frames_equal(actual, expected)


def test_blank_values_count_as_absent(spark):
    frame = spark.createDataFrame([("",), ("  ",), ("x",), (None,)], "raw string")
    actual = frame.select("raw", blank_to_null(F.col("raw")).alias("value"))
    expected = spark.createDataFrame(
        [("", None), ("  ", None), ("x", "x"), (None, None)], "raw string, value string"
    )
    assert_frames_equal(actual, expected)


def lines(spark, texts, file="f1"):
    return spark.createDataFrame([(t, file) for t in texts], "_record string, _source_file string")


def test_csv_columns_bind_by_header_name_and_a_short_line_is_corrupt(spark):
    header = tuple(
        [
            "updated_at",
            "customer_id",
            "extra",
            "signup_date",
            "country",
            "segment",
            "birth_year",
            "marketing_opt_in",
        ]
    )
    actual = parse_csv_lines(
        lines(spark, ["t,C0000001,x,2024-01-01,DE,smb,,true", "t,C0000002"]), CUSTOMERS, header
    ).select("customer_id", "updated_at", "birth_year", "_corrupt_record")
    expected = spark.createDataFrame(
        [("C0000001", "t", None, None), ("C0000002", "t", None, "t,C0000002")],
        "customer_id string, updated_at string, birth_year string, _corrupt_record string",
    )
    assert_frames_equal(actual, expected)


def test_json_numbers_keep_their_text_and_keys_tell_absent_from_null(spark):
    texts = ['{"transaction_id": "T1", "amount": 12.50, "channel": null}', '{"amount": ']
    actual = parse_json_lines(lines(spark, texts), TRANSACTIONS).select(
        "amount", "channel", "_keys", "_corrupt_record"
    )
    expected = spark.createDataFrame(
        [
            ("12.5", None, ["transaction_id", "amount", "channel"], None),
            (None, None, None, '{"amount": '),
        ],
        "amount string, channel string, _keys array<string>, _corrupt_record string",
    )
    assert_frames_equal(actual, expected)


def test_malformed_record_gets_only_the_malformed_reason(spark):
    frame = spark.createDataFrame(
        [("bad", "f", "bad", *([None] * 7))],
        "_record string, _source_file string, _corrupt_record string, "
        + ", ".join(f"{c} string" for c in CUSTOMERS.column_names),
    )
    actual = validate(frame, CUSTOMERS).select("_record", "_reasons")
    expected = spark.createDataFrame(
        [("bad", ["malformed"])], "_record string, _reasons array<string>"
    )
    assert_frames_equal(actual, expected)


def test_valid_record_is_typed_per_contract(spark):
    values = ("C0000001", "2024-01-10", None, "smb", "1980", "true", "2026-02-28T10:00:00")
    frame = spark.createDataFrame(
        [("line", "f", None, *values)],
        "_record string, _source_file string, _corrupt_record string, "
        + ", ".join(f"{c} string" for c in CUSTOMERS.column_names),
    )
    actual = validate(frame, CUSTOMERS).drop("_record", "_source_file")
    expected = spark.createDataFrame(
        [("C0000001", date(2024, 1, 10), None, "smb", 1980, True, datetime(2026, 2, 28, 10), [])],
        "customer_id string, signup_date date, country string, segment string, birth_year int, "
        "marketing_opt_in boolean, updated_at timestamp, _reasons array<string>",
    )
    assert_frames_equal(actual, expected)


def test_newest_customer_version_wins_and_invalid_rows_stay_quarantined(spark):
    frame = spark.createDataFrame(
        [
            ("C1", datetime(2026, 3, 1), "f1", "new", []),
            ("C1", datetime(2026, 2, 1), "f1", "old", []),
            ("C1", None, "f1", "broken", ["missing:updated_at"]),
            ("C2", datetime(2026, 2, 1), "f1", "only", []),
        ],
        "customer_id string, updated_at timestamp, _source_file string, _record string, "
        "_reasons array<string>",
    )
    actual = mark_duplicates(with_contract_columns(frame, CUSTOMERS), CUSTOMERS)
    actual = actual.select("_record", "_status")
    expected = spark.createDataFrame(
        [("new", "valid"), ("old", "duplicate"), ("broken", "quarantined"), ("only", "valid")],
        "_record string, _status string",
    )
    assert_frames_equal(actual, expected)


def test_identical_transaction_redelivery_keeps_one(spark):
    frame = spark.createDataFrame(
        [("T1", "f1", "same", []), ("T1", "f2", "same", []), (None, "f1", "x", ["malformed"])],
        "transaction_id string, _source_file string, _record string, _reasons array<string>",
    )
    actual = mark_duplicates(with_contract_columns(frame, TRANSACTIONS), TRANSACTIONS)
    actual = actual.select("_source_file", "_record", "_status")
    expected = spark.createDataFrame(
        [("f2", "same", "valid"), ("f1", "same", "duplicate"), ("f1", "x", "quarantined")],
        "_source_file string, _record string, _status string",
    )
    assert_frames_equal(actual, expected)


def with_contract_columns(frame, contract):
    """`frame` with every contract column it lacks, as nulls of the contract's type."""
    missing = [c for c in contract.columns if c.name not in frame.columns]
    return frame.select("*", *[F.lit(None).cast(c.spark_type).alias(c.name) for c in missing])


def test_one_key_and_version_with_two_contents_in_a_drop_is_a_conflict_for_both(spark):
    at = datetime(2026, 3, 1)
    frame = spark.createDataFrame(
        [
            ("C1", at, "DE", "f1", "a", []),
            ("C1", at, "FR", "f1", "b", []),  # same key and version, another country
            ("C2", at, "DE", "f1", "c", []),
            ("C2", at, "DE", "f2", "c", []),  # the same record again: a duplicate
        ],
        "customer_id string, updated_at timestamp, country string, _source_file string, "
        "_record string, _reasons array<string>",
    )
    marked = mark_duplicates(with_contract_columns(frame, CUSTOMERS), CUSTOMERS)
    actual = marked.select("_record", "_source_file", "_status", "_reasons")
    expected = spark.createDataFrame(
        [
            ("a", "f1", "quarantined", ["conflict"]),
            ("b", "f1", "quarantined", ["conflict"]),
            ("c", "f2", "valid", []),
            ("c", "f1", "duplicate", []),
        ],
        "_record string, _source_file string, _status string, _reasons array<string>",
    )
    assert_frames_equal(actual, expected)


def test_a_decimal_with_more_digits_is_quarantined_unless_the_contract_rounds(spark, tmp_path):
    from dataclasses import replace

    amount = TRANSACTIONS.column("amount")
    raw = spark.createDataFrame([("12.345",), ("12.34",), ("12.355",)], "a string")
    strict = raw.select(column_reasons(F.col("a"), amount).alias("r")).collect()
    assert [r["r"] for r in strict] == [["precision:amount"], [], ["precision:amount"]]
    half_even = replace(amount, rounding="half_even")
    rounded = raw.select(
        typed_value(F.col("a"), half_even).cast("string").alias("v"),
        column_reasons(F.col("a"), half_even).alias("r"),
    ).collect()
    assert [(r["v"], r["r"]) for r in rounded] == [("12.34", []), ("12.34", []), ("12.36", [])]


def test_a_json_object_that_writes_a_key_twice_is_ambiguous(spark):
    texts = ['{"transaction_id": "T0000000001", "amount": 10.00, "amount": 40000.00}']
    parsed = parse_json_lines(lines(spark, texts), TRANSACTIONS)
    (row,) = validate(parsed, TRANSACTIONS).select("_reasons").collect()
    assert row["_reasons"][0] == "ambiguous"


def test_text_that_is_not_valid_utf8_keeps_its_bytes_and_only_the_encoding_reason(spark):
    raw = spark.createDataFrame(
        [(bytearray(b"c\xf6nsumer,1"), "f1")], "b binary, _source_file string"
    )
    lines_ = raw.select(F.col("b").cast("string").alias("_record"), "_source_file")
    decoded = decode_text(lines_, "utf-8")
    parsed = parse_csv_lines(decoded, CUSTOMERS, CUSTOMERS.column_names)
    (row,) = validate(parsed, CUSTOMERS).select("_record", "_record_base64", "_reasons").collect()
    assert row["_record"] == "c\ufffdnsumer,1"
    assert row["_record_base64"] == "Y/Zuc3VtZXIsMQ=="
    assert row["_reasons"] == ["encoding"]


def test_a_latin1_source_is_decoded_as_latin1(spark):
    raw = spark.createDataFrame(
        [(bytearray(b"c\xf6nsumer"), "f1")], "b binary, _source_file string"
    )
    lines_ = raw.select(F.col("b").cast("string").alias("_record"), "_source_file")
    (row,) = decode_text(lines_, "iso-8859-1").collect()
    assert (row["_record"], row["_record_base64"]) == ("cönsumer", None)


def test_a_version_after_the_latest_instant_is_future(spark):
    frame = spark.createDataFrame(
        [("C1", datetime(2030, 1, 1), []), ("C2", datetime(2026, 3, 1, 23), [])],
        "customer_id string, updated_at timestamp, _reasons array<string>",
    )
    flagged = flag_future(frame, CUSTOMERS, datetime(2026, 3, 2, tzinfo=UTC))
    assert [r["_reasons"] for r in flagged.orderBy("customer_id").collect()] == [
        ["future:updated_at"],
        [],
    ]
