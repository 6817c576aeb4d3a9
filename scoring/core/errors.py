"""The project's exception types. Each message names the file, table, column or key."""

from __future__ import annotations


class ScoringError(Exception):
    """Base of every error this project raises on purpose; the CLI prints it on one line."""


class ConfigError(ScoringError):
    """A configuration file, override or value is wrong; the message names key and source."""


class UseCaseError(ConfigError):
    """A use case folder is wrong (usecase.yaml, its contracts or code files); names file and key."""


class UseCaseCodeError(ScoringError):
    """A use case's own code (features, label, fit) raised or returned something unusable."""


class ContractError(ScoringError):
    """A data contract file is malformed; the message names file and key."""


class DataError(ScoringError):
    """Input data breaks its contract (missing file, column, or too much bad data)."""


class ModelError(ScoringError):
    """A model cannot be resolved, loaded, or bound to the feature table."""


class ModelNotFoundError(ModelError):
    """The registry answered, and it has no such model, alias or version."""


class ConflictError(ScoringError):
    """Another run is in the way: it holds the step this run claims (`runs`), or it committed
    to a table this run was writing (Delta's optimistic concurrency refused this run's
    commit). The message names the other run or the table, and what this run did about it."""


class EnvironmentProblem(ScoringError):
    """The machine lacks something a session needs (Java, Delta jars, a writable folder)."""


class RegistryNotFoundError(ModelNotFoundError):
    """The registry is a local store (a sqlite file, a folder) that does not exist: it holds
    no model, and reading it must not create an empty one."""


class MlflowUnreachableError(ModelError):
    """The MLflow tracking server or registry did not answer within the configured timeout
    and retries (`mlflow.request_timeout_seconds`, `mlflow.request_max_retries`)."""


class PromotionError(ScoringError):
    """A promotion was refused (a rule failed; the message names each with its evidence) or
    cannot be asked for (unknown version, the alias already there, nothing compared)."""


class NotCompilable(ModelError):
    """A model (or a step in front of it) the compiled tree path does not handle; the native
    model scores instead (`scoring.model.compiled`). The message says which part and why."""
