"""MLflow plumbing: where tracking and the registry live, and model URIs resolved to versions.

A model is named `models:/NAME@ALIAS` or `models:/NAME/VERSION`. `resolve_model` turns either
into one concrete registered version, once, on the driver; everything after that (download,
scoring, lineage columns, commit metadata) uses the pinned `models:/NAME/VERSION`, so an alias
moved during a run cannot mix two versions.

Example:
    >>> target = mlflow_target(config, "claims")  # doctest: +SKIP
    >>> model = resolve_model(target, "models:/claims_cost@champion")  # doctest: +SKIP
    >>> model.pinned_uri  # doctest: +SKIP
    'models:/claims_cost/3'
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from scoring.core.config import Config
from scoring.core.errors import (
    MlflowUnreachableError,
    ModelError,
    ModelNotFoundError,
    RegistryNotFoundError,
)
from scoring.core.mlflow_uris import local_store, redact

if TYPE_CHECKING:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

T = TypeVar("T")

# The registry's answers to "no such model, alias or version" (the file/SQL store says
# INVALID_PARAMETER_VALUE for an unknown alias; REST and Unity Catalog registries say
# RESOURCE_DOES_NOT_EXIST or NOT_FOUND). Anything else means the registry could not be asked.
NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"})
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")
# MLflow reads these per request (`mlflow.environment_variables`): the bound of every call.
TIMEOUT_VARIABLE = "MLFLOW_HTTP_REQUEST_TIMEOUT"
RETRIES_VARIABLE = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


@dataclass(frozen=True)
class MlflowTarget:
    """Where runs, artifacts and registered models go (plain values taken from the config)."""

    tracking_uri: str
    registry_uri: str
    artifact_location: str | None
    experiment: str


@dataclass(frozen=True)
class ResolvedModel:
    """One registered model version, resolved from the URI the user asked for."""

    requested_uri: str
    name: str
    version: str
    alias: str | None
    run_id: str | None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def pinned_uri(self) -> str:
        """The URI of exactly this version: `models:/NAME/VERSION`."""
        return f"models:/{self.name}/{self.version}"


def mlflow_target(config: Config, usecase: str) -> MlflowTarget:
    """The MLflow settings of a use case's runs; experiments get `artifact_root` only on
    local stores.

    A remote server (Databricks, a tracking server) decides where artifacts go itself, unless
    `mlflow.artifact_root` is set explicitly.
    """
    local_store = config.tracking_uri.startswith(("sqlite:", "file:", "/"))
    explicit = config.mlflow.artifact_root is not None
    return MlflowTarget(
        tracking_uri=config.tracking_uri,
        registry_uri=config.registry_uri,
        artifact_location=config.artifact_root if (local_store or explicit) else None,
        experiment=config.experiment(usecase),
    )


def default_model_uri(model_name: str, alias: str) -> str:
    """`models:/NAME@ALIAS`, the model `scoring score` uses without `--model`."""
    return f"models:/{model_name}@{alias}"


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """Split a model URI into (name, alias, version); exactly one of alias/version is set.

    Raises:
        ModelError: the URI is not `models:/NAME@ALIAS` or `models:/NAME/VERSION`.
    """
    match = _MODEL_URI.match(uri)
    if match is None:
        raise ModelError(f"model URI '{uri}': expected models:/NAME@ALIAS or models:/NAME/VERSION")
    return match["name"], match["alias"], match["version"]


def configure_mlflow(target: MlflowTarget) -> MlflowClient:
    """Point MLflow's fluent API at the target and return a client bound to it (a local
    tracking store, unlike the registry, is created here when missing)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(target.tracking_uri)
    mlflow.set_registry_uri(target.registry_uri)
    return MlflowClient(tracking_uri=target.tracking_uri, registry_uri=target.registry_uri)


def ensure_experiment(target: MlflowTarget) -> str:
    """The id of the target's experiment, created (with its artifact location) if missing."""
    client = configure_mlflow(target)
    experiment = client.get_experiment_by_name(target.experiment)
    if experiment is not None:
        return str(experiment.experiment_id)
    location = None
    if target.artifact_location is not None:
        location = "/".join([target.artifact_location.rstrip("/"), target.experiment.strip("/")])
    return str(client.create_experiment(target.experiment, artifact_location=location))


def resolve_model(target: MlflowTarget, uri: str) -> ResolvedModel:
    """Resolve `uri` to one registered version (one registry call; call it once per run).

    Raises:
        RegistryNotFoundError: the registry is a local store that does not exist (MLflow
            would create an empty one; nothing is created).
        ModelNotFoundError: naming the model, alias or version the registry does not know.
        MlflowUnreachableError: the registry did not answer (see `apply_request_settings`).
        ModelError: the registry could not be asked otherwise (refused, failed).
    """
    from mlflow.exceptions import MlflowException

    name, alias, version = parse_model_uri(uri)
    require_registry(target.registry_uri, f"model URI '{uri}'")
    client = configure_mlflow(target)
    try:
        if alias is not None:
            found = client.get_model_version_by_alias(name, alias)
        else:
            found = client.get_model_version(name, str(version))
    except MlflowException as exc:
        what = f"alias '{alias}'" if alias is not None else f"version {version}"
        raise _registry_error(exc, target, client, f"model URI '{uri}'", name, what) from exc
    return ResolvedModel(
        requested_uri=uri,
        name=name,
        version=str(found.version),
        alias=alias,
        run_id=found.run_id or None,
        tags=dict(found.tags or {}),
    )


