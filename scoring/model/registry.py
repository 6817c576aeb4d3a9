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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scoring.core.config import Config
from scoring.core.errors import ModelError, ModelNotFoundError

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

# The registry's answers to "no such model, alias or version" (the file/SQL store says
# INVALID_PARAMETER_VALUE for an unknown alias; REST and Unity Catalog registries say
# RESOURCE_DOES_NOT_EXIST or NOT_FOUND). Anything else means the registry could not be asked.
NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"})
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


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
    """Point MLflow's fluent API at the target and return a client bound to it."""
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
        ModelNotFoundError: naming the model, alias or version the registry does not know.
        ModelError: the registry could not be asked (unreachable, refused, failed).
    """
    from mlflow.exceptions import MlflowException

    name, alias, version = parse_model_uri(uri)
    client = configure_mlflow(target)
    try:
        if alias is not None:
            found = client.get_model_version_by_alias(name, alias)
        else:
            found = client.get_model_version(name, str(version))
    except MlflowException as exc:
        if exc.error_code not in NOT_FOUND_CODES:
            raise ModelError(
                f"model URI '{uri}': registry {target.registry_uri} could not be read "
                f"({exc.error_code}): {exc.message}"
            ) from exc
        what = f"alias '{alias}'" if alias is not None else f"version {version}"
        raise ModelNotFoundError(
            f"model URI '{uri}': registry {target.registry_uri} has no {what} of model "
            f"'{name}' ({exc.error_code})"
        ) from exc
    return ResolvedModel(
        requested_uri=uri,
        name=name,
        version=str(found.version),
        alias=alias,
        run_id=found.run_id or None,
        tags=dict(found.tags or {}),
    )


def download_model(target: MlflowTarget, model: ResolvedModel) -> str:
    """Download exactly the pinned version into a new local folder; return the folder."""
    import mlflow.artifacts

    configure_mlflow(target)
    folder = os.path.join(tempfile.mkdtemp(prefix="scoring-download-"), "model")
    return str(mlflow.artifacts.download_artifacts(artifact_uri=model.pinned_uri, dst_path=folder))
