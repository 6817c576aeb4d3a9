"""The CLI on broken use cases: one line on stderr naming file and key (after the log's own
line), exit 2 for a use case or configuration error, 1 for a data or model error, and every
table as it was."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from scoring import cli
from scoring.core import io
from scoring.runs.steps import usecase_tables
from scoring.usecase import load_usecase
from tests.conftest import CHURN_DIR, make_config
from tests.usecase.factory import FEATURES_PY, usecase_doc, write_usecase, write_visits

DAY = "2026-03-01"
VISITS = ["v1,s1,2026-03-01T08:00:00Z,10.5", "v2,s2,2026-03-01T09:00:00Z,3"]


def run(capsys, folder: Path, root: Path, *args: str) -> tuple[int, list[str]]:
    code = cli.run([args[0], "--usecase", str(folder), "--set", f"storage.root={root}",
                 "--set", "spark.shuffle_partitions=2", *args[1:]])  # fmt: skip
    return code, capsys.readouterr().err.strip().splitlines()


def test_an_unknown_key_exits_2_with_one_line_naming_file_and_key(tmp_path, capsys):
    folder = write_usecase(tmp_path / "uc", usecase_doc(featurs={}))
    code, err = run(capsys, folder, tmp_path / "lake", "ingest", "--run-date", DAY)
    assert code == 2
    assert err == [
        f"scoring: config error: {folder}/usecase.yaml: featurs: unknown key (known keys: "
        "name, description, entity, sources, features, model, train, sample_data, monitor, "
        "quality, labels, retrain, promotion, scoring)"
    ]


def test_a_missing_contract_file_exits_2_naming_it(tmp_path, capsys):
    folder = write_usecase(tmp_path / "uc", files={"contracts/visits.yaml": None})
    (folder / "contracts" / "visits.yaml").unlink(missing_ok=True)
    code, err = run(capsys, folder, tmp_path / "lake", "doctor")
    assert code == 2 and len(err) == 1
    assert "sources.visits.contract: file not found:" in err[0] and "visits.yaml" in err[0]


def test_a_folder_that_is_no_use_case_exits_2(tmp_path, capsys):
    code, err = run(capsys, tmp_path, tmp_path / "lake", "doctor")
    assert (code, len(err)) == (2, 1)
    assert err[0].endswith("usecase.yaml: no such file (a use case folder holds usecase.yaml)")


def test_a_bad_monitor_override_names_usecase_yaml(tmp_path, capsys):
    folder = write_usecase(tmp_path / "uc", usecase_doc(monitor={"psi_alert": "high"}))
    code, err = run(capsys, folder, tmp_path / "lake", "doctor")
    assert code == 2
    assert err == [
        f"scoring: config error: {folder}/usecase.yaml: monitor.psi_alert: expected a number, "
        "got 'high' (str)"
    ]


def test_a_bad_reasons_override_names_usecase_yaml(tmp_path, capsys):
    doc = usecase_doc(scoring={"reasons": {"top_k": "three"}})
    folder = write_usecase(tmp_path / "uc", doc)
    code, err = run(capsys, folder, tmp_path / "lake", "doctor")
    assert code == 2
    assert err == [
        f"scoring: config error: {folder}/usecase.yaml: scoring.reasons.top_k: expected an "
        "integer, got 'three' (str)"
    ]


def test_a_use_case_without_sample_data_says_so(tmp_path, capsys):
    folder = write_usecase(tmp_path / "uc")
    code, err = run(capsys, folder, tmp_path / "lake", "generate-demo-data")
    assert code == 2
    assert err[-1].endswith("sample_data: use case 'tiny' ships no sample data generator")


def test_demo_data_arguments_go_to_the_use_cases_generator(tmp_path, capsys):
    code, _ = run(capsys, CHURN_DIR, tmp_path / "lake", "generate-demo-data", "--customers",
                  "20", "--days", "1", "--history-days", "3")  # fmt: skip
    assert code == 0
    assert (tmp_path / "lake" / "churn" / "raw" / "customers" / "2026-03-01").is_dir()
    code, err = run(capsys, CHURN_DIR, tmp_path / "lake", "generate-demo-data", "--custmers", "2")
    assert code == 2
    assert err[-1] == (
        "scoring generate-demo-data: config error: generate-demo-data: unrecognized arguments: "
        "--custmers 2"
    )


def test_an_unknown_option_of_a_step_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        run(capsys, CHURN_DIR, tmp_path / "lake", "score", "--run-date", DAY, "--modle", "x")
    assert exit_.value.code == 2


@pytest.mark.slow
def test_a_raising_feature_function_exits_1_in_one_line_and_leaves_every_table(
    spark, tmp_path, capsys
):
    text = FEATURES_PY.replace("    visits = ", '    raise KeyError("visits")\n    visits = ')
    folder = write_usecase(tmp_path / "uc", files={"features.py": text})
    root = tmp_path / "lake"
    write_visits(root / "tiny" / "raw", DAY, VISITS)
    assert run(capsys, folder, root, "ingest", "--run-date", DAY)[0] == 0
    tables = usecase_tables(make_config(root), load_usecase(folder))
    before = {n: io.current_version(spark, tables[n]) for n in tables if n != "runs"}
    code, err = run(capsys, folder, root, "features", "--run-date", DAY)
    assert code == 1
    assert err[-1] == (
        f"scoring features: UseCaseCodeError: {folder}/features.py:build raised KeyError: 'visits'"
    )
    assert {n: io.current_version(spark, tables[n]) for n in tables if n != "runs"} == before
    failed = io.read_table(spark, tables["runs"]).where("status = 'failed'").collect()
    assert [r["step"] for r in failed] == ["features"]


@pytest.mark.slow
def test_a_model_of_another_task_exits_1_in_one_line_before_writing(spark, tmp_path, capsys):
    folder = write_usecase(tmp_path / "uc", usecase_doc(train=None))
    root = tmp_path / "lake"
    write_visits(root / "tiny" / "raw", DAY, VISITS)
    assert run(capsys, folder, root, "ingest", "--run-date", DAY)[0] == 0
    assert run(capsys, folder, root, "features", "--run-date", DAY)[0] == 0
    config = make_config(root)
    frame = pd.DataFrame({"visits": [1.0, 2.0], "spend": [1.0, 3.0], "kind": ["a", "a"]})
    mlflow.set_tracking_uri(config.tracking_uri)
    mlflow.set_registry_uri(config.registry_uri)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            LinearRegression().fit(frame[["visits", "spend"]], [0.5, 1.5]),
            name="model",
            signature=mlflow.models.infer_signature(frame[["visits", "spend"]], [0.5, 1.5]),
            serialization_format="skops",
            registered_model_name="tiny_model",
        )
    client = mlflow.MlflowClient(config.tracking_uri, config.registry_uri)
    client.set_registered_model_alias("tiny_model", "champion", info.registered_model_version)
    code, err = run(capsys, folder, root, "score", "--run-date", DAY)
    assert code == 1
    assert err[-1].startswith("scoring score: ModelError: models:/tiny_model/1: ")
    assert "task binary needs a classifier with predict_proba" in err[-1]
    assert not io.table_exists(spark, usecase_tables(config, load_usecase(folder))["scores"])
