"""EMR on EC2 steps and the EMR Serverless StartJobRun request, checked against the build."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from deploy.build import ENV_ARCHIVE, JOBS_DIR, PYFILES_ZIP, USECASES_DIR, example_usecases
from scoring.cli.jobs import JOB_COMMANDS
from scoring.core.config import load_config
from scoring.runs.steps import registered_name, usecase_tables
from tests.deploy.checks import parse_cli

ROOT = Path(__file__).resolve().parents[2]
EMR = ROOT / "deploy" / "emr"
ARTIFACTS = "${SCORING_ARTIFACTS}/"
DELTA_JARS = {
    "/usr/share/aws/delta/lib/delta-spark.jar",
    "/usr/share/aws/delta/lib/delta-storage.jar",
}
ENVIRON = {
    "SCORING_S3_ROOT": "s3://bucket/lake",
    "SCORING_GLUE_DATABASE": "risk",
    "MLFLOW_TRACKING_URI": "http://mlflow:5000",
}
# The use case the files run: its archive unpacks into ./usecase, which --usecase names.
USECASE_ARCHIVE = f"{USECASES_DIR}/churn.zip"
USECASE_ALIAS = "usecase"


def built_names() -> set[str]:
    """What `make dist` puts in dist/ that a job may name (besides the wheel)."""
    jobs = {f"{JOBS_DIR}/{c}.py" for c in JOB_COMMANDS if (ROOT / "jobs" / f"{c}.py").is_file()}
    usecases = {f"{USECASES_DIR}/{folder.name}.zip" for folder in example_usecases()}
    return {PYFILES_ZIP, ENV_ARCHIVE, *jobs, *usecases}


@pytest.fixture(scope="module")
def steps() -> list[dict[str, Any]]:
    return json.loads((EMR / "steps.json").read_text())


@pytest.fixture(scope="module")
def first_run_steps() -> list[dict[str, Any]]:
    return json.loads((EMR / "first-run-steps.json").read_text())


@pytest.fixture(scope="module")
def all_steps(steps, first_run_steps) -> list[dict[str, Any]]:
    return [*steps, *first_run_steps]


def step_args(step: dict[str, Any]) -> list[str]:
    """The command-runner arguments of an AddJobFlowSteps step: `spark-submit ...`."""
    return list(step["HadoopJarStep"]["Args"])


@pytest.fixture(scope="module")
def job_run() -> dict[str, Any]:
    return json.loads((EMR / "serverless-start-job-run.json").read_text())


def conf_pairs(args: list[str]) -> dict[str, str]:
    """Every `--conf key=value` of a spark-submit argument list."""
    pairs = [args[i + 1] for i, a in enumerate(args) if a == "--conf"]
    return dict(p.split("=", 1) for p in pairs)


def option(args: list[str], name: str) -> str:
    (value,) = [args[i + 1] for i, a in enumerate(args) if a == name]
    return value


def archives(value: str) -> dict[str, str]:
    """`uri#alias,uri#alias` (--archives, spark.archives) as {alias: uri}."""
    pairs = [item.rsplit("#", 1) for item in value.split(",")]
    assert all(len(pair) == 2 for pair in pairs), f"an archive without #alias in {value!r}"
    return {alias: uri for uri, alias in pairs}


def split_submit(args: list[str]) -> tuple[list[str], str, list[str]]:
    """spark-submit options, the .py entry point, and the job's own arguments."""
    index = next(i for i, a in enumerate(args) if a.endswith(".py") and args[i - 1] != "--py-files")
    return args[:index], args[index], args[index + 1 :]


def test_steps_run_command_runner_spark_submit_in_chain_order(steps):
    assert [s["Name"].split()[1] for s in steps] == [
        "ingest",
        "features",
        "score",
        "monitor",
        "quality",
    ]
    for step in steps:
        assert set(step) == {"Name", "ActionOnFailure", "HadoopJarStep"}
        assert set(step["HadoopJarStep"]) == {"Jar", "Args"}
        assert step["HadoopJarStep"]["Jar"] == "command-runner.jar"
        assert step_args(step)[0] == "spark-submit"


def test_a_failed_step_cancels_the_rest_of_the_chain_but_a_drift_alert_cancels_nothing(steps):
    # A failed ingest, features or score cancels the steps queued after it: the chain never
    # scores stale features. Monitor and quality come last: their failure (a drift or
    # quality alert with --fail-on-alert, after the metrics are written) marks the step
    # FAILED and leaves the steps queued after it (quality after monitor, the next date,
    # another use case) to run.
    actions = {s["Name"].split()[1]: s["ActionOnFailure"] for s in steps}
    assert actions == {
        "ingest": "CANCEL_AND_WAIT",
        "features": "CANCEL_AND_WAIT",
        "score": "CANCEL_AND_WAIT",
        "monitor": "CONTINUE",
        "quality": "CONTINUE",
    }


@pytest.mark.parametrize(("position", "command"), [(-2, "monitor"), (-1, "quality")])
def test_monitor_and_quality_steps_fail_on_an_alert(steps, position, command):
    _, entry_point, arguments = split_submit(step_args(steps[position]))
    assert Path(entry_point).name == f"{command}.py"
    assert arguments[-1] == "--fail-on-alert"
    assert parse_cli([command, *arguments]).fail_on_alert is True
    for step in steps[:-2]:
        assert "--fail-on-alert" not in step_args(step)


