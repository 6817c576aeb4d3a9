"""Where each table of a use case lives: a path under the storage root, or a catalog name.

A use case `U` has the logical tables `bronze_<source>` (one per source), `quarantine`,
`features`, `scores`, `scores_current`, `score_errors`, `drift_metrics` and `runs`. Each
resolves, in order:

1. `tables.<name>` in the configuration: a path (it holds `/` or a URI scheme) or a catalog
   name (`schema.table` or `catalog.schema.table`); `{usecase}` is replaced by `U`;
2. `storage.catalog_schema` when set: `<catalog_schema>.<name>` (`{usecase}` replaced);
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
from dataclasses import dataclass

from scoring.core.config import Config, for_usecase, join_path
from scoring.core.errors import ConfigError

ENGINE_TABLES = (
    "quarantine",
    "features",
    "scores",
    "scores_current",
    "score_errors",
    "drift_metrics",
    "runs",
)
_CATALOG_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*){1,2}$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class TableRef:
    """A table given either as a storage path or as a catalog name (exactly one is set)."""

    logical: str
    path: str | None = None
    catalog_name: str | None = None

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
    refs = {name: _resolve(config, usecase, name) for name in names}
    if features_table is not None and "features" not in config.tables:
        refs["features"] = parse_location("features", features_table, "features.table")
    return Tables(usecase, refs)


def parse_location(logical: str, value: str, key: str) -> TableRef:
    """A path (with `/` or a URI scheme) or a catalog name; anything else is a ConfigError."""
    if "/" in value or _URI.match(value):
        return TableRef(logical, path=value)
    if not _CATALOG_NAME.match(value):
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
        return parse_location(name, f"{schema}.{name}", "storage.catalog_schema")
    return TableRef(name, path=join_path(config.storage.root, usecase, name))
