from __future__ import annotations

import platform
import re
from importlib.metadata import version
from pathlib import Path

import pytest

from scoring.cli.doctor import check_delta_round_trip, check_worker_python, run_doctor
from scoring.core.errors import EnvironmentProblem
from scoring.usecase import load_usecase
from tests.conftest import CHURN_DIR
from tests.usecase.factory import FEATURES_PY, usecase_doc, write_usecase


def test_doctor_passes_and_reports_versions_and_locations(spark, config, churn, capsys):
    code = run_doctor(config, churn, session_factory=lambda: spark)
    out = capsys.readouterr().out
    assert code == 0
    for package in ("pyspark", "delta-spark"):
        assert re.search(rf"^{package}\s+{re.escape(version(package))}$", out, re.M)
    assert re.search(r"^mlflow\s+3\.", out, re.M)
    root = re.escape(config.storage.root)
    assert re.search(rf"^table features\s+{root}/churn/features$", out, re.M)
    assert re.search(rf"^raw drops\s+{root}/churn/raw$", out, re.M)
    assert "[ok] delta write/read/time travel" in out
    # No MLflow store yet: reported, not created (it would read as an empty registry later).
    assert "[ok] mlflow: no store yet at " in out
    assert not list(Path(config.storage.root).glob("*.db"))
    assert "[ok] feature code: " in out and "returns the 29 columns of" in out
    assert "[ok] trainer: " in out and "[ok] sample data: " in out
    # No model yet: the demo has a trainer, so the pipeline trains one (a warning only).
    assert re.search(
        r"^\[warn\] model: model URI 'models:/scoring_churn@champion': .* trains one$", out, re.M
    )
    assert "doctor: all checks passed" in out


def test_doctor_binds_the_trained_model_to_the_features(spark, trained, churn, capsys):
    assert run_doctor(trained, churn, session_factory=lambda: spark) == 0
    out = capsys.readouterr().out
    assert (
        "[ok] model: models:/scoring_churn@champion is models:/scoring_churn/1: 26 inputs bound, loads as a binary model"
        in out
    )


def test_doctor_names_broken_feature_code_and_a_missing_model_one_line_each(
    spark, config, tmp_path, capsys
):
    text = FEATURES_PY.replace('F.lit("a").alias("kind")', 'F.lit(1).alias("kind")')
    usecase = load_usecase(
        write_usecase(tmp_path / "uc", usecase_doc(train=None), {"features.py": text})
    )
    assert run_doctor(config, usecase, session_factory=lambda: spark) == 1
    out = capsys.readouterr().out
    assert re.search(
        r"^\[FAILED\] feature code: features: column 'kind' has type int, .* says string$",
        out,
        re.M,
    )
    assert re.search(
        # The doctor created no MLflow store, so the registry is not found (not "empty").
        r"^\[FAILED\] model: model URI 'models:/tiny_model@champion': .*registry not found at "
        r"\S+ .*storage\.root\); register one",
        out,
        re.M,
    )
    assert "doctor: 2 check(s) failed: feature code, model" in out


def test_doctor_checks_sql_features_of_the_second_use_case(spark, config, capsys):
    claims = load_usecase(Path(__file__).parents[1] / "usecases" / "claims")
    run_doctor(config, claims, session_factory=lambda: spark)
    out = capsys.readouterr().out
    assert re.search(r"^\[ok\] feature code: .*features\.sql returns the 10 columns of", out, re.M)


def test_delta_round_trip_leaves_no_scratch_table(spark, config, tmp_path):
    check = check_delta_round_trip(spark, config)
    assert check.ok, check.detail
    assert "read 4 rows; v0 matches" in check.detail
    scratch = tmp_path / "lakehouse" / "_doctor"
    assert not scratch.exists() or list(scratch.iterdir()) == []


@pytest.fixture
def worker_context(spark):
    """The shared session's SparkContext; the Python settings a test changes are restored."""
    context = spark.sparkContext
    saved = (context.pythonExec, context.pythonVer)
    yield context
    context.pythonExec, context.pythonVer = saved


def test_doctor_names_the_python_the_executors_run(spark, config, churn, capsys):
    assert run_doctor(config, churn, session_factory=lambda: spark) == 0
    python = spark.sparkContext.pythonExec
    assert (
        f"[ok] worker python: executors run {python} (Python {platform.python_version()}) "
        f"(PYSPARK_PYTHON={python}, master local[2])"
    ) in capsys.readouterr().out


