from __future__ import annotations

import socket
import time

import pytest

from scoring.core.errors import (
    MlflowUnreachableError,
    ModelError,
    ModelNotFoundError,
    RegistryNotFoundError,
)
from scoring.model.registry import default_model_uri, mlflow_target, parse_model_uri, resolve_model
from scoring.runs.pipeline import needs_first_model
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
def test_a_model_the_registry_lacks_is_named_apart_from_a_missing_alias(trained):
    with pytest.raises(ModelNotFoundError, match=r"registry .* has no model 'no_such_model' "):
        resolve_model(mlflow_target(trained, "churn"), "models:/no_such_model@champion")


@pytest.mark.slow
def test_the_pipeline_trains_no_first_model_when_the_alias_resolves(trained, churn):
    assert needs_first_model(trained, churn, None, train_if_missing=True) is False
    assert needs_first_model(trained, churn, None, train_if_missing=False) is False


def test_a_missing_sqlite_registry_is_not_found_and_not_created(tmp_path, churn):
    config = make_config(tmp_path / "lake")
    with pytest.raises(RegistryNotFoundError, match=r"registry not found at .*/lake/mlflow.db "):
        resolve_model(mlflow_target(config, "churn"), "models:/scoring_churn@champion")
    assert not (tmp_path / "lake").exists()
    assert needs_first_model(config, churn, None, train_if_missing=True) is True
    with pytest.raises(RegistryNotFoundError, match=r"--train-if-missing"):
        needs_first_model(config, churn, None, train_if_missing=False)
    with pytest.raises(RegistryNotFoundError, match=r"trains only the use case's alias"):
        needs_first_model(config, churn, "models:/scoring_churn/3", train_if_missing=True)
    assert not (tmp_path / "lake").exists()


def test_an_unreachable_registry_is_an_error_not_a_missing_model(tmp_path, monkeypatch):
    """Otherwise the pipeline would train and register a new champion during an outage."""
    import mlflow

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    with socket.socket() as probe:  # a port nothing listens on: bound, then released
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    config = make_config(tmp_path, f"mlflow.tracking_uri={closed}")
    started = time.monotonic()
    try:
        with pytest.raises(MlflowUnreachableError) as error:
            resolve_model(mlflow_target(config, "churn"), "models:/scoring_churn@champion")
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
    assert time.monotonic() - started < 20
    assert not isinstance(error.value, ModelNotFoundError)
    assert str(error.value) == (
        f"registry {closed} cannot be reached: connection refused (1 attempt of at most 5 s: "
        "mlflow.request_timeout_seconds, mlflow.request_max_retries)"
    )


def test_a_registry_that_never_answers_is_reported_after_the_timeout(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        config = make_config(tmp_path, f"mlflow.tracking_uri={uri}")
        started = time.monotonic()
        try:
            with pytest.raises(MlflowUnreachableError) as error:
                resolve_model(mlflow_target(config, "churn"), "models:/scoring_churn@champion")
        finally:
            mlflow.set_tracking_uri(before[0])
            mlflow.set_registry_uri(before[1])
    assert 1 <= time.monotonic() - started < 20
    assert str(error.value) == (
        f"registry {uri} cannot be reached: no answer within 1 s (1 attempt of at most 1 s: "
        "mlflow.request_timeout_seconds, mlflow.request_max_retries)"
    )
