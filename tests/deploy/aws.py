"""AWS requests checked offline with botocore's own service models, as boto3 would send them.

botocore's `ParamValidator` (what every boto3 call runs before sending) checks names,
nesting, types, required members and minimum lengths. The service checks more: enum values,
maximum lengths and counts, numeric ranges and patterns, which the same service model
declares; `request_errors` checks those too, so a file that passes would be accepted.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import botocore.session
from botocore.model import Shape, StructureShape
from botocore.validate import ParamValidator

# What `envsubst` fills in (docs/deploy.md names these variables), with values of the
# shape AWS expects.
ENVSUBST: Mapping[str, str] = {
    "SCORING_ARTIFACTS": "s3://my-bucket/scoring/0.1.0",
    "SCORING_S3_ROOT": "s3://my-bucket/lake",
    "SCORING_GLUE_DATABASE": "scoring",
    "MLFLOW_TRACKING_URI": "https://mlflow.internal.example.com",
    "RUN_DATE": "2026-03-02",
    "EMR_APPLICATION_ID": "00fabc1234567890",
    "EMR_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/scoring-job",
    "SCORING_LOG_URI": "s3://my-bucket/logs/",
}
_VARIABLE = re.compile(r"\$\{(\w+)\}")


def envsubst(text: str) -> str:
    """`text` with each `${NAME}` replaced by its sample value; a name without one fails."""
    unknown = sorted(set(_VARIABLE.findall(text)) - set(ENVSUBST))
    assert not unknown, f"no sample value for {unknown}"
    return _VARIABLE.sub(lambda m: ENVSUBST[m.group(1)], text)


@functools.cache
def input_shape(service: str, operation: str) -> StructureShape:
    """The request shape of `operation` from the service model botocore ships."""
    model = botocore.session.get_session().get_service_model(service)
    shape = model.operation_model(operation).input_shape
    assert shape is not None
    return shape


def request_errors(service: str, operation: str, params: Mapping[str, Any]) -> list[str]:
    """Everything botocore's validator and the model's constraints find wrong in `params`."""
    shape = input_shape(service, operation)
    report = ParamValidator().validate(params, shape)
    errors = report.generate_report().splitlines() if report.has_errors() else []
    return errors + constraint_errors(params, shape, operation)


def constraint_errors(value: Any, shape: Shape, path: str) -> list[str]:
    """Enum, maximum, range and pattern violations below `value` (types are botocore's)."""
    meta = shape.metadata
    if shape.type_name == "structure" and isinstance(value, Mapping):
        members = shape.members
        return [
            e
            for name, item in value.items()
            if name in members
            for e in constraint_errors(item, members[name], f"{path}.{name}")
        ]
    if shape.type_name == "list" and isinstance(value, list):
        errors = (
            [f"{path}: {len(value)} items, at most {meta['max']}"]
            if len(value) > meta.get("max", len(value))
            else []
        )
        member = shape.member
        return errors + [
            e
            for i, item in enumerate(value)
            for e in constraint_errors(item, member, f"{path}[{i}]")
        ]
    if shape.type_name == "map" and isinstance(value, Mapping):
        member = shape.value
        return [
            e
            for key, item in value.items()
            for e in constraint_errors(item, member, f"{path}.{key}")
        ]
    if shape.type_name == "string" and isinstance(value, str):
        return _string_errors(value, shape, path)
    if shape.type_name in ("integer", "long") and isinstance(value, int):
        return [f"{path}: {value} above {meta['max']}"] if value > meta.get("max", value) else []
    return []


def _string_errors(value: str, shape: Shape, path: str) -> list[str]:
    meta, errors = shape.metadata, []
    if shape.enum and value not in shape.enum:
        errors.append(f"{path}: {value!r} is not one of {shape.enum}")
    if len(value) > meta.get("max", len(value)):
        errors.append(f"{path}: {len(value)} characters, at most {meta['max']}")
    pattern = _compiled(meta.get("pattern"))
    if pattern is not None and pattern.fullmatch(value) is None:
        errors.append(f"{path}: {value!r} does not match {pattern.pattern!r}")
    return errors


@functools.cache
def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    """The model's (Java) pattern as a Python regex; None where Python reads it differently."""
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error:  # e.g. surrogate ranges of the XML string pattern
        return None