def require_registered_model(target: MlflowTarget, name: str) -> None:
    """The registry holds a model `name` (any version); raises as `resolve_model` does."""
    from mlflow.exceptions import MlflowException

    require_registry(target.registry_uri, f"model '{name}'")
    client = configure_mlflow(target)
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        raise _registry_error(exc, target, client, f"model '{name}'", name, None) from exc


def require_registry(registry_uri: str, subject: str | None = None) -> None:
    """A local registry (sqlite file, file store folder) exists; remote ones are not asked.

    Raises:
        RegistryNotFoundError: `[<subject>: ]registry not found at <path>`, before MLflow
            would create it.
    """
    store = local_store(registry_uri)
    if store is not None and not store[0].exists():
        raise RegistryNotFoundError(
            f"{subject + ': ' if subject else ''}registry not found at {store[0]} "
            f"({redact(registry_uri)}): no {store[1]} there (check mlflow.registry_uri, "
            "mlflow.tracking_uri, storage.root)"
        )


def require_answer(uri: str, what: str, call: Callable[[], T]) -> T:
    """`call()`, an MLflow store's failure turned into one line naming `what` and `uri`.

    Raises:
        MlflowUnreachableError: `<what> <uri> cannot be reached: <reason> (...)`.
        ModelError: it answered with an error (`could not be read`).
    """
    from mlflow.exceptions import MlflowException

    try:
        return call()
    except MlflowException as exc:
        unreachable = unreachable_error(exc, what, uri)
        if unreachable is not None:
            raise unreachable from exc
        first = (exc.message or "").strip().splitlines() or [""]
        raise ModelError(
            f"{what} {redact(uri)} could not be read ({exc.error_code}): {first[0]}"
        ) from exc


def unreachable_error(exc: MlflowException, what: str, uri: str) -> MlflowUnreachableError | None:
    """The one-line error for an MLflow call that got no answer, or None when it got one.

    MLflow raises MlflowException for both; the cause (`__cause__`, or `__context__` where it
    re-raises without `from`) tells a connection error, timeout or exhausted retries apart.
    """
    import requests

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, requests.RequestException):
        cause = cause.__cause__ or cause.__context__
    if not isinstance(
        cause, requests.ConnectionError | requests.Timeout | requests.exceptions.RetryError
    ):
        return None
    timeout, retries = (
        os.environ.get(TIMEOUT_VARIABLE, "120"),
        os.environ.get(RETRIES_VARIABLE, "7"),
    )
    # urllib3 reports a read timeout after its retries as a ConnectionError whose text says so.
    if isinstance(cause, requests.Timeout) or "timed out" in str(cause):
        reason = f"no answer within {timeout} s"
    elif isinstance(cause, requests.exceptions.RetryError):
        reason = "it answered with an error on every attempt"
    else:
        found = _ERRNO.search(str(cause))
        reason = found.group(1).strip().lower() if found else "connection failed"
    attempts = int(retries) + 1 if retries.isdigit() else "several"
    plural = "" if attempts == 1 else "s"
    return MlflowUnreachableError(
        f"{what} {redact(uri)} cannot be reached: {reason} ({attempts} attempt{plural} of at "
        f"most {timeout} s: mlflow.request_timeout_seconds, mlflow.request_max_retries)"
    )


def apply_request_settings(timeout_seconds: int, max_retries: int) -> None:
    """Bound every MLflow HTTP call of this process (MLflow reads the variables per call)."""
    os.environ[TIMEOUT_VARIABLE] = str(timeout_seconds)
    os.environ[RETRIES_VARIABLE] = str(max_retries)


def _registry_error(
    exc: MlflowException,
    target: MlflowTarget,
    client: MlflowClient,
    subject: str,
    name: str,
    what: str | None,
) -> ModelError:
    """The one-line error for a failed registry lookup of model `name` (`what`: its alias or
    version, None for the model itself)."""
    registry = redact(target.registry_uri)
    unreachable = unreachable_error(exc, "registry", target.registry_uri)
    if unreachable is not None:
        return unreachable
    if exc.error_code not in NOT_FOUND_CODES:
        first = (exc.message or "").strip().splitlines() or [""]
        return ModelError(
            f"{subject}: registry {registry} could not be read ({exc.error_code}): {first[0]}"
        )
    detail = _missing_model(client, name) or (
        f"has no {what} of model '{name}'" if what else f"has no model '{name}'"
    )
    return ModelNotFoundError(f"{subject}: registry {registry} {detail} ({exc.error_code})")


def _missing_model(client: MlflowClient, name: str) -> str | None:
    """Why the registry lacks model `name` altogether (it is empty, or holds others), or None
    when it has that model. Asked only after a lookup failed, to say which it was."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
        return None
    except MlflowException:
        pass
    try:
        empty = not client.search_registered_models(max_results=1)
    except MlflowException:
        empty = False
    return "is empty: no model is registered in it" if empty else f"has no model '{name}'"


def download_model(target: MlflowTarget, model: ResolvedModel) -> str:
    """Download exactly the pinned version into a new local folder; return the folder."""
    import mlflow.artifacts

    configure_mlflow(target)
    folder = os.path.join(tempfile.mkdtemp(prefix="scoring-download-"), "model")
    return str(mlflow.artifacts.download_artifacts(artifact_uri=model.pinned_uri, dst_path=folder))
