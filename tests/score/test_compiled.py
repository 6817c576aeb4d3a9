"""The compiled path in the score step: the demo's tree pipeline scores compiled once the
parity gate passes, with the same scores as the native model; a compiled artifact the gate
must refuse falls back to the native model, recorded in `runs`; a model the compiled path
does not handle, and `scoring.compiled: off`, score natively; the artifact is kept next to
the model version and found there by a driver with an empty cache."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from scoring.core import io
from scoring.core.config import Config
from scoring.model import compiled
from scoring.model.registry import configure_mlflow, mlflow_target
from scoring.runs.result import StepResult
from scoring.score import gate
from scoring.score.step import ScoreRequest, run_score
from scoring.score.udf import LOAD_LOG_ENV
from scoring.usecase import load_usecase
from tests.conftest import CHURN_DIR, churn_tables, make_config
from tests.model_fixtures import RUN_DATE, register_custom_model

pytestmark = pytest.mark.slow
CHAMPION = "models:/scoring_churn@champion"
CHURN = load_usecase(CHURN_DIR)


def scoring_config(trained: Config, root: Path) -> Config:
    return make_config(
        root,
        f"tables.features={churn_tables(trained)['features'].path}",
        f"mlflow.tracking_uri={trained.tracking_uri}",
        f"mlflow.artifact_root={trained.artifact_root}",
    )


def score(spark, config: Config, run_id: str, mode: str, uri: str = CHAMPION, **spec) -> StepResult:
    model = replace(CHURN.model, **spec)
    request = ScoreRequest(uri, model, "scoring_churn", CHURN.entity, compiled=mode)
    target = mlflow_target(config, "churn")
    return run_score(spark, churn_tables(config), target, request, RUN_DATE, run_id, 16)


def scores(spark, config: Config) -> pd.DataFrame:
    table = io.read_table(spark, churn_tables(config)["scores"])
    frame: pd.DataFrame = table.select("customer_id", "score", "label").toPandas()
    return frame.set_index("customer_id")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty compiled-artifact cache for this test."""
    folder = tmp_path / "compiled-cache"
    monkeypatch.setenv(gate.CACHE_ENV, str(folder))
    return folder


def scored_by(folder: Path) -> list[str]:
    """How the workers scored each batch since the last call, `native` / `compiled` (the
    UDF's load log), and the log emptied."""
    log = folder / "model-loads.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return [line.split()[4] for line in lines if line.startswith("batch ")]


def test_the_demo_pipeline_scores_compiled_with_the_native_models_scores(
    spark, trained, tmp_path, cache, monkeypatch
):
    logs = tmp_path / "loads"
    logs.mkdir()
    monkeypatch.setenv(LOAD_LOG_ENV, str(logs))
    native_config = scoring_config(trained, tmp_path / "native")
    native = score(spark, native_config, "score-native", "off")
    assert set(scored_by(logs)) == {"native"}
    assert native.details["compiled"] == {"champion": "native: scoring.compiled is off"}
    config = scoring_config(trained, tmp_path / "compiled")
    result = score(spark, config, "score-compiled", "auto")
    detail = result.details["compiled"]["champion"]
    assert detail.startswith("compiled (compiled now as "), detail
    assert "max |diff|" in detail
    assert result.warnings == ()
    assert set(scored_by(logs)) == {"compiled"}
    ours, theirs = scores(spark, config), scores(spark, native_config)
    assert len(ours) == len(theirs) == result.rows_out
    assert len(ours) > 0
    joined = ours.join(theirs, rsuffix="_native")
    assert (joined["score"] - joined["score_native"]).abs().max() <= 1e-12
    assert (joined["label"] == joined["label_native"]).all()


def test_the_artifact_is_kept_next_to_the_model_version_and_found_there(
    spark, trained, tmp_path, cache
):
    config = scoring_config(trained, tmp_path / "lake")
    first = score(spark, config, "score-first", "auto")
    key = next(p.name for p in cache.iterdir() if not p.name.startswith("."))
    target = mlflow_target(config, "churn")
    client = configure_mlflow(target)
    run_id = str(client.get_model_version("scoring_churn", "1").run_id)
    stored = [a.path for a in client.list_artifacts(run_id, f"{gate.ARTIFACT_PATH}/{key}")]
    assert f"{gate.ARTIFACT_PATH}/{key}/{compiled.COMPILED_FILE}" in stored
    assert first.details["compiled"]["champion"].startswith("compiled (")
    # Another driver (an empty cache) of a use case that trusts its registry to run code
    # downloads it; one that does not compiles its own (the stored library is code).
    empty_cache(cache)
    second = score(spark, config, "score-second", "auto", allow_pickled_code=True)
    assert second.details["compiled"]["champion"].startswith(f"compiled (artifact {key} of run ")
    empty_cache(cache)
    third = score(spark, config, "score-third", "auto")
    assert third.details["compiled"]["champion"].startswith(f"compiled (compiled now as {key};")


def empty_cache(cache: Path) -> None:
    for path in cache.iterdir():
        path.rename(cache.parent / f"moved-{uuid.uuid4().hex}")


def test_an_artifact_the_parity_gate_refuses_falls_back_to_the_native_model(
    spark, trained, tmp_path, cache
):
    config = scoring_config(trained, tmp_path / "lake")
    score(spark, config, "score-warm", "auto")  # compiles it into the cache
    (folder,) = [p for p in cache.iterdir() if not p.name.startswith(".")]
    manifest = folder / compiled.COMPILED_FILE
    plan = json.loads(manifest.read_text())
    perturb_a_number(plan)
    manifest.write_text(json.dumps(plan))
    gate._SHIPPED.clear()
    result = score(spark, config, "score-refused", "auto")
    detail = result.details["compiled"]["champion"]
    assert detail.startswith("native: the parity gate refused the compiled model"), detail
    assert any("parity gate refused" in w for w in result.warnings)
    native_config = scoring_config(trained, tmp_path / "native")
    score(spark, native_config, "score-native", "off")
    ours, theirs = scores(spark, config), scores(spark, native_config)
    assert ours.loc[theirs.index, "score"].tolist() == theirs["score"].tolist()


def perturb_a_number(plan: dict) -> None:
    """Scale the margins before the sigmoid by 1 + 1e-9: every score moves by more than
    1e-12 (a stale or tampered artifact), nothing else changes."""
    assert plan["post"]["name"] == "sigmoid"
    plan["post"]["alpha"] = float(plan["post"]["alpha"]) * (1 + 1e-9)


def test_a_model_the_compiled_path_does_not_handle_scores_natively(spark, trained, tmp_path, cache):
    config = scoring_config(trained, tmp_path / "lake")
    configure_mlflow(mlflow_target(config, "churn"))
    version = register_custom_model(mlflow_target(config, "churn"), "custom_model")
    uri = f"models:/custom_model/{version}"
    result = score(spark, config, "score-custom", "auto", uri=uri, allow_pickled_code=True)
    detail = result.details["compiled"][uri]
    assert detail.startswith("native: not compilable: "), detail
    assert (result.rows_out or 0) > 0
