from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from scoring.cli import run
from scoring.core.config import load_config
from scoring.core.errors import ConfigError
from scoring.runs.steps import score_request
from scoring.usecase import load_usecase
from tests.conftest import CHURN_DIR

BASE = """
spark:
  platform: local
  master: "local[2]"
  app_name: scoring
  shuffle_partitions: 4
  jars_dir: .jars
  ui_enabled: false
  log_level: WARN
  conf: {spark.sql.adaptive.enabled: true}
storage:
  root: ./lake
  raw_root: null
  catalog_schema: null
  retention:
    min_time_travel_days: 30
    default: {log_days: 30, deleted_file_days: 30}
    tables: {}
tables: {}
mlflow:
  {tracking_uri: null, registry_uri: null, artifact_root: null, experiment: "e-{usecase}",
   model_name_prefix: null, request_timeout_seconds: 10, request_max_retries: 2}
scoring:
  {batch_size: 100, max_error_rows: 0, max_error_share: 0.0, reasons: {top_k: 0}, compiled: auto,
   current_write: merge}
training: {baseline_max_rows: 1000, seed: 7, holdout_share: 0.2}
logging: {level: INFO, json: false}
ingest:
  {max_quarantine_share: 0.2, unexpected_files: error, future_tolerance_hours: 24,
   raw_archive: keep, raw_archive_after_days: 90}
runs: {heartbeat_seconds: 30, stale_after_seconds: 300}
monitor:
  {n_bins: 10, epsilon: 0.0001, quantile_relative_error: 0.001, psi_warn: 0.1, psi_alert: 0.25,
   ks_warn: 0.1, ks_alert: 0.2, js_warn: 0.1, js_alert: 0.2, null_rate_warn: 0.05,
   null_rate_alert: 0.1, volume_change_warn: 0.2, volume_change_alert: 0.5,
   dataset_drift_share: 0.3, feature_overrides: {}, prometheus_file: null, pushgateway_url: null,
   reports_dir: null}
quality:
  {score_bins: 1000, max_calibration_error: 0.05, thresholds: {roc_auc: {warn: 0.03, alert: 0.05}}}
retrain: {on: [], alias: challenger, cooldown_days: 7}
promotion:
  {metric: roc_auc, max_drop: 0.005, aggregate: mean, min_dates: 14, window_days: 60,
   block_on_drift_alert: true, auto: false}
"""


def write_conf(folder: Path, env_text: str, base_text: str = BASE, env: str = "test") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "base.yaml").write_text(base_text)
    (folder / f"{env}.yaml").write_text(env_text)
    return folder


def test_env_file_overrides_one_key_and_keeps_its_siblings(tmp_path):
    conf = write_conf(tmp_path, "spark:\n  shuffle_partitions: 8\n")
    config = load_config("test", conf_dir=conf, environ={})
    assert config.spark.shuffle_partitions == 8
    assert config.spark.app_name == "scoring"
    assert config.spark.master == "local[2]"


def test_set_override_beats_env_file_and_is_parsed_as_yaml(tmp_path):
    conf = write_conf(tmp_path, "spark:\n  shuffle_partitions: 8\n")
    config = load_config("test", ["spark.shuffle_partitions=3"], conf_dir=conf, environ={})
    assert config.spark.shuffle_partitions == 3


def test_a_stale_limit_shorter_than_two_heartbeats_is_refused_naming_the_key(tmp_path):
    conf = write_conf(tmp_path, "runs:\n  stale_after_seconds: 50\n")
    with pytest.raises(ConfigError, match=r"runs\.stale_after_seconds") as raised:
        load_config("test", conf_dir=conf, environ={})
    assert "50" in str(raised.value) and "heartbeat_seconds" in str(raised.value)


def test_nested_mapping_merges_key_by_key(tmp_path):
    conf = write_conf(tmp_path, "spark:\n  conf: {spark.x: 1}\n")
    config = load_config("test", conf_dir=conf, environ={})
    assert dict(config.spark.conf) == {"spark.sql.adaptive.enabled": "true", "spark.x": "1"}


def test_env_placeholder_reads_the_variable(tmp_path):
    conf = write_conf(tmp_path, "mlflow:\n  experiment: ${env:EXP}\n")
    config = load_config("test", conf_dir=conf, environ={"EXP": "from-env"})
    assert config.mlflow.experiment == "from-env"