def test_doctor_names_a_worker_python_that_cannot_start_and_skips_the_delta_check(
    spark, config, churn, worker_context, capsys
):
    worker_context.pythonExec = "./environment/bin/python"
    assert run_doctor(config, churn, session_factory=lambda: spark) == 1
    out = capsys.readouterr().out
    assert (
        '[FAILED] worker python: Cannot run program "./environment/bin/python": error=2, '
        "No such file or directory (PYSPARK_PYTHON=./environment/bin/python, master local[2]); "
        "local mode runs the executors in the driver's working folder, where Spark does not "
        "unpack --archives: use a cluster's master or an absolute PYSPARK_PYTHON\n"
    ) in out
    assert "[FAILED] delta write/read/time travel: not run: it needs Python workers" in out
    assert "Py4JJavaError" not in out
    assert "doctor: 2 check(s) failed: worker python, delta write/read/time travel" in out


def test_worker_python_missing_at_an_absolute_path_is_named_with_the_path(
    spark, worker_context, tmp_path
):
    worker_context.pythonExec = str(tmp_path / "bin" / "python3.11")
    check = check_worker_python(spark)
    assert (check.ok, check.detail) == (
        False,
        f'Cannot run program "{tmp_path}/bin/python3.11": error=2, No such file or directory '
        f"(PYSPARK_PYTHON={tmp_path}/bin/python3.11, master local[2]); "
        "every executor's node needs that program at that path",
    )


def test_worker_python_that_exits_at_start_is_named_with_its_error(spark, worker_context, tmp_path):
    fake = tmp_path / "python"
    fake.write_text(
        "#!/bin/sh\necho 'python: error while loading shared libraries' >&2\nexit 127\n"
    )
    fake.chmod(0o755)
    worker_context.pythonExec = str(fake)
    check = check_worker_python(spark)
    assert (check.ok, check.detail) == (
        False,
        "the Python worker exited: python: error while loading shared libraries "
        f"(PYSPARK_PYTHON={fake}, master local[2])",
    )


def test_worker_python_of_another_version_is_named_with_the_workers_error(spark, worker_context):
    worker_context.pythonVer = "3.10"  # what the driver tells the worker it runs
    check = check_worker_python(spark)
    assert not check.ok
    assert check.detail.startswith(
        "the Python worker failed: PySparkRuntimeError: [PYTHON_VERSION_MISMATCH] Python in "
        f"worker has different version: {platform.python_version_tuple()[0]}."
    )
    assert "\n" not in check.detail


def test_worker_python_gives_up_when_no_executor_runs_the_task(spark):
    check = check_worker_python(spark, timeout=0.001)
    assert not check.ok
    assert check.detail.startswith("no executor ran a task in 0.001 s: are workers up with free")


def test_doctor_fails_with_a_clear_message_when_the_session_cannot_start(config, capsys):
    def broken() -> None:
        raise EnvironmentProblem("/nowhere/delta-spark_2.13-4.0.1.jar: Delta jar missing")

    code = run_doctor(config, load_usecase(CHURN_DIR), session_factory=broken)  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert code == 1
    assert "[FAILED] spark session: EnvironmentProblem: /nowhere/delta-spark" in out
    assert "doctor: 1 check(s) failed: spark session" in out


def test_doctor_fails_when_the_mlflow_store_is_unusable(spark, tmp_path, capsys):
    from tests.conftest import make_config

    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    config = make_config(tmp_path / "lake", f"mlflow.tracking_uri=sqlite:///{blocker}/db.sqlite")
    code = run_doctor(config, load_usecase(CHURN_DIR), session_factory=lambda: spark)
    assert code == 1
    assert "[FAILED] mlflow" in capsys.readouterr().out


@pytest.mark.parametrize("missing", [0, 1], ids=["delta-spark", "delta-storage"])
def test_missing_delta_jar_is_named_with_the_fix(tmp_path, missing):
    from scoring.core.session import delta_jar_names, delta_jars

    names = delta_jar_names(version("delta-spark"), version("pyspark"))
    for index, choices in enumerate(names):
        if index != missing:
            (tmp_path / choices[0]).write_text("")
    with pytest.raises(EnvironmentProblem) as err:
        delta_jars(str(tmp_path))
    assert f"{tmp_path}: Delta jar missing: {' or '.join(names[missing])} (" in str(err.value)
    assert "make setup" in str(err.value)
