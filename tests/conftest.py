"""Shared fixtures: one Spark session with Delta for the whole run; a config per test; the
churn demo as a loaded use case; a trained demo model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from scoring.core.config import Config, load_config
from scoring.core.session import session_for
from scoring.core.tables import Tables
from scoring.runs.steps import usecase_tables
from scoring.usecase import UseCase, load_usecase

# pytester runs a test file of its own in a test; summary mends the run's closing lines.
pytest_plugins = ["pytester", "tests.summary"]

ROOT = Path(__file__).resolve().parents[1]
CHURN_DIR = ROOT / "examples" / "churn"


@pytest.fixture(scope="session", autouse=True)
def compiled_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Compiled tree artifacts of this test run in a folder of its own, never in the user's
    cache (`scoring.score.gate`); the test processes and the CLI runs they start share it."""
    from scoring.score.gate import CACHE_ENV

    folder = tmp_path_factory.mktemp("compiled-cache")
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(folder)
    yield folder
    if before is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = before


def make_config(root: Path, *overrides: str) -> Config:
    """The local configuration with every table under `root` (a test's own folder)."""
    return load_config("local", [f"storage.root={root}", "spark.shuffle_partitions=2", *overrides])


def churn_tables(config: Config) -> Tables:
    """The churn demo's tables under `config`'s storage root."""
    return usecase_tables(config, load_usecase(CHURN_DIR))


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    """One local session for every test: 2 cores, 2 shuffle partitions, Delta, UTC."""
    session = session_for(make_config(tmp_path_factory.mktemp("session")))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def churn() -> UseCase:
    """The churn demo, loaded from examples/churn."""
    return load_usecase(CHURN_DIR)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """A local configuration whose tables and registry live in this test's folder."""
    return make_config(tmp_path / "lakehouse")


@pytest.fixture(scope="session")
def trained(
    spark: SparkSession, churn: UseCase, tmp_path_factory: pytest.TempPathFactory
) -> Config:
    """A features table (2026-03-01 and its label date) and the demo model trained on it.

    Shared by the train and score tests: MLflow runs live in a sqlite file of this folder.
    """
    from scoring.model.registry import mlflow_target
    from scoring.train.step import TrainSettings, run_train
    from tests.model_fixtures import RUN_DATE, training_features, write_features

    config = make_config(tmp_path_factory.mktemp("trained"))
    write_features(spark, config, training_features())
    settings = TrainSettings("champion", baseline_max_rows=30, seed=7)
    run_train(
        spark,
        churn_tables(config),
        mlflow_target(config, churn.name),
        churn,
        churn.model.name,
        RUN_DATE,
        "train-1",
        settings,
    )
    return config
