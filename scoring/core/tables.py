"""Where each table of a use case lives: a path under the storage root, or a catalog name.

A use case `U` has the logical tables `bronze_<source>` (one per source), `quarantine`,
`features`, `scores`, `scores_current`, `score_errors`, `drift_metrics`, `model_quality`,
`model_comparison` and `runs`. Each resolves, in order:

1. `tables.<name>` in the configuration: a path (it holds `/`, or is a URI `scheme:/...`)
   or a catalog name (`schema.table` or `catalog.schema.table` of letters, digits and _);
   `{usecase}` is replaced by `U`; anything else is an error naming `tables.<name>`;
2. `storage.catalog_schema` when set: `<catalog_schema>.<name>` (`{usecase}` replaced), the
   schema `schema` or `catalog.schema` of letters, digits and _, never a path;
3. otherwise the path `<storage.root>/U/<name>`.

A score-only use case's `features` is its own table (`features.table` in usecase.yaml).
Every step takes one `Tables`: the one way tables reach a step.

Example:
    >>> tables = resolve_tables(config, "claims", ["policies", "claims"])  # doctest: +SKIP
    >>> str(tables["scores"])  # doctest: +SKIP
    '/abs/lakehouse/claims/scores'
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from scoring.core.config import Config, for_usecase, join_path
from scoring.core.errors import ConfigError

ENGINE_TABLES = (
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
_CATALOG_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*){1,2}")
_SCHEMA_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)?")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class TableRef:
    """A table given either as a storage path or as a catalog name (exactly one is set)."""

    logical: str
    path: str | None = None
    catalog_name: str | None = None
    # Table properties the configuration asks for (retention), set when the table is
    # created and enforced on an existing one (`io.ensure_table`); not part of its identity.
    properties: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        return self.path or self.catalog_name or self.logical


@dataclass(frozen=True)
class Tables:
    """The tables of one use case, by logical name."""

    usecase: str
    refs: Mapping[str, TableRef]

    def __getitem__(self, logical: str) -> TableRef:
        ref = self.refs.get(logical)
        if ref is None:
            raise ConfigError(
                f"use case '{self.usecase}' has no table '{logical}' (known: {sorted(self.refs)})"
            )
        return ref

    def __contains__(self, logical: object) -> bool:
        return logical in self.refs

    def __iter__(self) -> Iterator[str]:
        return iter(self.refs)

    def bronze(self, source: str) -> TableRef:
        """The bronze table of one raw source."""
        return self[bronze_name(source)]


def bronze_name(source: str) -> str:
    """The logical name of a source's bronze table."""
    return f"bronze_{source}"


def logical_tables(sources: Sequence[str]) -> tuple[str, ...]:
    """Every logical table of a use case with these sources, bronze first."""
    return (*(bronze_name(s) for s in sources), *ENGINE_TABLES)


def resolve_tables(
    config: Config, usecase: str, sources: Sequence[str], features_table: str | None = None
) -> Tables:
    """Resolve every logical table of use case `usecase` (see the module docstring).

    Args:
        sources: the use case's raw sources (none for a score-only use case).
        features_table: a score-only use case's own features table (path or catalog name).

    Raises:
        ConfigError: a `tables.*` key names no table of the use case, or a value is neither
            a path nor a valid catalog name.
    """
    names = logical_tables(sources)
    unknown = sorted(set(config.tables) - set(names))
    if unknown:
        raise ConfigError(
            f"tables.{unknown[0]}: no such table in use case '{usecase}' (known: {list(names)})"
        )
    retention = config.storage.retention
    unknown = sorted(set(retention.tables) - set(names))
    if unknown:
        raise ConfigError(
            f"storage.retention.tables.{unknown[0]}: no such table in use case '{usecase}' "
            f"(known: {list(names)})"
        )
    refs = {
        name: replace(
            _resolve(config, usecase, name), properties=retention_properties(config, name)
        )
        for name in names
    }
    if features_table is not None and "features" not in config.tables:
        refs["features"] = parse_location("features", features_table, "features.table")
    _check_distinct(refs, config.tables)
    return Tables(usecase, refs)


def _check_distinct(refs: Mapping[str, TableRef], configured: Mapping[str, str]) -> None:
    """Two logical tables in one location would overwrite each other: a ConfigError naming
    the configured key (catalog names compare without case, as catalogs do)."""
    seen: dict[str, str] = {}
    for name, ref in refs.items():
        where = ref.path.rstrip("/") if ref.path else str(ref.catalog_name).lower()
        other = seen.setdefault(where, name)
        if other != name:
            key = f"tables.{name}" if name in configured else f"tables.{other}"
            raise ConfigError(f"{key}: tables '{other}' and '{name}' are both at '{ref}'")


def retention_properties(config: Config, logical: str) -> tuple[tuple[str, str], ...]:
    """The Delta retention properties of one logical table, from `storage.retention`."""
    days = config.storage.retention.for_table(logical)
    return (
        ("delta.deletedFileRetentionDuration", f"interval {days.deleted_file_days} days"),
        ("delta.logRetentionDuration", f"interval {days.log_days} days"),
    )


def parse_location(logical: str, value: str, key: str) -> TableRef:
    """A path (with `/`, or a URI `scheme:/...`) or a catalog name; anything else is a
    ConfigError naming `key`."""
    if value != value.strip() or any(ord(c) < 32 for c in value):
        raise ConfigError(f"{key}: {value!r} has blanks around it or control characters")
    scheme = _URI.match(value)
    if scheme is not None and not value[scheme.end() :].startswith("/"):
        raise ConfigError(
            f"{key}: '{value}' is neither a path URI (scheme:/path, scheme://host/path) "
            "nor a catalog table name"
        )
    if "/" in value:
        return TableRef(logical, path=value)
    if not _CATALOG_NAME.fullmatch(value):
        raise ConfigError(
            f"{key}: '{value}' is neither a path nor a catalog table name "
            "(schema.table or catalog.schema.table of letters, digits and _)"
        )
    return TableRef(logical, catalog_name=value)


def _resolve(config: Config, usecase: str, name: str) -> TableRef:
    """One logical table's location (see the module docstring for the order)."""
    if name in config.tables:
        return parse_location(name, for_usecase(config.tables[name], usecase), f"tables.{name}")
    if config.storage.catalog_schema:
        schema = for_usecase(config.storage.catalog_schema, usecase)
        if not _SCHEMA_NAME.fullmatch(schema):
            raise ConfigError(
                f"storage.catalog_schema: '{schema}' is not a catalog schema "
                "(schema or catalog.schema of letters, digits and _)"
            )
        return TableRef(name, catalog_name=f"{schema}.{name}")
    return TableRef(name, path=join_path(config.storage.root, usecase, name))
