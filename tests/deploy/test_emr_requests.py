"""The EMR files are requests AWS accepts, checked offline with AWS's own code.

`deploy/emr/*steps.json` hold `AddJobFlowSteps` `Steps` (the API's shape: boto3, Airflow,
Step Functions) and `serverless-start-job-run.json` a `StartJobRun` request; both are filled
in as `envsubst` would and validated with botocore's service models. Their AWS CLI form,
written by `deploy/emr_cli.py`, goes through the AWS CLI's own `aws emr add-steps` (its
request to EMR captured, nothing sent), which must send exactly the API-shaped steps.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from awscli.clidriver import create_clidriver
from awscli.customizations.emr import emrutils

from deploy.emr_cli import StepShapeError, cli_step, cli_steps
from deploy.emr_cli import main as emr_cli_main
from tests.deploy.aws import envsubst, input_shape, request_errors

ROOT = Path(__file__).resolve().parents[2]
EMR = ROOT / "deploy" / "emr"
STEP_FILES = ["steps.json", "first-run-steps.json"]
CLUSTER_ID = "j-2AXXXXXXGAPLF"


def filled(name: str) -> Any:
    """A file of deploy/emr as `envsubst < file` leaves it, parsed."""
    return json.loads(envsubst((EMR / name).read_text()))


def sent_by_aws_emr_add_steps(cli_file: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The AddJobFlowSteps request `aws emr add-steps --steps file://<cli_file>` would send."""
    for name, value in {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }.items():
        monkeypatch.setenv(name, value)
    sent: dict[str, Any] = {}

    def capture(session: Any, operation: str, parameters: Any, parsed_globals: Any) -> None:
        sent[operation] = parameters

    # The release label is asked from the cluster first (DescribeCluster): answered here.
    with (
        mock.patch.object(emrutils, "get_release_label", return_value="emr-7.9.0"),
        mock.patch.object(emrutils, "call_and_display_response", side_effect=capture),
    ):
        argv = ["emr", "add-steps", "--cluster-id", CLUSTER_ID, "--steps", f"file://{cli_file}"]
        assert create_clidriver().main(argv) == 0
    return dict(sent["AddJobFlowSteps"])


@pytest.mark.parametrize("name", STEP_FILES)
def test_steps_are_an_add_job_flow_steps_request_botocore_accepts(name):
    request = {"JobFlowId": CLUSTER_ID, "Steps": filled(name)}
    assert request_errors("emr", "AddJobFlowSteps", request) == []


def test_job_run_is_a_start_job_run_request_botocore_accepts():
    shape = input_shape("emr-serverless", "StartJobRun")
    # clientToken is required, and an idempotency token: boto3 and the CLI generate it.
    assert shape.members["clientToken"].metadata["idempotencyToken"] is True
    request = {**filled("serverless-start-job-run.json"), "clientToken": "scoring-2026-03-02"}
    assert request_errors("emr-serverless", "StartJobRun", request) == []


def test_the_validator_rejects_steps_in_the_cli_shape():
    # What steps.json held before: the CLI's shorthand is no AddJobFlowSteps request.
    request = {"JobFlowId": CLUSTER_ID, "Steps": cli_steps(filled("steps.json"))}
    errors = request_errors("emr", "AddJobFlowSteps", request)
    assert (
        'Unknown parameter in Steps[0]: "Type", must be one of: Name, ActionOnFailure, HadoopJarStep, StepMonitoringConfiguration'
        in errors
    )
    assert 'Missing required parameter in Steps[0]: "HadoopJarStep"' in errors


def test_the_constraint_check_catches_what_botocore_leaves_to_the_service():
    (step,) = filled("first-run-steps.json")
    bad = {**step, "ActionOnFailure": "CANCEL", "Name": "x" * 257}
    errors = request_errors("emr", "AddJobFlowSteps", {"JobFlowId": CLUSTER_ID, "Steps": [bad]})
    assert len(errors) == 2
    assert errors[0].startswith("AddJobFlowSteps.Steps[0].Name: 257 characters, at most 256")
    assert errors[1].startswith("AddJobFlowSteps.Steps[0].ActionOnFailure: 'CANCEL' is not one of")


@pytest.mark.parametrize("name", STEP_FILES)
def test_aws_emr_add_steps_sends_the_api_steps_from_their_cli_form(name, monkeypatch, tmp_path):
    cli_file = tmp_path / "steps.json"
    cli_file.write_text(json.dumps(cli_steps(filled(name))))
    request = sent_by_aws_emr_add_steps(cli_file, monkeypatch)
    assert request == {"JobFlowId": CLUSTER_ID, "Steps": filled(name)}


def test_main_class_properties_and_log_uri_survive_the_cli_form(monkeypatch, tmp_path):
    step = {
        "Name": "a jar",
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {
            "Jar": "s3://bucket/app.jar",
            "MainClass": "com.example.Main",
            "Args": ["--day", "2026-03-02"],
            "Properties": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "x=y"}],
        },
        "StepMonitoringConfiguration": {
            "S3MonitoringConfiguration": {"LogUri": "s3://bucket/logs/"}
        },
    }
    cli_file = tmp_path / "steps.json"
    cli_file.write_text(json.dumps([cli_step(step)]))
    assert sent_by_aws_emr_add_steps(cli_file, monkeypatch)["Steps"] == [step]


def test_the_cli_form_refuses_a_key_it_cannot_carry():
    with pytest.raises(StepShapeError, match=r"step 'a': unknown key\(s\) \['Type'\]"):
        cli_step({"Name": "a", "Type": "CUSTOM_JAR", "HadoopJarStep": {"Jar": "x.jar"}})
    properties = {"Jar": "x.jar", "Properties": [{"Key": "k", "Value": "a,b"}]}
    with pytest.raises(StepShapeError, match="property holding ','"):
        cli_step({"Name": "a", "HadoopJarStep": properties})


def test_the_script_converts_envsubst_output_from_standard_input(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(envsubst((EMR / "steps.json").read_text())))
    assert emr_cli_main(["-"]) == 0
    assert json.loads(capsys.readouterr().out) == cli_steps(filled("steps.json"))


def test_the_script_names_the_file_of_a_bad_step(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"Name": "a", "Jar": "x.jar"}]))
    assert emr_cli_main([str(bad)]) == 2
    assert f"emr_cli: {bad}: step 'a': unknown key(s) ['Jar']" in capsys.readouterr().err
