from __future__ import annotations

import pytest

from scoring.core.errors import ModelError, ModelNotFoundError
from scoring.model.registry import default_model_uri, mlflow_target, parse_model_uri, resolve_model
from scoring.runs.steps import has_model
from tests.conftest import make_config


def test_parse_model_uri_reads_an_alias():
    assert parse_model_uri("models:/main.scoring.churn@champion") == (
        "main.scoring.churn",
        "champion",
        None,
    )


def test_parse_model_uri_reads_a_version():
    assert parse_model_uri("models:/churn/12") == ("churn", None, "12")


def test_parse_model_uri_refuses_latest():
    with pytest.raises(ModelError, match="'models:/churn/latest'"):
        parse_model_uri("models:/churn/latest")


def test_default_model_uri_uses_the_alias():
    assert default_model_uri("churn", "champion") == "models:/churn@champion"


@pytest.mark.slow
def test_alias_resolves_to_the_pinned_version_and_its_run(trained):
    model = resolve_model(mlflow_target(trained, "churn"), "models:/scoring_churn@champion")
    assert (model.pinned_uri, model.alias, model.run_id is not None) == (
        "models:/scoring_churn/1",
        "champion",
        True,
    )


@pytest.mark.slow
def test_unknown_alias_fails_naming_it(trained):
    with pytest.raises(ModelNotFoundError, match="no alias 'nope' of model 'scoring_churn'"):
        resolve_model(mlflow_target(trained, "churn"), "models:/scoring_churn@nope")


@pytest.mark.slow
def test_unknown_version_fails_naming_it(trained):
    with pytest.raises(ModelNotFoundError, match="no version 9 of model 'scoring_churn'"):
        resolve_model(mlflow_target(trained, "churn"), "models:/scoring_churn/9")


@pytest.mark.slow
def test_has_model_is_false_only_when_the_registry_says_so(trained, churn):
    assert has_model(trained, churn, "models:/scoring_churn@champion") is True
    assert has_model(trained, churn, "models:/scoring_churn@nope") is False
    assert has_model(trained, churn, "models:/no_such_model@champion") is False


def test_an_unreachable_registry_is_an_error_not_a_missing_model(tmp_path, monkeypatch, churn):
    """Otherwise the pipeline would train and register a new champion during an outage."""
    import mlflow

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens there
    config = make_config(tmp_path, f"mlflow.tracking_uri={closed}")
    try:
        with pytest.raises(ModelError, match="could not be read") as error:
            has_model(config, churn, "models:/scoring_churn@champion")
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
    assert not isinstance(error.value, ModelNotFoundError)
    assert closed in str(error.value)
