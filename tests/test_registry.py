from __future__ import annotations

import pytest

from scoring.errors import ModelError
from scoring.registry import default_model_uri, mlflow_target, parse_model_uri, resolve_model


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
    model = resolve_model(mlflow_target(trained), "models:/scoring_churn@champion")
    assert (model.pinned_uri, model.alias, model.run_id is not None) == (
        "models:/scoring_churn/1",
        "champion",
        True,
    )


@pytest.mark.slow
def test_unknown_alias_fails_naming_it(trained):
    with pytest.raises(ModelError, match="no alias 'nope' of model 'scoring_churn'"):
        resolve_model(mlflow_target(trained), "models:/scoring_churn@nope")


@pytest.mark.slow
def test_unknown_version_fails_naming_it(trained):
    with pytest.raises(ModelError, match="no version 9 of model 'scoring_churn'"):
        resolve_model(mlflow_target(trained), "models:/scoring_churn/9")
