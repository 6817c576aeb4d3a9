"""EMR steps in the AWS CLI's shape, from the API's shape that `deploy/emr/*steps.json` hold.

The files hold what the EMR API's `AddJobFlowSteps` takes as `Steps` (boto3, Airflow's
`EmrAddStepsOperator`, Step Functions): `{Name, ActionOnFailure, HadoopJarStep: {Jar, Args}}`.
The AWS CLI has no command for that request: `aws emr add-steps --steps file://...` takes a
flat shape of its own, `{Type: CUSTOM_JAR, Name, ActionOnFailure, Jar, Args}`, and builds
the API request from it. This script writes that shape:

    envsubst < deploy/emr/steps.json | python3 deploy/emr_cli.py - > /tmp/steps.json
    aws emr add-steps --cluster-id j-XXXXXXXXXXXXX --steps file:///tmp/steps.json

Standard library only: it runs on the machine that deploys, like `deploy/build.py`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CUSTOM_JAR = "CUSTOM_JAR"
_STEP_KEYS = {"Name", "ActionOnFailure", "HadoopJarStep", "StepMonitoringConfiguration"}
_JAR_KEYS = {"Jar", "Args", "MainClass", "Properties"}
_LOG_KEYS = {"LogUri", "EncryptionKeyArn"}


class StepShapeError(ValueError):
    """A step the CLI's shape cannot express, or that is not in the API's shape."""


def cli_step(step: Mapping[str, Any]) -> dict[str, Any]:
    """One `AddJobFlowSteps` step as an `aws emr add-steps` step (a CUSTOM_JAR step).

    Example:
        >>> cli_step({"Name": "a", "ActionOnFailure": "CONTINUE",
        ...           "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["ls"]}})
        {'Type': 'CUSTOM_JAR', 'Name': 'a', 'ActionOnFailure': 'CONTINUE', 'Jar': 'command-runner.jar', 'Args': ['ls']}

    Raises:
        StepShapeError: a key the API does not know, or a property the CLI cannot pass.
    """
    name = step.get("Name", "<no Name>")
    _only(step, _STEP_KEYS, f"step {name!r}")
    if "HadoopJarStep" not in step or "Jar" not in step["HadoopJarStep"]:
        raise StepShapeError(f"step {name!r}: HadoopJarStep.Jar is required")
    jar_step = step["HadoopJarStep"]
    _only(jar_step, _JAR_KEYS, f"step {name!r}: HadoopJarStep")
    # The CLI fills in defaults (name "Custom JAR", CONTINUE) for missing keys: keep them out.
    out: dict[str, Any] = {"Type": CUSTOM_JAR}
    out.update({key: step[key] for key in ("Name", "ActionOnFailure") if key in step})
    out.update({key: jar_step[key] for key in ("Jar", "Args", "MainClass") if key in jar_step})
    if "Properties" in jar_step:
        out["Properties"] = _properties(jar_step["Properties"], name)
    monitoring = step.get("StepMonitoringConfiguration", {})
    _only(monitoring, {"S3MonitoringConfiguration"}, f"step {name!r}: StepMonitoringConfiguration")
    logs = monitoring.get("S3MonitoringConfiguration", {})
    _only(logs, _LOG_KEYS, f"step {name!r}: S3MonitoringConfiguration")
    out.update(logs)
    return out


def cli_steps(steps: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every step of an `AddJobFlowSteps` `Steps` list in the CLI's shape, in order."""
    if not isinstance(steps, list):
        raise StepShapeError(f"expected a JSON list of steps, got {type(steps).__name__}")
    return [cli_step(step) for step in steps]


def _properties(properties: list[Mapping[str, str]], name: str) -> str:
    """`[{Key, Value}]` as the CLI's `k=v,k=v` (it splits on commas: none may hold one)."""
    pairs = [f"{p['Key']}={p['Value']}" for p in properties]
    if any("," in pair for pair in pairs):
        raise StepShapeError(f"step {name!r}: the CLI cannot pass a property holding ','")
    return ",".join(pairs)


def _only(mapping: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise StepShapeError(
            f"{where}: unknown key(s) {unknown}, expected some of {sorted(allowed)}"
        )


def main(argv: list[str] | None = None) -> int:
    """Read API-shaped steps from a file (or `-`, standard input); print them in CLI shape."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("steps", help="a JSON file of AddJobFlowSteps steps, or - for stdin")
    args = parser.parse_args(argv)
    text = sys.stdin.read() if args.steps == "-" else Path(args.steps).read_text()
    try:
        converted = cli_steps(json.loads(text))
    except (StepShapeError, json.JSONDecodeError) as exc:
        print(f"emr_cli: {args.steps}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(converted, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
