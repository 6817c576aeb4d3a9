"""What the CLI checks at start, before a Spark session, a table or an MLflow store exists:
each bad configuration value is one line naming its key, exit 2, and nothing is created; a
registry that does not exist, is empty or does not answer is one line of its own, exit 1."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from scoring import cli
from tests.usecase.factory import write_usecase

DAY = "2026-03-01"


def run(capsys, folder: Path, root: Path, *args: str) -> tuple[int, list[str]]:
    code = cli.run([args[0], "--usecase", str(folder), "--set", f"storage.root={root}",
                 "--run-date", DAY, *args[1:]])  # fmt: skip
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.fixture
def usecase(tmp_path) -> Path:
    return write_usecase(tmp_path / "uc")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            "mlflow.tracking_uri=htp://mlflow.example.com",
            "--set: mlflow.tracking_uri: unknown scheme 'htp' in 'htp://mlflow.example.com' "
            "(MLflow tracking stores: file, sqlite, postgresql, mysql, mssql, http, https, "
            "databricks",
        ),
        (
            "mlflow.registry_uri=s3://bucket/registry",
            "--set: mlflow.registry_uri: unknown scheme 's3' in 's3://bucket/registry' "
            "(MLflow registry stores: file, sqlite, postgresql, mysql, mssql, http, https, "
            "databricks, databricks-uc, uc",
        ),
        (
            "mlflow.tracking_uri=databricks-uc",
            "--set: mlflow.tracking_uri: unknown scheme 'databricks-uc' in 'databricks-uc'",
        ),
        (
            "mlflow.registry_uri=postgresql:mlflow",
            "--set: mlflow.registry_uri: 'postgresql:mlflow' is not "
            "postgresql://[user[:password]@]host[:port]/database",
        ),
        (
            "mlflow.tracking_uri=http://:5000",
            "--set: mlflow.tracking_uri: 'http://:5000' names no host",
        ),
        (
            "tables.scores=main.ml.scores; DROP TABLE main.ml.runs",
            "tables.scores: 'main.ml.scores; DROP TABLE main.ml.runs' is neither a path nor a "
            "catalog table name",
        ),
        (
            "tables.runs=runs:table",
            "tables.runs: 'runs:table' is neither a path URI",
        ),
        (
            "storage.catalog_schema=main.scoring-{usecase}",
            "storage.catalog_schema: 'main.scoring-tiny' is not a catalog schema",
        ),
        (
            "storage.catalog_schema=main.x.y; --",
            "storage.catalog_schema: 'main.x.y; --' is not a catalog schema",
        ),
    ],
)
def test_a_bad_value_exits_2_in_one_line_naming_its_key_and_creates_nothing(
    tmp_path, capsys, usecase, setting, message
):
    code, err = run(capsys, usecase, tmp_path / "lake", "score", "--set", setting)
    assert (code, len(err)) == (2, 1), err
    assert err[0].startswith("scoring: config error: ") and message in err[0]
    assert not (tmp_path / "lake").exists()


def test_a_sqlite_store_whose_folder_cannot_be_created_exits_2_naming_the_key(
    tmp_path, capsys, usecase
):
    (tmp_path / "blocker").write_text("a file where the folder should be")
    uri = f"sqlite:///{tmp_path}/blocker/mlflow/registry.db"
    code, err = run(capsys, usecase, tmp_path / "lake", "train",
                    "--set", f"mlflow.registry_uri={uri}")  # fmt: skip
    assert (code, err) == (
        2,
        [
            f"scoring: config error: mlflow.registry_uri: {uri}: sqlite file "
            f"{tmp_path}/blocker/mlflow/registry.db cannot be created: {tmp_path}/blocker is a "
            "file, not a folder"
        ],
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "uc"]


def test_the_default_tracking_store_under_an_unusable_root_names_storage_root(tmp_path, capsys):
    folder = write_usecase(tmp_path / "uc")
    (tmp_path / "blocker").write_text("")
    code, err = run(capsys, folder, tmp_path / "blocker" / "lake", "ingest")
    assert code == 2 and len(err) == 1
    assert err[0].startswith(
        "scoring: config error: storage.root (the default mlflow.tracking_uri)"
    )
    assert err[0].endswith(f"cannot be created: {tmp_path}/blocker is a file, not a folder")


@pytest.mark.parametrize("command", ["score", "monitor", "quality", "baseline"])
def test_a_missing_sqlite_registry_is_not_found_and_not_created(tmp_path, capsys, usecase, command):
    registry = tmp_path / "registy" / "mlflow.db"  # mistyped: no such folder
    code, err = run(capsys, usecase, tmp_path / "lake", command,
                    "--set", f"mlflow.registry_uri=sqlite:///{registry}")  # fmt: skip
    assert code == 1
    assert "RegistryNotFoundError: model" in err[-1] and err[-1].startswith(f"scoring {command}: ")
    assert f": registry not found at {registry} (sqlite:///{registry}): no sqlite file" in err[-1]
    assert not (tmp_path / "registy").exists() and not (tmp_path / "lake").exists()


def test_score_on_an_empty_registry_says_it_is_empty(tmp_path, capsys, usecase):
    registry = tmp_path / "registry.db"
    MlflowClient(registry_uri=f"sqlite:///{registry}").search_registered_models()  # creates it
    code, err = run(capsys, usecase, tmp_path / "lake", "score",
                    "--set", f"mlflow.registry_uri=sqlite:///{registry}")  # fmt: skip
    assert (code, err[-1]) == (
        1,
        f"scoring score: ModelNotFoundError: model URI 'models:/tiny_model@champion': registry "
        f"sqlite:///{registry} is empty: no model is registered in it (RESOURCE_DOES_NOT_EXIST)",
    )
    assert not (tmp_path / "lake" / "tiny").exists()  # no table (MLflow made its tracking db)


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("command", ["score", "pipeline"])
def test_an_unreachable_registry_says_so_in_one_line_within_the_bound(
    tmp_path, capsys, usecase, command
):
    uri = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    code, err = run(capsys, usecase, tmp_path / "lake", command,
                    "--set", f"mlflow.tracking_uri={uri}",
                    "--set", "mlflow.request_timeout_seconds=2",
                    "--set", "mlflow.request_max_retries=1")  # fmt: skip
    elapsed = time.monotonic() - started
    assert code == 1
    assert err[-1] == (
        f"scoring {command}: MlflowUnreachableError: registry {uri} cannot be reached: "
        "connection refused (2 attempts of at most 2 s: mlflow.request_timeout_seconds, "
        "mlflow.request_max_retries)"
    )
    assert "Traceback" not in "\n".join(err)
    assert elapsed < 30  # MLflow's defaults took minutes; a loose bound, not a benchmark
    assert not (tmp_path / "lake").exists()


def test_the_pipeline_without_a_model_fails_naming_model_alias_and_the_flag(
    tmp_path, capsys, usecase
):
    code, err = run(capsys, usecase, tmp_path / "lake", "pipeline")
    assert code == 1
    assert err[-1].startswith(
        "scoring pipeline: RegistryNotFoundError: model URI 'models:/tiny_model@champion': "
        f"registry not found at {tmp_path}/lake/mlflow.db "
    )
    assert err[-1].endswith(
        "train a first model with `scoring pipeline --train-if-missing` (on D - 0 days) or "
        "`scoring train --run-date D`, or register a version, point alias 'champion' at it "
        "and record its baseline"
    )
    assert not (tmp_path / "lake").exists()
