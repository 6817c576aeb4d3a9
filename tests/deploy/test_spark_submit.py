"""`make dist` artifacts run under the real `spark-submit`, with the source tree out of reach.

The job runs from a temporary working folder with PYTHONPATH cleared, so `scoring` can only
come from `--py-files dist/scoring.zip` (it shadows the editable install, which Python
appends after PYTHONPATH); the doctor prints where `scoring` and its config were loaded from.
The engine has no default use case there: every job passes `--usecase`, the churn demo's
folder of this checkout or its built archive `dist/usecases/churn.zip` unpacked into the
working folder as `./usecase` (what `--archives churn.zip#usecase` does on a cluster).
The Delta jars come from the config's `jars_dir` ($SCORING_JARS_DIR) and go on `--jars`:
under spark-submit the JVM is already running when the session is built, so `spark.jars`
set by the session factory would reach the executors but not the driver.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pyspark
import pytest
from pyspark.sql import functions as F

from deploy.build import USECASES_DIR
from scoring.core.session import delta_jars
from scoring.runs.steps import usecase_tables
from scoring.usecase import UseCase, load_usecase
from tests.conftest import CHURN_DIR, make_config
from tests.deploy.checks import require_command

ROOT = Path(__file__).resolve().parents[2]
RUN_DATE = "2026-03-02"
CHURN = ["--usecase", str(CHURN_DIR)]


def isolated_env() -> dict[str, str]:
    """The environment of a cluster-like run: no project source on PYTHONPATH, no overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "SCORING_"))}
    jars_dir = make_config(Path("/unused")).spark.jars_dir
    assert jars_dir is not None
    env.update(
        SCORING_JARS_DIR=jars_dir,
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
    )
    return env


def spark_submit(dist: Path, job: str, args: Sequence[str], cwd: Path) -> str:
    """Run `spark-submit --py-files scoring.zip jobs/<job>.py ARGS` on local[2]; return stdout."""
    env = isolated_env()
    jars = ",".join(str(p) for p in delta_jars(env["SCORING_JARS_DIR"]))
    command = [
        str(Path(pyspark.__file__).parent / "bin" / "spark-submit"),
        "--master",
        "local[2]",
        "--jars",
        jars,
        "--conf",
        "spark.ui.enabled=false",
        "--py-files",
        str(dist / "scoring.zip"),
        str(dist / "jobs" / f"{job}.py"),
        *args,
    ]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{job} failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    return result.stdout


def test_zip_holds_the_engine_with_its_conf_and_schemas_and_no_use_case(dist):
    names = set(zipfile.ZipFile(dist / "scoring.zip").namelist())
    assert "scoring/__init__.py" in names
    assert "scoring/core/resources.py" in names
    assert "scoring/_resources/conf/base.yaml" in names
    assert "scoring/_resources/conf/emr.yaml" in names
    assert "scoring/_resources/schemas/scores.yaml" in names
    assert "scoring/_resources/schemas/score_outputs/binary.yaml" in names
    assert not any(n.startswith(("tests/", "jobs/", "conf/", "examples/")) for n in names)
    assert not any("churn" in n for n in names)


def test_config_and_contracts_load_from_inside_the_zip(dist, tmp_path):
    script = (
        "import scoring\n"
        "from scoring.core.config import load_config\n"
        "from scoring.core.contracts import load_contract\n"
        "print(scoring.__file__)\n"
        "print(load_config('local').sources[0])\n"
        "print(load_contract('scores').name)\n"
        "print(load_contract('score_outputs/binary').path)\n"
    )
    module, base_yaml, contract, nested = run_from_zip(dist, tmp_path, script)
    assert module == f"{dist / 'scoring.zip'}/scoring/__init__.py"
    assert Path(base_yaml).name == "base.yaml" and "scoring-conf-" in base_yaml
    assert contract == "scores"
    assert nested.endswith("/score_outputs/binary.yaml") and "scoring-schemas-" in nested


