"""`scoring replay`: a past score run scored again from its pinned features and model
version, compared bit for bit with the rows it wrote; exit 0 / 1 / 2.

The Spark-heavy tests share one lakehouse (`history`) and run in file order: the first
replays after later writes, the second tampers with the run's rows, the third replaces its
slice by a new run, the last vacuums the features table.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from scoring import cli
from scoring.core import io
from scoring.core.config import Config
from scoring.core.session import temporary_conf
from scoring.core.tables import TableRef
from scoring.runs import steps
from scoring.score.replay import ScoreRun, Selector, code_warnings, compare, find_run
from scoring.usecase import UseCase
from scoring.usecase.fingerprint import code_fingerprint
from tests.conftest import CHURN_DIR, churn_tables, make_config
from tests.model_fixtures import RUN_DATE, feature_row, features_frame, write_features

NEXT_DAY = RUN_DATE + timedelta(days=1)
CUSTOMERS = 12
HEAD = "replay of score-a (2026-03-01, models:/scoring_churn/1, features v1)"


class History(NamedTuple):
    """A lakehouse where score run `score-a` of RUN_DATE was followed by later writes."""

    root: Path
    config: Config
    usecase: UseCase

    @property
    def scratch(self) -> TableRef:
        """Where a replay of score-a writes by default: next to `scores`."""
        return TableRef("replay", path=str(self.root / "churn" / "replay_score_a"))


def _score(spark, history: History, day: date, run_id: str) -> None:
    steps.score(steps.StepRun(spark, history.config, history.usecase, day), None, run_id)


def _scores(spark, history: History, day: date) -> list[float]:
    frame = io.read_table(spark, churn_tables(history.config)["scores"])
    return sorted(r.score for r in frame.where(F.col("as_of_date") == day).collect())


@pytest.fixture(scope="module")
def history(spark, trained, churn, tmp_path_factory) -> History:
    """The champion scores RUN_DATE (`score-a`, features v1); then the features of RUN_DATE
    are rebuilt with other inputs (v2), the next day's are added (v3) and scored
    (`score-b`, merged into scores_current)."""
    root = tmp_path_factory.mktemp("replay") / "lake"
    config = make_config(
        root,
        f"mlflow.tracking_uri={trained.tracking_uri}",
        f"mlflow.artifact_root={trained.artifact_root}",
    )
    found = History(root, config, churn)
    assert write_features(spark, config, [feature_row(c, RUN_DATE) for c in range(CUSTOMERS)]) == 1
    _score(spark, found, RUN_DATE, "score-a")
    changed = [feature_row(c, RUN_DATE, txn_count_30d=0, tenure_days=5) for c in range(CUSTOMERS)]
    io.write_delta(
        features_frame(spark, changed),
        churn_tables(config)["features"],
        "overwrite",
        {"run_id": "features-rebuilt"},
        replace_where="as_of_date = '2026-03-01'",
    )
    write_features(spark, config, [feature_row(c, NEXT_DAY) for c in range(CUSTOMERS)])
    _score(spark, found, NEXT_DAY, "score-b")
    return found


def replay(capsys, history: History, *args: str) -> tuple[int, list[str], list[str]]:
    """`scoring replay` on the history's lakehouse: exit code, stdout and stderr lines."""
    code = cli.run(
        ["replay", "--usecase", str(CHURN_DIR), "--set", f"storage.root={history.root}",
         "--set", "spark.shuffle_partitions=2",
         "--set", f"mlflow.tracking_uri={history.config.tracking_uri}",
         "--set", f"mlflow.artifact_root={history.config.artifact_root}", *args]
    )  # fmt: skip
    out = capsys.readouterr()
    return code, out.out.strip().splitlines(), out.err.strip().splitlines()


