"""MLflow tracking and registry URIs, checked before anything uses them.

MLflow picks a store by the URI's scheme, and only when a step first asks it: an unknown
scheme used to surface after the session had started and tables were written, in tracebacks;
a sqlite URI in a mistyped folder made MLflow create a new, empty registry. So the
configuration's URIs are checked twice, each error one line naming the key:

- at load (`check_uri`, from `scoring.core.config`): the scheme is one MLflow accepts for the
  role and the URI has the form that scheme needs;
- at start (`check_local_store`, from the CLI): a local store's folder (a sqlite file's
  folder, a file store) exists or can be created, without creating it.

Schemes, as MLflow 3 registers them (`mlflow/tracking/_tracking_service/utils.py`,
`mlflow/tracking/_model_registry/utils.py`): a plain path or `file:` (file store), `sqlite`,
`postgresql`, `mysql`, `mssql` (`+driver` allowed), `http`, `https` and `databricks` for
both; `databricks-uc` and `uc` (Unity Catalog) for the registry only (MLflow refuses them as
a tracking URI); plus what installed plugins register under the entry point groups
`mlflow.tracking_store` / `mlflow.model_registry_store` (SageMaker's `arn`, AzureML's
`azureml`, ...).

Example:
    >>> scheme_of("postgresql+psycopg2://u@db/mlflow")
    'postgresql'
    >>> redact("postgresql://u:secret@db/mlflow")
    'postgresql://u:***@db/mlflow'
"""

from __future__ import annotations

import os
import re
from importlib.metadata import entry_points
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from scoring.core.errors import ConfigError

Role = Literal["tracking", "registry"]

DATABASES = ("sqlite", "postgresql", "mysql", "mssql")
TRACKING_SCHEMES = ("file", *DATABASES, "http", "https", "databricks")
REGISTRY_SCHEMES = (*TRACKING_SCHEMES, "databricks-uc", "uc")
# Values MLflow takes as a scheme on their own (`databricks` = the default profile).
_BARE = frozenset({"databricks", "databricks-uc", "uc"})
_PLUGINS = {"tracking": "mlflow.tracking_store", "registry": "mlflow.model_registry_store"}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_SQLITE = re.compile(r"^sqlite(\+\w+)?:///", re.IGNORECASE)
_PASSWORD = re.compile(r"(//[^/@:]*):[^/@]*@")


def scheme_of(uri: str) -> str:
    """The store scheme MLflow picks for `uri`; "" for a plain path (a file store)."""
    if uri in _BARE:
        return uri
    match = _SCHEME.match(uri)
    if match is None or len(match.group(1)) == 1:  # MLflow reads `C:` as a drive
        return ""
    scheme = match.group(1).lower()
    engine = scheme.split("+", 1)[0]
    return engine if engine in DATABASES else scheme


def known_schemes(role: Role) -> tuple[str, ...]:
    """The schemes MLflow accepts for `role` here: its own, then installed plugins'."""
    own = TRACKING_SCHEMES if role == "tracking" else REGISTRY_SCHEMES
    plugins = sorted({e.name for e in entry_points(group=_PLUGINS[role])} - set(own))
    return (*own, *plugins)


def redact(uri: str) -> str:
    """`uri` with the password of its user info replaced by `***`, for messages and logs."""
    return _PASSWORD.sub(r"\1:***@", uri)


def check_uri(uri: str, key: str, role: Role, origin: str) -> None:
    """Refuse a URI MLflow cannot use for `role` (scheme unknown, form wrong).

    Raises:
        ConfigError: `<origin>: <key>: ...`, one line, the URI's password redacted.
    """
    where, shown = f"{origin}: {key}", redact(uri)
    if uri != uri.strip() or any(ord(c) < 32 for c in uri):
        raise ConfigError(f"{where}: {shown!r} has blanks around it or control characters")
    scheme = scheme_of(uri)
    if scheme == "":
        return  # a plain path: MLflow's file store
    known = known_schemes(role)
    if scheme not in known:
        hint = ""
        if role == "tracking" and scheme in REGISTRY_SCHEMES:
            hint = "; a Unity Catalog registry goes in mlflow.registry_uri"
        raise ConfigError(
            f"{where}: unknown scheme '{scheme}' in '{shown}' (MLflow {role} stores: "
            f"{', '.join(known)}, or a plain path){hint}"
        )
    problem = _form_problem(scheme, uri)
    if problem:
        raise ConfigError(f"{where}: '{shown}' {problem}")


def _form_problem(scheme: str, uri: str) -> str | None:
    """What is wrong with the form of a URI of a known scheme, or None."""
    if scheme == "sqlite" and sqlite_file(uri) is None:
        return "is not sqlite:///relative/file.db or sqlite:////absolute/file.db"
    if scheme in ("http", "https"):
        try:
            parts = urlsplit(uri)
            _ = parts.port  # parsing the port raises on a bad one
        except ValueError as exc:
            return f"is not a URL ({exc})"
        if not parts.hostname:
            return f"names no host (expected {scheme}://host[:port][/path])"
    if scheme in DATABASES and scheme != "sqlite" and "://" not in uri:
        return f"is not {scheme}://[user[:password]@]host[:port]/database"
    if scheme == "file" and not urlsplit(uri).path:
        return "names no folder (expected file:///absolute/folder)"
    return None


def sqlite_file(uri: str) -> str | None:
    """The database file of a `sqlite:///` URI (relative to the working folder unless it
    starts with `/`); None for another scheme, an in-memory or an empty database."""
    match = _SQLITE.match(uri)
    if match is None:
        return None
    path = uri[match.end() :].split("?", 1)[0]
    return None if path in ("", ":memory:") else path


def local_store(uri: str) -> tuple[Path, Literal["sqlite file", "folder"]] | None:
    """Where a local store lives: a sqlite file, or a file store's folder; None when remote."""
    scheme = scheme_of(uri)
    if scheme == "sqlite":
        path = sqlite_file(uri)
        return (Path(path).absolute(), "sqlite file") if path else None
    if scheme == "file":
        return Path(urlsplit(uri).path).absolute(), "folder"
    if scheme == "":
        return Path(uri).expanduser().absolute(), "folder"
    return None


def check_local_store(uri: str, key: str) -> None:
    """A local store exists, or its folder can be created (nothing is created here).

    Raises:
        ConfigError: `<key>: <uri>: ...` naming the path in the way.
    """
    store = local_store(uri)
    if store is None:
        return
    path, kind = store
    where = f"{key}: {redact(uri)}"
    if path.exists():
        if (kind == "folder") != path.is_dir():
            raise ConfigError(f"{where}: {path} is not a {kind}")
        return
    blocker = _why_not_creatable(path)
    if blocker:
        raise ConfigError(f"{where}: {kind} {path} cannot be created: {blocker}")


def _why_not_creatable(path: Path) -> str | None:
    """Why the missing `path` cannot be created (its nearest existing ancestor is no
    writable folder), or None."""
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is a file, not a folder"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{ancestor} is not writable"
    return None
