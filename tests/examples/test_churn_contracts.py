from __future__ import annotations

from pyspark.sql import types as T

from scoring.core.contracts import spark_schema


def test_transactions_contract_builds_its_spark_schema(churn):
    schema = spark_schema(churn.sources["transactions"].contract)
    assert schema["transaction_id"] == T.StructField("transaction_id", T.StringType(), False)
    assert schema["amount"].dataType == T.DecimalType(12, 2)
    assert schema["event_time"].dataType == T.TimestampType()


def test_customers_contract_has_keys_version_column_and_allowed_values(churn):
    contract = churn.sources["customers"].contract
    assert contract.keys == ("customer_id",)
    assert contract.version_column == "updated_at"
    assert contract.column("segment").allowed == ("consumer", "smb", "enterprise")
    assert contract.column("country").nullable is True


def test_transactions_are_events_and_customers_a_dimension(churn):
    assert churn.sources["transactions"].is_event
    assert not churn.sources["customers"].is_event


def test_every_column_has_a_description(churn):
    for source in churn.sources.values():
        assert all(c.description for c in source.contract.columns)
    assert all(c.description for c in churn.features.contract.columns)
