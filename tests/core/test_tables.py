from __future__ import annotations

import pytest

from scoring.core.config import load_config
from scoring.core.errors import ConfigError
from scoring.core.tables import logical_tables, resolve_tables


def test_a_use_case_has_a_bronze_table_per_source_and_the_engine_tables():
    assert logical_tables(["policies", "claims"]) == (
        "bronze_policies",
        "bronze_claims",
        "quarantine",
        "features",
        "scores",
        "scores_current",
        "score_errors",
        "drift_metrics",
        "model_quality",
        "model_comparison",
        "runs",
    )


def test_tables_live_under_the_storage_root_in_a_folder_of_the_use_case(tmp_path):
    config = load_config("local", [f"storage.root={tmp_path}"])
    tables = resolve_tables(config, "claims", ["policies"])
    assert tables["bronze_policies"].path == f"{tmp_path}/claims/bronze_policies"
    assert tables["scores"].path == f"{tmp_path}/claims/scores"
    assert tables.bronze("policies") == tables["bronze_policies"]


def test_two_use_cases_never_share_a_table(tmp_path):
    config = load_config("local", [f"storage.root={tmp_path}"])
    one = resolve_tables(config, "churn", ["customers"])
    two = resolve_tables(config, "claims", ["customers"])
    assert {str(one[n]) for n in one}.isdisjoint({str(two[n]) for n in two})


def test_a_catalog_schema_names_every_table_with_the_use_case_filled_in():
    config = load_config("local", ["storage.catalog_schema=main.scoring_{usecase}"])
    tables = resolve_tables(config, "claims", ["policies"])
    assert tables["features"].catalog_name == "main.scoring_claims.features"
    assert tables["bronze_policies"].catalog_name == "main.scoring_claims.bronze_policies"
    assert tables["features"].path is None


def test_a_table_given_by_key_wins_as_catalog_name_or_path(tmp_path):
    config = load_config(
        "local",
        [
            f"storage.root={tmp_path}",
            "tables.scores=main.ml.scores_{usecase}",
            "tables.features=s3://bucket/{usecase}/features",
        ],
    )
    tables = resolve_tables(config, "claims", [])
    assert tables["scores"].catalog_name == "main.ml.scores_claims"
    assert tables["features"].path == "s3://bucket/claims/features"
    assert tables["runs"].path == f"{tmp_path}/claims/runs"


def test_a_score_only_use_case_reads_its_own_features_table():
    config = load_config("local")
    tables = resolve_tables(config, "ext", [], features_table="ml.shop.features")
    assert tables["features"].catalog_name == "ml.shop.features"
    assert "bronze_customers" not in tables


def test_a_table_key_the_use_case_does_not_have_is_an_error_naming_it():
    config = load_config("local", ["tables.bronze_transactions=/x"])
    with pytest.raises(ConfigError, match=r"tables.bronze_transactions: no such table in use case"):
        resolve_tables(config, "claims", ["policies"])


@pytest.mark.parametrize("value", ["scores; DROP TABLE x", "a.b.c.d", "1abc.scores", "sc ores"])
def test_a_catalog_name_with_anything_but_identifiers_is_refused(value):
    config = load_config("local", [f"tables.scores={value}"])
    with pytest.raises(ConfigError, match=r"tables.scores: .* is neither a path nor a catalog"):
        resolve_tables(config, "claims", [])


def test_asking_for_a_table_the_use_case_lacks_names_the_known_ones():
    tables = resolve_tables(load_config("local"), "claims", ["policies"])
    with pytest.raises(ConfigError, match=r"use case 'claims' has no table 'bronze_customers'"):
        tables["bronze_customers"]


@pytest.mark.parametrize(
    "value",
    ["s3://bucket/{usecase}/scores", "dbfs:/lake/scores", "abfss://c@a.dfs.core.windows.net/s"],
)
def test_a_path_uri_is_a_path(value):
    config = load_config("local", [f"tables.scores={value}"])
    assert resolve_tables(config, "claims", [])["scores"].path == value.replace(
        "{usecase}", "claims"
    )


@pytest.mark.parametrize("value", ["scores:v2", '"main.ml.scores "', '"main.ml.sco\\tres"'])
def test_a_value_that_is_neither_path_nor_name_is_refused_naming_the_key(value):
    config = load_config("local", [f"tables.scores={value}"])
    with pytest.raises(ConfigError, match=r"^tables.scores: "):
        resolve_tables(config, "claims", [])


@pytest.mark.parametrize("value", ["main.scoring-x", "a.b.c", "main.ml; DROP TABLE t", "/lake/x"])
def test_a_catalog_schema_that_is_no_schema_name_is_refused_naming_the_key(value):
    config = load_config("local", [f"storage.catalog_schema={value}"])
    with pytest.raises(ConfigError, match=r"^storage.catalog_schema: .* is not a catalog schema"):
        resolve_tables(config, "claims", [])


def test_two_tables_in_one_place_are_refused_naming_the_configured_key(tmp_path):
    config = load_config("local", [f"storage.root={tmp_path}", "tables.runs=Main.ML.Scores",
                                   "tables.scores=main.ml.scores"])  # fmt: skip
    with pytest.raises(
        ConfigError, match=r"^tables.(runs|scores): tables '\w+' and '\w+' are both"
    ):
        resolve_tables(config, "claims", [])


def test_every_table_carries_its_configured_retention_as_delta_properties(tmp_path):
    config = load_config(
        "local",
        [
            f"storage.root={tmp_path}",
            "storage.retention.tables.scores={log_days: 400, deleted_file_days: 60}",
        ],
    )
    tables = resolve_tables(config, "claims", ["policies"])
    assert dict(tables["scores"].properties) == {
        "delta.logRetentionDuration": "interval 400 days",
        "delta.deletedFileRetentionDuration": "interval 60 days",
    }
    assert dict(tables["bronze_policies"].properties) == {
        "delta.logRetentionDuration": "interval 30 days",
        "delta.deletedFileRetentionDuration": "interval 30 days",
    }


def test_a_retention_override_for_a_table_the_use_case_lacks_is_named():
    config = load_config(
        "local", ["storage.retention.tables.bronze_nope={log_days: 30, deleted_file_days: 30}"]
    )
    with pytest.raises(
        ConfigError,
        match=r"^storage\.retention\.tables\.bronze_nope: no such table in use case 'claims'",
    ):
        resolve_tables(config, "claims", ["policies"])


def test_a_score_only_features_table_gets_no_retention_properties():
    tables = resolve_tables(load_config("local"), "claims", [], features_table="main.ml.features")
    assert tables["features"].properties == ()
    assert tables["scores"].properties != ()
