"""Every job of the bundle, resolved for each target, held to the Databricks SDK's own types.

`JobSettings.from_dict` drops a key it does not know and an enum value it does not accept
without a word, and keeps a scalar of the wrong type as it is; so each job is read into the
SDK's dataclasses, written back with `as_dict()` and compared with what the bundle says, and
every scalar is checked against the dataclass field's type.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Mapping
from typing import Any

import pytest
from databricks.sdk.service.jobs import (
    JobAccessControlRequest,
    JobPermissionLevel,
    JobRunAs,
    JobSettings,
)

from tests.deploy.bundle import (
    GIVEN_VARIABLES,
    TARGETS,
    job_resources,
    load_bundle,
    resolve,
    resolved_job,
    substitutions,
)

BUNDLE = load_bundle()
JOB_KEYS = sorted(job_resources(BUNDLE))
# Keys of a bundle job resource that are the bundle's, not the Jobs API's JobSettings.
BUNDLE_ONLY_KEYS = {"permissions"}


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where `actual` lost, added or changed something of `expected` (dotted paths)."""
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        lost = [f"{path}.{k}: dropped" for k in expected if k not in actual]
        added = [f"{path}.{k}: added" for k in actual if k not in expected]
        both = [
            d
            for k in expected
            if k in actual
            for d in differences(expected[k], actual[k], f"{path}.{k}")
        ]
        return lost + added + both
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [
            d
            for i, pair in enumerate(zip(expected, actual, strict=True))
            for d in differences(*pair, f"{path}[{i}]")
        ]
    return [] if expected == actual else [f"{path}: {expected!r} became {actual!r}"]


def type_errors(value: Any, path: str = "") -> list[str]:
    """Scalars of an SDK dataclass tree whose type is not the field's declared one."""
    if not dataclasses.is_dataclass(value):
        return []
    hints = typing.get_type_hints(type(value))
    errors: list[str] = []
    for field in dataclasses.fields(value):
        item = getattr(value, field.name)
        if item is not None:
            errors += _check(item, _unwrap_optional(hints[field.name]), f"{path}.{field.name}")
    return errors


def _check(item: Any, expected: Any, path: str) -> list[str]:
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if origin is list:
        return [
            e for i, element in enumerate(item) for e in _check(element, args[0], f"{path}[{i}]")
        ]
    if origin is dict:
        return [
            e for key, element in item.items() for e in _check(element, args[1], f"{path}.{key}")
        ]
    if dataclasses.is_dataclass(expected) or (
        isinstance(expected, type) and issubclass(expected, enum.Enum)
    ):
        return type_errors(item, path)
    if expected in (int, float) and isinstance(item, bool):
        return [f"{path}: {item!r} is a bool, expected {expected.__name__}"]
    if expected in (str, int, float, bool) and not isinstance(item, expected):
        return [f"{path}: {item!r} is a {type(item).__name__}, expected {expected.__name__}"]
    return []


def _unwrap_optional(hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if typing.get_origin(hint) is typing.Union and len(args) == 1 else hint


def settings_of(job: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in job.items() if key not in BUNDLE_ONLY_KEYS}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("key", JOB_KEYS)
def test_job_is_read_by_the_sdk_job_settings_without_losing_a_key(key, target):
    written = settings_of(resolved_job(BUNDLE, key, target))
    assert differences(written, JobSettings.from_dict(written).as_dict()) == []


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("key", JOB_KEYS)
def test_every_job_setting_has_the_type_the_sdk_declares(key, target):
    settings = JobSettings.from_dict(settings_of(resolved_job(BUNDLE, key, target)))
    assert type_errors(settings) == []


def test_the_round_trip_check_catches_a_misspelt_key_and_an_unresolved_enum():
    job = settings_of(resolved_job(BUNDLE, "scoring_daily", "dev"))
    job["max_concurent_runs"] = 1
    job["schedule"] = {**job["schedule"], "pause_status": "${var.schedule_pause_status}"}
    assert sorted(differences(job, JobSettings.from_dict(job).as_dict())) == [
        ".max_concurent_runs: dropped",
        ".schedule.pause_status: dropped",
    ]


def test_the_type_check_catches_a_quoted_number():
    job = settings_of(resolved_job(BUNDLE, "scoring_daily", "dev"))
    job["tasks"][0] = {**job["tasks"][0], "max_retries": "2"}
    assert type_errors(JobSettings.from_dict(job)) == [
        ".tasks[0].max_retries: '2' is a str, expected int"
    ]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("key", JOB_KEYS)
def test_permissions_are_jobs_api_access_controls_for_the_variable_groups(key, target):
    permissions = resolved_job(BUNDLE, key, target)["permissions"]
    as_api = [
        {"permission_level": p["level"], **{k: v for k, v in p.items() if k != "level"}}
        for p in permissions
    ]
    assert [JobAccessControlRequest.from_dict(p).as_dict() for p in as_api] == as_api
    levels = {p["group_name"]: JobPermissionLevel(p["level"]) for p in permissions}
    assert levels == {
        GIVEN_VARIABLES["operators_group"]: JobPermissionLevel.CAN_MANAGE_RUN,
        BUNDLE["variables"]["viewers_group"]["default"]: JobPermissionLevel.CAN_VIEW,
    }


def test_operators_group_must_be_named_at_deploy_and_viewers_default_to_all_users():
    variables = BUNDLE["variables"]
    assert "default" not in variables["operators_group"]
    assert variables["viewers_group"]["default"] == "users"
    for key in JOB_KEYS:
        groups = [p["group_name"] for p in job_resources(BUNDLE)[key]["permissions"]]
        assert groups == ["${var.operators_group}", "${var.viewers_group}"]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("key", JOB_KEYS)
def test_jobs_are_tagged_with_project_target_team_and_cost_center(key, target):
    tags = resolved_job(BUNDLE, key, target)["tags"]
    defaults = {name: spec.get("default") for name, spec in BUNDLE["variables"].items()}
    assert tags == {
        "project": "scoring",
        "environment": target,
        "team": defaults["team"],
        "cost_center": defaults["cost_center"],
    }
    written = job_resources(BUNDLE)[key]["tags"]
    assert (written["team"], written["cost_center"]) == ("${var.team}", "${var.cost_center}")


def test_prod_runs_as_the_service_principal_given_at_deploy():
    run_as = resolve(BUNDLE["targets"]["prod"]["run_as"], substitutions(BUNDLE, "prod"))
    assert JobRunAs.from_dict(run_as).as_dict() == run_as
    assert run_as == {"service_principal_name": GIVEN_VARIABLES["service_principal"]}