@pytest.mark.slow
def test_a_replay_after_later_writes_is_identical_and_exits_0(spark, history, capsys):
    tables = churn_tables(history.config)
    current = io.read_table(spark, tables["scores_current"])
    assert current.where(F.col("as_of_date") == NEXT_DAY).count() == CUSTOMERS  # merged since
    recorded = _scores(spark, history, RUN_DATE)

    code, out, _ = replay(capsys, history, "--run-id", "score-a")

    assert code == 0
    assert out == [f"{HEAD}: identical: all {CUSTOMERS} rows bit for bit; replay in "
                   f"{history.root}/churn/replay_score_a v1"]  # fmt: skip
    scratch = io.read_table(spark, history.scratch)
    assert sorted(r.score for r in scratch.collect()) == recorded
    # The replay read the features as score-a did (v1), not as rebuilt since (v2).
    assert {r.feature_table_version for r in scratch.collect()} == {1}
    assert {r.model_version for r in scratch.collect()} == {"1"}


@pytest.mark.slow
def test_a_score_changed_by_one_ulp_is_one_different_row_and_exits_1(spark, history, capsys):
    scores = churn_tables(history.config)["scores"]
    of_run = (F.col("run_id") == "score-a") & (F.col("customer_id") == "C004")
    (old,) = [r.score for r in io.read_table(spark, scores).where(of_run).collect()]
    tampered = math.nextafter(old, math.inf)
    io.delta_table(spark, scores).update(of_run, {"score": F.lit(tampered)})

    code, out, _ = replay(capsys, history, "--run-id", "score-a")

    assert code == 1
    assert out == [
        f"{HEAD}: NOT identical: {CUSTOMERS - 1} rows identical, 1 different, "
        f"0 only in {scores}, 0 only in the replay; largest absolute difference: "
        f"score {tampered - old!r} (1 rows), label 0.0 (0 rows); "
        f"replay in {history.root}/churn/replay_score_a v2"
    ]


@pytest.mark.slow
def test_a_replaced_slice_is_compared_as_the_run_committed_it(spark, history, capsys):
    recorded = _scores(spark, history, RUN_DATE)  # with the tampered score
    _score(spark, history, RUN_DATE, "score-c")  # same date and model version: replaces it
    assert _scores(spark, history, RUN_DATE) != recorded  # scored from the rebuilt features

    code, out, _ = replay(capsys, history, "--run-id", "score-a")

    assert code == 0
    assert out[0].startswith(f"{HEAD}: identical: all {CUSTOMERS} rows bit for bit")
    tables = churn_tables(history.config)
    assert find_run(spark, tables, Selector(run_date=RUN_DATE)).run_id == "score-c"
    champion = Selector(run_date=RUN_DATE, model_uri="models:/scoring_churn@champion")
    assert find_run(spark, tables, champion).run_id == "score-c"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--run-id", "score-zz"),
            "run id 'score-zz' is unknown: {runs} has no run of that id",
        ),
        (
            ("--run-id", "score-b", "--run-date", "2026-03-01"),
            "run 'score-b' scored 2026-03-02, not --run-date 2026-03-01",
        ),
        (
            ("--run-date", "2026-03-02", "--model", "models:/scoring_churn/7"),
            "{runs}: no succeeded score run of 2026-03-02 used models:/scoring_churn/7 "
            "(score runs of that date: score-b: models:/scoring_churn/1)",
        ),
        ((), "give --run-id RUN, or --run-date D (and optionally --model URI)"),
        (
            ("--run-id", "score-a", "--into", "not a table"),
            "--into: 'not a table' is neither a path nor a catalog table name",
        ),
    ],
)
def test_a_run_that_cannot_be_replayed_exits_2_naming_it(spark, history, capsys, args, message):
    before = io.current_version(spark, history.scratch)

    code, out, err = replay(capsys, history, *args)

    runs = churn_tables(history.config)["runs"]
    assert (code, out) == (2, [])
    assert err[-1].startswith(f"scoring replay: {message.format(runs=runs)}")
    assert io.current_version(spark, history.scratch) == before