def test_first_run_step_runs_the_pipeline_which_trains_the_first_model(first_run_steps, steps):
    (step,) = first_run_steps
    assert step["ActionOnFailure"] == "CANCEL_AND_WAIT"
    options, entry_point, arguments = split_submit(step_args(step))
    assert entry_point == f"{ARTIFACTS}{JOBS_DIR}/pipeline.py"
    args = parse_cli(["pipeline", *arguments])
    assert (args.env, str(args.run_date), args.fail_on_alert) == ("emr", "2026-03-02", True)
    assert args.train_if_missing is True
    assert args.usecase == Path(USECASE_ALIAS)
    # The same spark-submit options as the daily steps: one cluster set-up to keep.
    assert options == split_submit(step_args(steps[0]))[0]


def test_steps_enable_delta_with_the_emr_jars_and_glue_as_in_the_emr_config(all_steps):
    spark_conf = load_config("emr", environ=ENVIRON).spark.conf
    for step in all_steps:
        options, _, _ = split_submit(step_args(step))
        assert set(option(options, "--jars").split(",")) == DELTA_JARS
        confs = conf_pairs(options)
        for key, value in spark_conf.items():
            assert confs[key] == value


def test_steps_and_job_run_name_only_built_artifacts_and_job_files(all_steps, job_run):
    texts = [a for s in all_steps for a in step_args(s)]
    driver = job_run["jobDriver"]["sparkSubmit"]
    texts += [driver["entryPoint"], *shlex.split(driver["sparkSubmitParameters"])]
    named = {
        m.group(1) for t in texts for m in re.finditer(r"\$\{SCORING_ARTIFACTS\}/([^#,\s]+)", t)
    }
    assert named <= built_names()
    assert {PYFILES_ZIP, ENV_ARCHIVE, USECASE_ARCHIVE} <= named


@pytest.mark.parametrize("index", range(4))
def test_step_arguments_are_parsed_by_the_cli(steps, index):
    # Skips with "WAITING FOR MERGE" until the command's branch is merged.
    _, entry_point, arguments = split_submit(step_args(steps[index]))
    command = Path(entry_point).stem
    assert command in JOB_COMMANDS
    args = parse_cli([command, *arguments])
    assert (args.env, str(args.run_date)) == ("emr", "2026-03-02")
    assert args.usecase == Path(USECASE_ALIAS)


def test_steps_run_the_packed_environment_and_pass_the_config_variables(all_steps):
    for step in all_steps:
        options, _, _ = split_submit(step_args(step))
        assert archives(option(options, "--archives")) == {
            "environment": f"{ARTIFACTS}{ENV_ARCHIVE}",
            USECASE_ALIAS: f"{ARTIFACTS}{USECASE_ARCHIVE}",
        }
        assert option(options, "--py-files") == f"{ARTIFACTS}{PYFILES_ZIP}"
        confs = conf_pairs(options)
        assert confs["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] == "./environment/bin/python"
        assert confs["spark.executorEnv.PYSPARK_PYTHON"] == "./environment/bin/python"
        for name in ENVIRON:
            assert confs[f"spark.yarn.appMasterEnv.{name}"] == f"${{{name}}}"


def test_job_run_request_has_the_start_job_run_required_fields(job_run):
    # clientToken is required by the API too; the AWS CLI and SDKs generate it.
    assert job_run["applicationId"] == "${EMR_APPLICATION_ID}"
    assert job_run["executionRoleArn"] == "${EMR_EXECUTION_ROLE_ARN}"
    assert set(job_run["jobDriver"]) == {"sparkSubmit"}
    assert job_run["jobDriver"]["sparkSubmit"]["entryPoint"] == f"{ARTIFACTS}{JOBS_DIR}/pipeline.py"


def test_job_run_uses_the_packed_environment_delta_glue_and_config_variables(job_run):
    params = shlex.split(job_run["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"])
    assert option(params, "--py-files") == f"{ARTIFACTS}{PYFILES_ZIP}"
    assert set(option(params, "--jars").split(",")) == DELTA_JARS
    confs = conf_pairs(params)
    assert archives(confs["spark.archives"]) == {
        "environment": f"{ARTIFACTS}{ENV_ARCHIVE}",
        USECASE_ALIAS: f"{ARTIFACTS}{USECASE_ARCHIVE}",
    }
    for key in (
        "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON",
        "spark.emr-serverless.driverEnv.PYSPARK_PYTHON",
        "spark.executorEnv.PYSPARK_PYTHON",
    ):
        assert confs[key] == "./environment/bin/python"
    for key, value in load_config("emr", environ=ENVIRON).spark.conf.items():
        assert confs[key] == value
    for name in ENVIRON:
        assert confs[f"spark.emr-serverless.driverEnv.{name}"] == f"${{{name}}}"


def test_job_run_arguments_are_parsed_by_the_cli_and_fail_on_a_drift_alert(job_run):
    # Skips with "WAITING FOR MERGE" until `pipeline` is merged.
    args = parse_cli(["pipeline", *job_run["jobDriver"]["sparkSubmit"]["entryPointArguments"]])
    assert (args.env, str(args.run_date), args.fail_on_alert) == ("emr", "2026-03-02", True)
    assert args.train_if_missing is True
    assert args.usecase == Path(USECASE_ALIAS)


def test_emr_config_puts_each_use_case_in_its_own_glue_database_and_s3_prefix(churn):
    config = load_config("emr", environ=ENVIRON)
    assert config.spark.platform == "emr"
    assert config.spark.jars_dir is None
    tables = usecase_tables(config, churn)
    assert tables["scores"].catalog_name == "risk_churn.scores"
    assert tables["bronze_customers"].catalog_name == "risk_churn.bronze_customers"
    assert config.raw_root(churn.name) == "s3://bucket/lake/churn/raw"
    assert registered_name(config, churn) == "scoring_churn"
    assert config.artifact_root == "s3://bucket/lake/mlartifacts"
    assert config.tracking_uri == "http://mlflow:5000"
    factory = config.spark.conf["spark.hadoop.hive.metastore.client.factory.class"]
    assert factory == "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory"