def test_env_placeholder_default_applies_when_variable_is_unset(tmp_path):
    conf = write_conf(tmp_path, "mlflow:\n  experiment: pre-${env:EXP:-fallback}-post\n")
    config = load_config("test", conf_dir=conf, environ={})
    assert config.mlflow.experiment == "pre-fallback-post"


def test_whole_value_placeholder_is_read_as_yaml_scalar(tmp_path):
    conf = write_conf(tmp_path, "spark:\n  shuffle_partitions: ${env:PARTS:-6}\n")
    assert load_config("test", conf_dir=conf, environ={}).spark.shuffle_partitions == 6
    config = load_config("test", conf_dir=conf, environ={"PARTS": "12"})
    assert config.spark.shuffle_partitions == 12


def test_interpolation_runs_after_set_overrides(tmp_path):
    conf = write_conf(tmp_path, "")
    config = load_config(
        "test", ["mlflow.experiment=${env:WHO}"], conf_dir=conf, environ={"WHO": "me"}
    )
    assert config.mlflow.experiment == "me"


def test_missing_environment_variable_names_key_file_and_variable(tmp_path):
    conf = write_conf(tmp_path, "mlflow:\n  experiment: ${env:NOPE}\n")
    with pytest.raises(ConfigError) as err:
        load_config("test", conf_dir=conf, environ={})
    message = str(err.value)
    assert "test.yaml" in message and "mlflow.experiment" in message and "NOPE" in message


def test_unknown_key_names_the_key_and_the_file_it_came_from(tmp_path):
    conf = write_conf(tmp_path, "spark:\n  mastr: local[4]\n")
    with pytest.raises(ConfigError) as err:
        load_config("test", conf_dir=conf, environ={})
    assert "spark.mastr" in str(err.value)
    assert str(conf / "test.yaml") in str(err.value)


def test_unknown_section_is_an_error(tmp_path):
    conf = write_conf(tmp_path, "sparkk:\n  master: x\n")
    with pytest.raises(ConfigError, match="unknown key 'sparkk'"):
        load_config("test", conf_dir=conf, environ={})


def test_missing_required_key_is_named(tmp_path):
    conf = write_conf(tmp_path, "", base_text=BASE.replace("  app_name: scoring\n", ""))
    with pytest.raises(ConfigError, match=r"missing key 'spark\.app_name'"):
        load_config("test", conf_dir=conf, environ={})


def test_wrong_type_from_set_names_key_and_origin(tmp_path):
    conf = write_conf(tmp_path, "")
    with pytest.raises(ConfigError) as err:
        load_config("test", ["spark.shuffle_partitions=many"], conf_dir=conf, environ={})
    assert str(err.value).startswith("--set: spark.shuffle_partitions: expected an integer")


def test_value_below_its_bound_is_rejected(tmp_path):
    conf = write_conf(tmp_path, "spark:\n  shuffle_partitions: 0\n")
    with pytest.raises(ConfigError, match=r"spark\.shuffle_partitions: expected a value >= 1"):
        load_config("test", conf_dir=conf, environ={})


def test_value_outside_its_choices_lists_the_choices(tmp_path):
    conf = write_conf(tmp_path, "spark:\n  platform: kubernetes\n")
    with pytest.raises(ConfigError, match=r"spark\.platform: expected one of \['local'"):
        load_config("test", conf_dir=conf, environ={})


def test_bare_off_in_yaml_is_the_choice_off_not_a_boolean(tmp_path):
    # YAML 1.1 reads `compiled: off` as false: the choice the user wrote is what is kept.
    conf = write_conf(tmp_path, "scoring:\n  compiled: off\n")
    assert load_config("test", conf_dir=conf, environ={}).scoring.compiled == "off"
    conf = write_conf(tmp_path, "scoring:\n  compiled: on\n")
    with pytest.raises(ConfigError, match=r"scoring\.compiled: expected one of \['auto', 'off'\]"):
        load_config("test", conf_dir=conf, environ={})