@pytest.mark.slow
def test_a_failed_score_run_or_another_steps_run_exits_2_naming_it(spark, history, capsys):
    runs = churn_tables(history.config)["runs"]
    schema = io.read_table(spark, runs).schema
    started = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    common = {"usecase": "churn", "run_date": RUN_DATE, "started_at": started}
    rows = [
        {**common, "run_id": "score-f", "step": "score", "status": "failed",
         "error": "ModelError: models:/scoring_churn@champion: registry unreachable"},
        {**common, "run_id": "features-x", "step": "features", "status": "succeeded"},
    ]  # fmt: skip
    frame = spark.createDataFrame(
        [tuple(r.get(f.name) for f in schema.fields) for r in rows], schema
    )
    io.write_delta(frame, runs, "append", {"run_id": "test-runs"})

    failed = replay(capsys, history, "--run-id", "score-f")
    other = replay(capsys, history, "--run-id", "features-x")

    assert failed[:2] == other[:2] == (2, [])
    assert failed[2][-1] == (
        "scoring replay: run 'score-f' did not succeed (status failed: ModelError: "
        "models:/scoring_churn@champion: registry unreachable); only a succeeded score run "
        "wrote scores to replay"
    )
    assert other[2][-1] == (
        "scoring replay: run 'features-x' is a features run, not a score run: replay takes a "
        "score run's id"
    )


@pytest.mark.slow
def test_a_vacuumed_features_version_exits_2_naming_it(spark, history, capsys):
    features = churn_tables(history.config)["features"]
    with temporary_conf(spark, {"spark.databricks.delta.retentionDurationCheck.enabled": "false"}):
        DeltaTable.forPath(spark, str(features.path)).vacuum(0.0)

    code, _, err = replay(capsys, history, "--run-id", "score-a")

    assert code == 2
    assert err[-1].startswith(
        f"scoring replay: {features}: version 1 (the features of 2026-03-01 that run score-a "
        "read) is no longer readable: "
    )
    assert "removed by VACUUM" in err[-1] and "delta.deletedFileRetentionDuration" in err[-1]


def test_outputs_are_equal_only_when_their_bits_are(spark):
    schema = "k string, score double, probabilities map<string,double>, label int"
    point3 = 0.1 + 0.2  # 0.30000000000000004: one ulp above 0.3
    recorded = spark.createDataFrame(
        [("same", 0.5, {"a": 0.5}, 1), ("zero", 0.0, {"a": 0.0}, 0),
         ("ulp", 0.3, {"a": 0.3}, 0), ("nulls", None, None, None), ("gone", 1.0, {}, 1)],
        schema,
    )  # fmt: skip
    replayed = spark.createDataFrame(
        [("same", 0.5, {"a": 0.5}, 1), ("zero", -0.0, {"a": 0.0}, 0),
         ("ulp", 0.3, {"a": point3}, 0), ("nulls", None, None, None), ("new", 1.0, {}, 1)],
        schema,
    )  # fmt: skip
    outputs = [f for f in recorded.schema.fields if f.name != "k"]

    found = compare(recorded, replayed, ["k"], outputs)

    assert (found.identical, found.different, found.only_recorded, found.only_replayed) == (
        2, 2, 1, 1,
    )  # fmt: skip
    assert [(c.name, c.rows, c.largest) for c in found.columns] == [
        ("score", 1, 0.0),  # -0.0 vs 0.0: different bits, no numeric difference
        ("probabilities", 1, point3 - 0.3),
        ("label", 0, 0.0),
    ]
    assert not found.same


def test_a_changed_use_case_or_engine_is_warned_about_in_one_line(tmp_path):
    (tmp_path / "features.py").write_text("X = 1\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "features.pyc").write_bytes(b"cache")
    (tmp_path / "data.csv").write_text("a,b\n")
    then = code_fingerprint(tmp_path)
    (tmp_path / "__pycache__" / "features.pyc").write_bytes(b"other cache")
    (tmp_path / "data.csv").write_text("c,d\n")
    assert code_fingerprint(tmp_path) == then  # caches and data are not code
    run = ScoreRun("score-a", RUN_DATE, 3, {"code_version": "1.0", "usecase_code": then})
    assert code_warnings(run, then, "1.0") == []

    (tmp_path / "features.py").write_text("X = 2\n")
    now = code_fingerprint(tmp_path)

    assert now != then and now.startswith("sha256:") and len(now) == len("sha256:") + 16
    assert code_warnings(run, now, "1.1") == [
        f"replay: the code differs from what run score-a recorded (engine 1.1 now, 1.0 then; "
        f"use case code {now} now, {then} then): differences may come from the code"
    ]
