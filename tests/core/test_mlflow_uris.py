"""MLflow URIs checked before use: schemes MLflow accepts per role, their form, local stores."""

from __future__ import annotations

import pytest

from scoring.core.errors import ConfigError
from scoring.core.mlflow_uris import check_local_store, check_uri, local_store, redact, scheme_of


@pytest.mark.parametrize(
    ("uri", "scheme"),
    [
        ("/srv/mlruns", ""),
        ("mlruns", ""),
        ("file:///srv/mlruns", "file"),
        ("sqlite:///mlflow.db", "sqlite"),
        ("postgresql+psycopg2://u@db:5432/mlflow", "postgresql"),
        ("mysql+pymysql://u@db/mlflow", "mysql"),
        ("HTTPS://mlflow.example.com", "https"),
        ("databricks", "databricks"),
        ("databricks://profile", "databricks"),
        ("databricks-uc", "databricks-uc"),
        ("uc:http://localhost:8080", "uc"),
    ],
)
def test_the_scheme_is_the_one_mlflow_picks_its_store_by(uri, scheme):
    assert scheme_of(uri) == scheme


@pytest.mark.parametrize(
    "uri",
    [
        "/srv/mlruns",
        "file:///srv/mlruns",
        "sqlite:////srv/mlflow.db",
        "sqlite:///relative.db",
        "postgresql://u:p@db:5432/mlflow",
        "mssql+pyodbc://u@db/mlflow",
        "http://127.0.0.1:5000",
        "https://mlflow.example.com/prefix",
        "databricks",
    ],
)
def test_uris_mlflow_takes_for_tracking_pass(uri):
    check_uri(uri, "mlflow.tracking_uri", "tracking", "conf/x.yaml")


def test_unity_catalog_is_a_registry_only_scheme():
    check_uri("databricks-uc", "mlflow.registry_uri", "registry", "conf/x.yaml")
    check_uri("uc:http://localhost:8080", "mlflow.registry_uri", "registry", "conf/x.yaml")
    with pytest.raises(ConfigError, match=r"goes in mlflow.registry_uri$"):
        check_uri("databricks-uc", "mlflow.tracking_uri", "tracking", "conf/x.yaml")


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("mlflw://host", "unknown scheme 'mlflw'"),
        ("s3://bucket/mlruns", "unknown scheme 's3'"),
        ("sqlite://mlflow.db", "is not sqlite:///relative/file.db"),
        ("sqlite:///:memory:", "is not sqlite:///relative/file.db"),
        ("http://host:port", "is not a URL"),
        ("https:///path", "names no host"),
        ("mysql:mlflow", "is not mysql://"),
        (" http://host", "has blanks around it"),
    ],
)
def test_a_bad_uri_is_one_line_naming_origin_and_key(uri, problem):
    with pytest.raises(ConfigError) as error:
        check_uri(uri, "mlflow.tracking_uri", "tracking", "conf/x.yaml")
    message = str(error.value)
    assert message.startswith("conf/x.yaml: mlflow.tracking_uri: ") and problem in message
    assert "\n" not in message


def test_a_password_never_reaches_a_message():
    assert redact("postgresql://me:s3cret@db/mlflow") == "postgresql://me:***@db/mlflow"
    with pytest.raises(ConfigError) as error:
        check_uri("postgres://me:s3cret@db/mlflow", "mlflow.tracking_uri", "tracking", "--set")
    assert "s3cret" not in str(error.value) and "me:***@db" in str(error.value)


def test_a_local_store_may_be_missing_when_its_folder_can_be_created(tmp_path):
    check_local_store(f"sqlite:///{tmp_path}/new/deeper/mlflow.db", "mlflow.tracking_uri")
    check_local_store(f"file://{tmp_path}/mlruns", "mlflow.registry_uri")
    assert list(tmp_path.iterdir()) == []  # checked, not created
    assert local_store("http://127.0.0.1:5000") is None
    assert local_store(f"sqlite:///{tmp_path}/m.db") == (tmp_path / "m.db", "sqlite file")


def test_a_local_store_in_the_way_of_a_file_is_refused(tmp_path):
    (tmp_path / "mlruns").write_text("")
    with pytest.raises(ConfigError, match=r"mlflow.registry_uri: .*mlruns is not a folder$"):
        check_local_store(f"{tmp_path}/mlruns", "mlflow.registry_uri")
    with pytest.raises(ConfigError, match=r"mlruns is a file, not a folder$"):
        check_local_store(f"sqlite:///{tmp_path}/mlruns/m.db", "mlflow.tracking_uri")
