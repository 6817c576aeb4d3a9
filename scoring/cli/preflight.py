"""What a command checks at start, before a Spark session, a table or an MLflow store exists.

Every command (`check_config`): the use case's tables resolve (each `tables.X` a path or a
catalog table name, `storage.catalog_schema` a catalog schema, no two tables in one place);
the local MLflow stores (`mlflow.tracking_uri`, `mlflow.registry_uri`, by default a sqlite
file under `storage.root`) exist or their folder can be created. A bad value is a
ConfigError naming the key (exit 2), and nothing has been created. The URIs' schemes and
forms were checked when the configuration was loaded (`scoring.core.mlflow_uris`).

Then the MLflow commands' own check (`Command.start_check`, below) asks MLflow what the
command needs, each call bounded by `mlflow.request_timeout_seconds` and
`mlflow.request_max_retries`: `train` needs its tracking server and registry to answer,
`score` and `baseline` their model, `monitor` the use case's registered model, `pipeline` its
model (unless told to train a first one, `--train-if-missing`) and its tracking server (it
logs one MLflow run). `ingest`, `features` and `report` use no MLflow and ask nothing, so an
MLflow outage does not stop them. A local registry that does not exist is "registry not
found at <path>" and is not created; one that does not answer says so; a missing model is
named. Each is one line, exit 1, and no `runs` row: the step never started.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from scoring.core.config import Config, check_retrain_alias
from scoring.core.errors import ConfigError, ModelError, ScoringError
from scoring.core.mlflow_uris import check_local_store, local_store, redact
from scoring.core.tables import resolve_tables
from scoring.usecase.spec import UseCase

if TYPE_CHECKING:
    from scoring.cli.commands import Invocation

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def check_config(config: Config, usecase: UseCase) -> None:
    """The tables and local MLflow stores of `usecase` are usable; nothing is created.

    Raises:
        ConfigError: naming the key (`tables.X`, `storage.catalog_schema`,
            `mlflow.tracking_uri`, `mlflow.registry_uri`, `storage.root`, `retrain.alias`
            when it is the serving alias).
    """
    resolve_tables(config, usecase.name, list(usecase.sources), usecase.features.table)
    check_retrain_alias(config.retrain, usecase.model.alias, str(usecase.path))
    if config.mlflow.tracking_uri is not None:
        check_local_store(config.tracking_uri, "mlflow.tracking_uri")
    elif _URI.match(config.storage.root):
        raise ConfigError(
            f"mlflow.tracking_uri: null means a sqlite file under storage.root, which is not a "
            f"local folder ({config.storage.root}): set mlflow.tracking_uri"
        )
    else:
        check_local_store(config.tracking_uri, "storage.root (the default mlflow.tracking_uri)")
    if config.mlflow.registry_uri is not None:
        check_local_store(config.registry_uri, "mlflow.registry_uri")


def tracking_answers(inv: Invocation) -> None:
    """A remote tracking server answers (a local store is created by MLflow when missing).

    Raises:
        MlflowUnreachableError: it did not answer; ModelError: it refused or failed.
    """
    from mlflow import MlflowClient

    from scoring.model.registry import require_answer

    uri = inv.config.tracking_uri
    if local_store(uri) is not None:
        return
    try:
        require_answer(
            uri,
            "tracking server",
            lambda: MlflowClient(tracking_uri=uri).search_experiments(max_results=1),
        )
    except ScoringError:
        raise
    except Exception as exc:  # a database store's driver errors are no MlflowException
        raise ModelError(f"tracking server {redact(uri)} could not be read: {_first(exc)}") from exc


def registry_answers(inv: Invocation) -> None:
    """The tracking server and a remote registry answer (`scoring train` registers there)."""
    from mlflow import MlflowClient

    from scoring.model.registry import require_answer

    tracking_answers(inv)
    config = inv.config
    uri = config.registry_uri
    if uri == config.tracking_uri or local_store(uri) is not None:
        return
    client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=uri)
    require_answer(uri, "registry", lambda: client.search_registered_models(max_results=1))


def model_resolves(inv: Invocation) -> None:
    """`score` / `baseline`: `--model` (or the first of `score --models`; default: the use
    case's alias) is in the registry; shadows are resolved by the step (a missing shadow
    alias is skipped there)."""
    from scoring.model.registry import mlflow_target, resolve_model
    from scoring.runs.steps import default_model, model_uri_of

    models = getattr(inv.args, "models", None)  # score --models: the first is the one scored
    if models:
        uri = model_uri_of(inv.config, inv.usecase, models[0])
    else:
        uri = inv.args.model or default_model(inv.config, inv.usecase)
    resolve_model(mlflow_target(inv.config, inv.usecase.name), uri)
    tracking_answers(inv)


def registered_model_exists(inv: Invocation) -> None:
    """`monitor`, `quality`: the use case's model is registered; the version `--model-version`
    (monitor) or the URI `--model` (quality) names, when given, exists."""
    from scoring.model.registry import mlflow_target, require_registered_model, resolve_model
    from scoring.runs.steps import registered_name

    target = mlflow_target(inv.config, inv.usecase.name)
    name = registered_name(inv.config, inv.usecase)
    version = getattr(inv.args, "model_version", None)
    uri = getattr(inv.args, "model", None)
    if uri is not None:
        resolve_model(target, uri)
    elif version is not None:
        resolve_model(target, f"models:/{name}/{version}")
    else:
        require_registered_model(target, name)
    tracking_answers(inv)


def pipeline_model(inv: Invocation) -> None:
    """`pipeline`: its model is registered, or it was told to train a first one."""
    from scoring.runs.pipeline import needs_first_model

    needs_first_model(inv.config, inv.usecase, inv.args.model, inv.args.train_if_missing)
    registry_answers(inv)


def _first(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"
