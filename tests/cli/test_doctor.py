from __future__ import annotations

import re

import pytest

from scoring.cli.doctor import check_delta_round_trip, run_doctor
from scoring.core.errors import EnvironmentProblem


def test_doctor_passes_and_reports_versions_and_locations(spark, config, capsys):
    code = run_doctor(config, session_factory=lambda: spark)
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"^pyspark\s+4\.0\.\d+$", out, re.M)
    assert re.search(r"^delta-spark\s+4\.0\.\d+$", out, re.M)
    assert re.search(r"^mlflow\s+3\.", out, re.M)
    assert re.search(rf"^table features\s+{re.escape(config.storage.root)}/features$", out, re.M)
    assert "[ok] delta write/read/time travel" in out
    assert "[ok] mlflow" in out
    assert "doctor: all checks passed" in out


def test_delta_round_trip_leaves_no_scratch_table(spark, config, tmp_path):
    check = check_delta_round_trip(spark, config)
    assert check.ok, check.detail
    assert "read 4 rows; v0 matches" in check.detail
    scratch = tmp_path / "lakehouse" / "_doctor"
    assert not scratch.exists() or list(scratch.iterdir()) == []


def test_doctor_fails_with_a_clear_message_when_the_session_cannot_start(config, capsys):
    def broken() -> None:
        raise EnvironmentProblem("/nowhere/delta-spark_2.13-4.0.1.jar: Delta jar missing")

    code = run_doctor(config, session_factory=broken)  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert code == 1
    assert "[FAILED] spark session: EnvironmentProblem: /nowhere/delta-spark" in out
    assert "doctor: 1 check(s) failed: spark session" in out


def test_doctor_fails_when_the_mlflow_store_is_unusable(spark, tmp_path, capsys):
    from tests.conftest import make_config

    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    config = make_config(tmp_path / "lake", f"mlflow.tracking_uri=sqlite:///{blocker}/db.sqlite")
    code = run_doctor(config, session_factory=lambda: spark)
    assert code == 1
    assert "[FAILED] mlflow" in capsys.readouterr().out


@pytest.mark.parametrize("missing", ["delta-spark_2.13-", "delta-storage-"])
def test_missing_delta_jar_is_named_with_the_fix(tmp_path, missing):
    from importlib.metadata import version

    from scoring.core.session import DELTA_JAR_PREFIXES, delta_jars

    for prefix in DELTA_JAR_PREFIXES:
        if prefix != missing:
            (tmp_path / f"{prefix}{version('delta-spark')}.jar").write_text("")
    with pytest.raises(EnvironmentProblem) as err:
        delta_jars(str(tmp_path))
    assert f"{tmp_path}/{missing}{version('delta-spark')}.jar: Delta jar missing" in str(err.value)
    assert "make setup" in str(err.value)