def test_the_report_template_renders_from_inside_the_zip(dist, tmp_path):
    script = (
        "from datetime import date\n"
        "from scoring.monitor.report_page import ReportData, render_report\n"
        "import scoring.monitor.report_page as page\n"
        "print(page.__file__)\n"
        "data = ReportData(usecase='u', run_date=date(2026, 3, 2), model_name='m',\n"
        "    model_version='1', drift=[], output='score', output_range=(0.0, 1.0),\n"
        "    output_current=[0] * 20, output_baseline=None, quarantine=None, runs=[])\n"
        "html = render_report(data)\n"
        "print('Scoring monitor: u, m v1 on 2026-03-02' in html, 'id=\"verdict\"' in html)\n"
    )
    module, found = run_from_zip(dist, tmp_path, script)
    assert module == f"{dist / 'scoring.zip'}/scoring/monitor/report_page.py"
    assert found == "True True"


def test_every_module_of_the_package_imports_from_the_zip(dist, tmp_path):
    # zipimport finds no namespace package (a folder without __init__.py) in a wheel-made zip.
    script = (
        "import importlib, os, zipfile\n"
        "archive = os.environ['PYTHONPATH']\n"
        "names = [n for n in zipfile.ZipFile(archive).namelist() if n.endswith('.py')]\n"
        "for name in names:\n"
        "    module = importlib.import_module(name[:-3].replace('/', '.').removesuffix('.__init__'))\n"
        "    assert str(module.__file__).startswith(archive), module.__file__\n"
        "print(len(names))\n"
    )
    (count,) = run_from_zip(dist, tmp_path, script)
    assert int(count) > 40


def test_a_job_from_the_zip_without_a_use_case_stops_with_the_fix(dist, tmp_path):
    script = "import sys\nfrom scoring.cli import main\nmain(['doctor'])\n"
    env = {**isolated_env(), "PYTHONPATH": str(dist / "scoring.zip")}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 2, out.stderr
    assert "no use case given: pass --usecase DIR or set SCORING_USECASE" in out.stderr