def test_current_write_is_merge_unless_set_to_overwrite(tmp_path):
    assert load_config("local", environ={}).scoring.current_write == "merge"
    conf = write_conf(tmp_path, "scoring:\n  current_write: overwrite\n")
    assert load_config("test", conf_dir=conf, environ={}).scoring.current_write == "overwrite"
    conf = write_conf(tmp_path, "scoring:\n  current_write: replace\n")
    with pytest.raises(
        ConfigError, match=r"scoring\.current_write: expected one of \['merge', 'overwrite'\]"
    ):
        load_config("test", conf_dir=conf, environ={})
    layer = ("/uc/usecase.yaml", {"scoring": {"current_write": "overwrite"}})
    config = load_config("local", environ={}, layers=[layer])
    assert config.scoring.current_write == "overwrite"
    # ... and `scoring score` asks for it.
    assert score_request(config, load_usecase(CHURN_DIR), None).current_write == "overwrite"


def test_boolean_key_rejects_text(tmp_path):
    conf = write_conf(tmp_path, "logging:\n  json: 'yes please'\n")
    with pytest.raises(ConfigError, match=r"logging\.json: expected true or false"):
        load_config("test", conf_dir=conf, environ={})


def test_unknown_environment_lists_the_known_ones(tmp_path):
    conf = write_conf(tmp_path, "")
    with pytest.raises(ConfigError, match=r"no such environment 'prod' \(known: \['test'\]\)"):
        load_config("prod", conf_dir=conf, environ={})


def test_set_without_equals_sign_is_rejected():
    with pytest.raises(ConfigError, match=r"not of the form dotted.key=value"):
        load_config("local", ["spark.master"])


def test_invalid_yaml_names_the_file(tmp_path):
    conf = write_conf(tmp_path, "spark: [unclosed\n")
    with pytest.raises(ConfigError, match=r"test.yaml: not valid YAML"):
        load_config("test", conf_dir=conf, environ={})


def test_config_objects_are_frozen():
    config = load_config("local")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.spark.master = "yarn"  # type: ignore[misc]


def test_local_locations_resolve_under_the_absolute_storage_root_per_use_case(tmp_path):
    config = load_config("local", [f"storage.root={tmp_path}/lake"])
    assert config.raw_root("claims") == f"{tmp_path}/lake/claims/raw"
    assert config.tracking_uri == f"sqlite:///{tmp_path}/lake/mlflow.db"
    assert config.registry_uri == config.tracking_uri
    assert config.experiment("claims") == "scoring-claims"


def test_relative_storage_root_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config("local", ["storage.root=rel/lake"])
    assert config.storage.root == f"{tmp_path}/rel/lake"


def test_usecase_placeholders_are_filled_with_the_use_case_name(tmp_path):
    config = load_config(
        "local",
        [
            f"storage.raw_root={tmp_path}/drops/{{usecase}}",
            "mlflow.model_name_prefix=main.ml_{usecase}.",
            f"monitor.prometheus_file={tmp_path}/prom/{{usecase}}.prom",
        ],
    )
    assert config.raw_root("claims") == f"{tmp_path}/drops/claims"
    assert config.registered_model_name("claims", "triage") == "main.ml_claims.triage"
    assert config.prometheus_file("claims") == f"{tmp_path}/prom/claims.prom"


def test_a_layer_merges_after_the_environment_and_before_set(tmp_path):
    conf = write_conf(tmp_path, "monitor:\n  psi_warn: 0.15\n")
    layer = ("usecase.yaml", {"monitor": {"psi_warn": 0.2, "psi_alert": 0.5}})
    config = load_config(
        "test", ["monitor.psi_alert=0.6"], conf_dir=conf, environ={}, layers=[layer]
    )
    assert (config.monitor.psi_warn, config.monitor.psi_alert) == (0.2, 0.6)
    assert config.monitor.ks_warn == 0.1  # untouched siblings keep the base value


def test_a_bad_value_from_a_layer_names_the_layer(tmp_path):
    conf = write_conf(tmp_path, "")
    layer = ("/uc/usecase.yaml", {"monitor": {"n_bins": 1}})
    with pytest.raises(ConfigError) as err:
        load_config("test", conf_dir=conf, environ={}, layers=[layer])
    assert str(err.value).startswith("/uc/usecase.yaml: monitor.n_bins: expected a value >= 2")


