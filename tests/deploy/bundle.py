"""The Databricks bundle read as the CLI resolves it for one target (no workspace, no CLI).

`${var.X}` takes the variable's default, then the target's value, then a `--var` given here
(`GIVEN_VARIABLES`: what the docs tell a deployer to pass); `${workspace.*}` and
`${bundle.*}` take sample values. A string that is one reference keeps the value's type
(`num_workers: ${var.num_workers}` is the integer 2), as the CLI does. Dynamic value
references (`{{job.parameters.run_date}}`) are left alone: the Jobs service fills them in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("dev", "prod")
# Variables without a default, passed with --var as docs/deploy.md shows.
GIVEN_VARIABLES: Mapping[str, str] = {
    "notification_email": "oncall@example.com",
    "operators_group": "scoring-operators",
    "service_principal": "9f0c3e52-7d1b-4c6a-8e2f-0a1b2c3d4e5f",
}
_REFERENCE = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")


def load_bundle() -> dict[str, Any]:
    """`databricks.yml` as written."""
    return dict(yaml.safe_load((ROOT / "databricks.yml").read_text()))


def included_files(bundle: Mapping[str, Any]) -> list[Path]:
    """The resource files the bundle's `include` patterns name, in a stable order."""
    return sorted(path for pattern in bundle["include"] for path in ROOT.glob(pattern))


def job_resources(bundle: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every job resource of the included files, by its resource key, as written."""
    jobs: dict[str, dict[str, Any]] = {}
    for path in included_files(bundle):
        for key, job in yaml.safe_load(path.read_text())["resources"].get("jobs", {}).items():
            assert key not in jobs, f"job resource {key} defined twice"
            jobs[key] = job
    return jobs


def substitutions(bundle: Mapping[str, Any], target: str) -> dict[str, Any]:
    """What each `${...}` stands for under `target`, variables resolved."""
    known: dict[str, Any] = {
        "bundle.name": bundle["bundle"]["name"],
        "bundle.target": target,
        "workspace.file_path": (
            f"/Workspace/Users/someone@example.com/.bundle/{bundle['bundle']['name']}"
            f"/{target}/files"
        ),
    }
    values = {name: spec.get("default") for name, spec in bundle["variables"].items()}
    values.update(bundle["targets"][target].get("variables", {}))
    values.update({k: v for k, v in GIVEN_VARIABLES.items() if k in values})
    missing = sorted(name for name, value in values.items() if value is None)
    assert not missing, f"variables without a value under target {target}: {missing}"
    known.update({f"var.{name}": value for name, value in values.items()})
    # A variable's default may itself hold references (usecase_dir names workspace.file_path).
    return {name: resolve(value, known) for name, value in known.items()}


def resolve(value: Any, known: Mapping[str, Any]) -> Any:
    """`value` with every `${...}` replaced; a lone reference keeps its value's type."""
    if isinstance(value, Mapping):
        return {key: resolve(item, known) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, known) for item in value]
    if not isinstance(value, str):
        return value
    lone = _REFERENCE.fullmatch(value)
    if lone:
        return resolve(_lookup(lone.group(1), known), known)
    return _REFERENCE.sub(lambda m: str(resolve(_lookup(m.group(1), known), known)), value)


def resolved_job(bundle: Mapping[str, Any], key: str, target: str) -> dict[str, Any]:
    """Job resource `key` as the CLI would deploy it under `target`."""
    job = resolve(job_resources(bundle)[key], substitutions(bundle, target))
    assert isinstance(job, dict)
    return job


def _lookup(name: str, known: Mapping[str, Any]) -> Any:
    assert name in known, f"no value for ${{{name}}} (not a bundle variable or known reference)"
    return known[name]