def test_use_case_archive_holds_the_example_folder_at_its_root(dist, tmp_path):
    archive = dist / USECASES_DIR / "churn.zip"
    names = set(zipfile.ZipFile(archive).namelist())
    assert {"usecase.yaml", "features.py", "train.py", "contracts/features.yaml"} <= names
    assert "generator/cli.py" in names  # the sample data's package, with its sub-modules
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    files = [p for p in CHURN_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert names == {p.relative_to(CHURN_DIR).as_posix() for p in files}
    zipfile.ZipFile(archive).extractall(tmp_path / "usecase")
    usecase = load_usecase(tmp_path / "usecase")
    assert (usecase.name, usecase.entity) == ("churn", ("customer_id",))


@pytest.mark.slow
def test_doctor_passes_under_spark_submit_from_the_built_zip_and_use_case_archive(dist, tmp_path):
    zipfile.ZipFile(dist / USECASES_DIR / "churn.zip").extractall(tmp_path / "usecase")
    args = ["--usecase", "./usecase", "--env", "local", "--set", f"storage.root={tmp_path}/lake"]
    out = spark_submit(dist, "doctor", args, tmp_path)
    zipped = re.escape(f"{dist / 'scoring.zip'}/scoring")
    assert re.search(rf"^scoring\s+0\.1\.0 \({zipped}\)$", out, re.M)
    assert "/scoring-conf-" in out.split("config files", 1)[1].splitlines()[0]
    assert re.search(rf"^use case\s+churn \({re.escape(str(tmp_path / 'usecase'))}\)$", out, re.M)
    assert "[ok] delta write/read/time travel" in out
    assert "[ok] feature code: " in out
    assert "doctor: all checks passed" in out


@pytest.fixture(scope="module")
def pipeline_lakehouse(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo drops for two days, then `jobs/pipeline.py` over both days, from the zip."""
    require_command("pipeline")
    from scoring.cli import run

    work = tmp_path_factory.mktemp("pipeline")
    root = work / "lake"
    common = [*CHURN, "--env", "local", "--set", f"storage.root={root}"]
    assert (
        run(
            [
                "generate-demo-data",
                *common,
                "--customers",
                "200",
                "--days",
                "2",
                "--start",
                "2026-03-01",
                "--seed",
                "3",
                "--history-days",
                "60",
            ]
        )
        == 0
    )
    spark_submit(
        dist,
        "pipeline",
        [*common, "--run-date", "2026-03-01", "--days", "2", "--train-if-missing"],
        work,
    )
    return root


def scores_path(root: Path, usecase: UseCase) -> str:
    """Where the jobs wrote the use case's scores: `<root>/<usecase>/scores`."""
    path = usecase_tables(make_config(root), usecase)["scores"].path
    assert path == f"{root}/{usecase.name}/scores"
    return path


def scores_of_run_date(spark, root: Path, usecase: UseCase):
    return (
        spark.read.format("delta")
        .load(scores_path(root, usecase))
        .where(F.col("as_of_date") == F.lit(date.fromisoformat(RUN_DATE)))
    )


def versions_of_run_date(spark, root: Path, usecase: UseCase) -> dict[str, int]:
    """Rows of the run date per model version."""
    rows = scores_of_run_date(spark, root, usecase).groupBy("model_version").count().collect()
    return {r["model_version"]: r["count"] for r in rows}


def last_code_version(spark, root: Path, usecase: UseCase) -> str:
    import json

    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, scores_path(root, usecase)).history(1).first()
    assert row is not None and row["userMetadata"]
    return str(json.loads(row["userMetadata"])["code_version"])


@pytest.mark.slow
def test_pipeline_job_from_the_zip_writes_scores_for_the_run_date(spark, churn, pipeline_lakehouse):
    scores = scores_of_run_date(spark, pipeline_lakehouse, churn)
    assert scores.count() > 0
    assert scores.select("customer_id").distinct().count() == scores.count()
    assert scores.where((F.col("score") < 0) | (F.col("score") > 1)).count() == 0
    # No git commit in the version: the code that wrote it came from the zip, not the checkout.
    assert last_code_version(spark, pipeline_lakehouse, churn) == "0.1.0"


@pytest.mark.slow
def test_score_job_from_the_zip_rescores_the_date_in_place(spark, churn, dist, pipeline_lakehouse):
    require_command("score")
    before = versions_of_run_date(spark, pipeline_lakehouse, churn)
    args = [
        *CHURN,
        "--env",
        "local",
        "--set",
        f"storage.root={pipeline_lakehouse}",
        "--run-date",
        RUN_DATE,
    ]
    spark_submit(dist, "score", args, pipeline_lakehouse.parent)
    # Each version's slice replaced in place. The demo retrains on a drift alert: when the
    # pipeline's second date alerted by chance, the rerun also shadow-scores the challenger.
    after = versions_of_run_date(spark, pipeline_lakehouse, churn)
    assert {v: after[v] for v in before} == before
    assert set(after) - set(before) <= {"2"}
    assert last_code_version(spark, pipeline_lakehouse, churn) == "0.1.0"


@pytest.mark.slow
def test_spark_submit_from_the_clone_needs_no_jars_flag(tmp_path):
    """After `make setup`, the local Spark's spark-defaults.conf brings Delta and our Python."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "SCORING_"))}
    command = [
        str(Path(pyspark.__file__).parent / "bin" / "spark-submit"),
        str(ROOT / "jobs" / "doctor.py"),
        *("--env", "local", "--set", f"storage.root={tmp_path}/lake"),
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "[ok] delta write/read/time travel" in result.stdout


def run_from_zip(dist: Path, folder: Path, script: str) -> list[str]:
    """The lines `script` prints, run by this Python with only scoring.zip on its path."""
    env = {**isolated_env(), "PYTHONPATH": str(dist / "scoring.zip")}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=folder, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()