def test_databricks_environment_puts_each_use_case_in_its_own_catalog_schema():
    config = load_config("databricks", environ={"SCORING_CATALOG": "prod", "SCORING_SCHEMA": "ml"})
    assert config.spark.platform == "databricks"
    assert config.spark.jars_dir is None
    assert config.storage.catalog_schema == "prod.ml_{usecase}"
    assert config.registered_model_name("churn", "m") == "prod.ml_churn.m"
    assert config.registry_uri == "databricks-uc"


def test_emr_environment_requires_its_s3_root():
    with pytest.raises(ConfigError, match="SCORING_S3_ROOT is not set"):
        load_config("emr", environ={"MLFLOW_TRACKING_URI": "http://mlflow:5000"})


def test_tables_are_a_free_mapping_checked_against_the_use_case_later():
    config = load_config("local", ["tables.scores=main.ml.scores"])
    assert dict(config.tables) == {"scores": "main.ml.scores"}


def test_cli_prints_one_line_naming_the_bad_key(capsys):
    code = run(["doctor", "--env", "local", "--set", "spark.shuffle_partitions=zero"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "spark.shuffle_partitions" in err and "--set" in err


def test_quarantine_share_above_one_is_rejected_naming_the_key(tmp_path):
    conf = write_conf(tmp_path, "ingest:\n  max_quarantine_share: 1.5\n")
    with pytest.raises(ConfigError, match=r"ingest\.max_quarantine_share: expected a value <= 1"):
        load_config("test", conf_dir=conf, environ={})


def test_monitor_feature_overrides_are_typed_and_checked(tmp_path):
    conf = write_conf(
        tmp_path, "monitor:\n  feature_overrides: {age: {psi_warn: 0.2, psi_alert: 0.4}}\n"
    )
    config = load_config("test", conf_dir=conf, environ={})
    assert config.monitor.feature_overrides["age"].psi_alert == 0.4
    bad = write_conf(tmp_path / "bad", "monitor:\n  feature_overrides: {age: {psi_warn: x}}\n")
    with pytest.raises(ConfigError, match=r"monitor\.feature_overrides\.age\.psi_warn"):
        load_config("test", conf_dir=bad, environ={})


def test_prometheus_file_and_reports_default_under_the_storage_root(tmp_path):
    config = load_config("test", [f"storage.root={tmp_path}"], conf_dir=write_conf(tmp_path, ""))
    assert config.prometheus_file("claims") == f"{tmp_path}/metrics/claims.prom"
    assert config.reports_dir("claims") == f"{tmp_path}/claims/reports"


def test_retention_has_a_default_and_per_table_overrides_in_days(tmp_path):
    conf = write_conf(
        tmp_path,
        "storage:\n  retention:\n    tables: {scores: {log_days: 400, deleted_file_days: 60}}\n",
    )
    retention = load_config("test", conf_dir=conf, environ={}).storage.retention
    assert (
        retention.for_table("scores").log_days,
        retention.for_table("scores").deleted_file_days,
    ) == (400, 60)
    assert (
        retention.for_table("features").log_days,
        retention.for_table("features").deleted_file_days,
    ) == (30, 30)


@pytest.mark.parametrize(
    "override, origin, key",
    [
        (
            "storage.retention.default.deleted_file_days=7",
            "--set",
            "storage.retention.default.deleted_file_days",
        ),
        (
            "storage.retention.tables.scores={log_days: 10, deleted_file_days: 90}",
            "--set",
            "storage.retention.tables.scores.log_days",
        ),
        # Raising the floor over the base file's default names the default it now exceeds.
        (
            "storage.retention.min_time_travel_days=60",
            "base.yaml",
            "storage.retention.default.log_days",
        ),
    ],
)
def test_a_retention_below_the_time_travel_floor_is_an_error_naming_the_key(
    tmp_path, override, origin, key
):
    conf = write_conf(tmp_path, "")
    with pytest.raises(ConfigError) as error:
        load_config("test", [override], conf_dir=conf, environ={})
    message = str(error.value)
    assert message.split(": ")[0].endswith(origin)
    assert f": {key} = " in message
    assert "is below storage.retention.min_time_travel_days" in message
    assert "\n" not in message


def test_the_time_travel_floor_cannot_go_below_a_week(tmp_path):
    conf = write_conf(tmp_path, "")
    with pytest.raises(
        ConfigError, match=r"storage\.retention\.min_time_travel_days: expected a value >= 7"
    ):
        load_config("test", ["storage.retention.min_time_travel_days=3"], conf_dir=conf, environ={})


def test_a_per_table_retention_needs_both_durations(tmp_path):
    conf = write_conf(tmp_path, "")
    with pytest.raises(
        ConfigError, match=r"missing key 'storage\.retention\.tables\.scores\.log_days'"
    ):
        load_config(
            "test",
            ["storage.retention.tables.scores={deleted_file_days: 60}"],
            conf_dir=conf,
            environ={},
        )


def test_raw_archive_takes_keep_move_or_delete(tmp_path):
    conf = write_conf(tmp_path, "")
    config = load_config("test", ["ingest.raw_archive=move"], conf_dir=conf, environ={})
    assert (config.ingest.raw_archive, config.ingest.raw_archive_after_days) == ("move", 90)
    with pytest.raises(
        ConfigError, match=r"ingest\.raw_archive: expected one of \['keep', 'move', 'delete'\]"
    ):
        load_config("test", ["ingest.raw_archive=archive"], conf_dir=conf, environ={})


def test_the_error_budget_defaults_to_none_and_is_bounded():
    scoring = load_config("local").scoring
    assert (scoring.max_error_rows, scoring.max_error_share) == (0, 0.0)
    with pytest.raises(ConfigError, match=r"scoring\.max_error_share: expected a value <= 1"):
        load_config("local", ["scoring.max_error_share=1.5"])
    with pytest.raises(ConfigError, match=r"scoring\.max_error_rows: expected a value >= 0"):
        load_config("local", ["scoring.max_error_rows=-1"])


def test_quality_thresholds_are_typed_merged_per_use_case_and_checked(tmp_path):
    conf = write_conf(tmp_path, "")
    layer = (
        "/uc/usecase.yaml",
        {"quality": {"thresholds": {"log_loss": {"warn": 0.1, "alert": 0.2}}}},
    )
    config = load_config("test", conf_dir=conf, environ={}, layers=[layer])
    assert config.quality.thresholds["roc_auc"].alert == 0.05
    assert config.quality.thresholds["log_loss"].warn == 0.1
    unknown = (
        "/uc/usecase.yaml",
        {"quality": {"thresholds": {"auc": {"warn": 0.1, "alert": 0.2}}}},
    )
    with pytest.raises(
        ConfigError, match=r"^/uc/usecase.yaml: quality.thresholds.auc: unknown metric"
    ):
        load_config("test", conf_dir=conf, environ={}, layers=[unknown])
    swapped = ("/uc/usecase.yaml", {"quality": {"thresholds": {"f1": {"warn": 0.2, "alert": 0.1}}}})
    with pytest.raises(ConfigError, match=r"quality.thresholds.f1: warn 0.2 is above alert 0.1"):
        load_config("test", conf_dir=conf, environ={}, layers=[swapped])
    with pytest.raises(ConfigError, match=r"quality.score_bins = 15 must be a multiple of 10"):
        load_config("test", ["quality.score_bins=15"], conf_dir=conf, environ={})


def test_reason_codes_are_off_by_default_set_per_use_case_and_never_negative(tmp_path):
    conf = write_conf(tmp_path, "")
    assert load_config("test", conf_dir=conf, environ={}).scoring.reasons.top_k == 0
    layer = ("/uc/usecase.yaml", {"scoring": {"reasons": {"top_k": 3}}})
    config = load_config("test", conf_dir=conf, environ={}, layers=[layer])
    assert config.scoring.reasons.top_k == 3
    assert config.scoring.batch_size == 100  # the use case's section merges, not replaces
    negative = ("/uc/usecase.yaml", {"scoring": {"reasons": {"top_k": -1}}})
    with pytest.raises(
        ConfigError,
        match=r"^/uc/usecase.yaml: scoring.reasons.top_k: expected a value >= 0, got -1 \(int\)$",
    ):
        load_config("test", conf_dir=conf, environ={}, layers=[negative])
