"""The mechanics behind `scoring.core.config`: merging, overrides, interpolation, typed parsing.

Every function here keeps `provenance`, a map from dotted key to the file (or `--set`) that
set it last, so that an error names where the bad value came from.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import yaml

from scoring.core.errors import ConfigError

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_ENV_REF = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)


def deep_merge(
    target: dict[str, Any],
    source: Mapping[str, Any],
    origin: str,
    provenance: dict[str, str],
    prefix: str = "",
) -> None:
    """Merge `source` into `target` in place: mappings merge key by key, anything else replaces."""
    for key, value in source.items():
        if key is True and prefix == "retrain.":
            key = "on"  # YAML 1.1 reads a bare `on:` key as true (`retrain.on`)
        if not isinstance(key, str):
            raise ConfigError(f"{origin}: key {key!r} under '{prefix or '<top>'}' is not a string")
        dotted = f"{prefix}{key}"
        provenance[dotted] = origin
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            deep_merge(target[key], value, origin, provenance, dotted + ".")
        elif isinstance(value, Mapping):
            target[key] = {}
            deep_merge(target[key], value, origin, provenance, dotted + ".")
        else:
            target[key] = value


def parse_override(text: str) -> dict[str, Any]:
    """Turn `a.b.c=value` into `{"a": {"b": {"c": value}}}`, the value parsed as YAML."""
    key, sep, raw_value = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(f"--set: '{text}' is not of the form dotted.key=value")
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set: value of '{key}' is not valid YAML: {raw_value!r}") from exc
    nested: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        nested = {part: nested}
    return nested


def interpolate(
    data: Any, provenance: Mapping[str, str], environ: Mapping[str, str], key: str = ""
) -> Any:
    """Replace `${env:VAR}` and `${env:VAR:-default}` in every string value.

    A value that is one placeholder alone is re-read as YAML, so `${env:N:-4}` gives the int 4.
    """
    if isinstance(data, dict):
        return {
            k: interpolate(v, provenance, environ, f"{key}.{k}" if key else k)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [interpolate(v, provenance, environ, key) for v in data]
    if not isinstance(data, str) or "${" not in data:
        return data

    def substitute(match: re.Match[str]) -> str:
        ref = _ENV_REF.match(match.group(1))
        if ref is None:
            raise ConfigError(
                f"{provenance.get(key, '?')}: {key}: bad placeholder '{match.group(0)}' "
                "(expected ${env:VAR} or ${env:VAR:-default})"
            )
        name, default = ref.group(1), ref.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{provenance.get(key, '?')}: {key}: environment variable {name} is not set"
        )

    result = _PLACEHOLDER.sub(substitute, data)
    if _PLACEHOLDER.fullmatch(data):
        return yaml.safe_load(result) if result.strip() else None
    return result


def build_section(hint: Any, data: Any, prefix: str, provenance: Mapping[str, str]) -> Any:
    """One top-level section: a frozen dataclass, or a plain mapping such as `tables`."""
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return build_typed(hint, data, prefix, provenance)
    if data is None:
        data = {}
    return _convert(hint, data, prefix, provenance)


def build_typed(cls: type, data: Any, prefix: str, provenance: Mapping[str, str]) -> Any:
    """Build the frozen dataclass `cls` from `data`, checking every key, type and bound."""
    where = provenance.get(prefix, "conf/base.yaml")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: '{prefix}' must be a mapping, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        key = f"{prefix}.{unknown[0]}"
        raise ConfigError(
            f"{provenance.get(key, where)}: unknown key '{key}' (known keys under "
            f"'{prefix}': {', '.join(names)})"
        )
    values: dict[str, Any] = {}
    for spec in dataclasses.fields(cls):
        key = f"{prefix}.{spec.name}"
        if spec.name not in data:
            raise ConfigError(
                f"missing key '{key}' (declare it in conf/base.yaml or the environment's file)"
            )
        value = _convert(hints[spec.name], data[spec.name], key, provenance)
        _check_bounds(spec, value, key, provenance)
        values[spec.name] = value
    return cls(**values)


def _convert(hint: Any, value: Any, key: str, provenance: Mapping[str, str]) -> Any:
    """Check `value` against the type hint `hint` and return it in that type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return build_typed(hint, value, key, provenance)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, key, provenance)
    if origin is typing.Literal:
        if isinstance(value, bool) and ("on" if value else "off") in args:
            return "on" if value else "off"  # YAML 1.1 reads a bare on / off as a boolean
        if value not in args:
            _fail(key, provenance, f"one of {list(args)}", value)
        return value
    if origin in (Mapping, dict):
        if not isinstance(value, Mapping):
            _fail(key, provenance, "a mapping", value)
        inner = args[1] if len(args) == 2 else str
        if dataclasses.is_dataclass(inner) and isinstance(inner, type):
            # A mapping of sections, e.g. per-feature thresholds: each value is checked too.
            return MappingProxyType(
                {str(k): build_typed(inner, v, f"{key}.{k}", provenance) for k, v in value.items()}
            )
        return MappingProxyType({str(k): _as_text(v) for k, v in value.items()})
    if origin is tuple:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            _fail(key, provenance, "a list of strings", value)
        return tuple(value)
    return _convert_scalar(hint, value, key, provenance)


def _convert_scalar(hint: Any, value: Any, key: str, provenance: Mapping[str, str]) -> Any:
    """Check a scalar value: bool, int, float or str, with no silent coercion."""
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is str and isinstance(value, str) and value != "":
        return value
    expected = {bool: "true or false", int: "an integer", float: "a number", str: "a text"}
    _fail(key, provenance, expected.get(hint, str(hint)), value)


def _check_bounds(
    spec: dataclasses.Field[Any], value: Any, key: str, provenance: Mapping[str, str]
) -> None:
    """Apply the `min` / `max` bounds declared in a field's metadata."""
    low, high = spec.metadata.get("min"), spec.metadata.get("max")
    if value is None:
        return
    if low is not None and value < low:
        _fail(key, provenance, f"a value >= {low}", value)
    if high is not None and value > high:
        _fail(key, provenance, f"a value <= {high}", value)


def _fail(key: str, provenance: Mapping[str, str], expected: str, value: Any) -> typing.NoReturn:
    raise ConfigError(
        f"{provenance.get(key, '?')}: {key}: expected {expected}, got {_describe(value)}"
    )


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _as_text(value: Any) -> str:
    """Spark settings are strings; YAML booleans become `true` / `false` as Spark spells them."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
