"""Shared fixtures: one Spark session with Delta for the whole run; a config per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from scoring.config import Config, load_config
from scoring.session import session_for


def make_config(root: Path, *overrides: str) -> Config:
    """The local configuration with every table under `root` (a test's own folder)."""
    return load_config("local", [f"storage.root={root}", "spark.shuffle_partitions=2", *overrides])


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    """One local session for every test: 2 cores, 2 shuffle partitions, Delta, UTC."""
    session = session_for(make_config(tmp_path_factory.mktemp("session")))
    yield session
    session.stop()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """A local configuration whose tables and registry live in this test's folder."""
    return make_config(tmp_path / "lakehouse")
