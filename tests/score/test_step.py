from __future__ import annotations

import json
import os
import re
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import mlflow.sklearn
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient
from pyspark.sql import functions as F

from scoring.core import io
from scoring.core.config import Config
from scoring.core.errors import ModelError
from scoring.core.session import temporary_conf
from scoring.core.tables import Tables
from scoring.model.registry import configure_mlflow, mlflow_target
from scoring.runs.result import StepResult
from scoring.score import udf
from scoring.score.step import (
    BATCH_SIZE_CONF,
    MAX_BYTES_CONF,
    WRITERS_CONF,
    ScoreRequest,
    run_score,
)
from scoring.score.tables import ScoresLayout
from scoring.score.udf import LOAD_LOG_ENV
from scoring.usecase import load_usecase
from scoring.usecase.spec import ModelSpec
from tests.conftest import CHURN_DIR, churn_tables, make_config
from tests.helpers import assert_frames_equal, jvm_log
from tests.model_fixtures import (
    RUN_DATE,
    churn_features_schema,
    feature_row,
    features_frame,
    register_bad_model,
    register_custom_model,
)

pytestmark = pytest.mark.slow
CHAMPION = "models:/scoring_churn@champion"
CHURN = load_usecase(CHURN_DIR)
LAYOUT = ScoresLayout((churn_features_schema()["customer_id"],), "binary")
STRING_COLUMNS = ("customer_id", "model_name", "model_version", "model_run_id", "run_id")


def scoring_config(trained: Config, root, features: str | None = None) -> Config:
    """Tables under `root`, features and MLflow registry of the trained fixture."""
    return make_config(
        root,
        f"tables.features={features or churn_tables(trained)['features'].path}",
        f"mlflow.tracking_uri={trained.tracking_uri}",
        f"mlflow.artifact_root={trained.artifact_root}",
    )


def tables_of(config: Config) -> Tables:
    return churn_tables(config)


def request(
    uri: str, spec: ModelSpec = CHURN.model, current: bool | None = None, write: str = "merge"
) -> ScoreRequest:
    return ScoreRequest(
        uri, spec, "scoring_churn", CHURN.entity, update_current=current, current_write=write
    )


def score(spark, config: Config, uri: str, run_id: str, **options) -> StepResult:
    target = mlflow_target(config, "churn")
    return run_score(spark, tables_of(config), target, request(uri, **options), RUN_DATE, run_id, 4)


class Scored(NamedTuple):
    config: Config
    result: StepResult
    calls: list[tuple[str, str]]
    log: list[str]
    settings: tuple[dict[str, str | None], dict[str, str | None]]  # before, after the run
    writer_log: str  # what Spark's partitioned file writer logged during the run


#: Spark's writer of a partitioned write with concurrent writers (the scores slice's). It logs
#: at INFO when it gives up and sorts the rest of a task's rows.
CONCURRENT_WRITER = (
    "org.apache.spark.sql.execution.datasources.DynamicPartitionDataConcurrentWriter"
)
FALLS_BACK_TO_SORT = "Fall back from concurrent writers to sort-based sequential writer"


# A one-byte cap would make Spark cut an Arrow batch after every row.
TINY_BYTE_CAP = {MAX_BYTES_CONF: "1"}


@pytest.fixture(scope="module")
def scored(spark, trained, tmp_path_factory):
    """The champion scores RUN_DATE once, in batches of 4 rows, logging model loads.

    The session has a one-byte Arrow batch cap, which the scoring write must lift.
    """
    root = tmp_path_factory.mktemp("scored")
    config = scoring_config(trained, root / "lake")
    calls = []
    original = MlflowClient.get_model_version_by_alias

    def counting(self, name, alias):
        calls.append((name, alias))
        return original(self, name, alias)

    keys = (MAX_BYTES_CONF, BATCH_SIZE_CONF, WRITERS_CONF, *LAYOUT.parquet_string_stats_off)
    with pytest.MonkeyPatch.context() as patch, temporary_conf(spark, TINY_BYTE_CAP):
        patch.setenv(LOAD_LOG_ENV, str(root))
        patch.setattr(MlflowClient, "get_model_version_by_alias", counting)
        # Ship afresh: an earlier test of the session may have shipped this registered
        # version, whose workers then never load it again (their cache has it).
        patch.setattr(udf, "_SHIPPED", {})
        before = {key: spark.conf.get(key, None) for key in keys}
        with jvm_log(spark, CONCURRENT_WRITER) as writer_log:
            result = score(spark, config, CHAMPION, "score-1")
        after = {key: spark.conf.get(key, None) for key in keys}
    log = (root / "model-loads.log").read_text().splitlines()
    return Scored(config, result, calls, log, (before, after), writer_log())


def test_alias_is_resolved_once_and_the_version_recorded(spark, scored):
    config, result, calls = scored.config, scored.result, scored.calls
    assert calls == [("scoring_churn", "champion")]
    versions = (
        io.read_table(spark, tables_of(config)["scores"], 1).select("model_version").distinct()
    )
    assert [r.model_version for r in versions.collect()] == ["1"]
    assert result.details["model_uri"] == "models:/scoring_churn/1"


def test_model_is_loaded_once_per_python_worker_not_per_batch(spark, scored):
    log = scored.log
    loads = Counter(line.split()[1] for line in log if line.startswith("load "))
    batches = [line for line in log if line.startswith("batch ")]
    assert set(loads.values()) == {1}
    assert len(loads) <= spark.sparkContext.defaultParallelism
    assert len(batches) >= 10  # 40 rows in batches of at most 4


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12+ re-reads zips lazily itself")
def test_workers_re_read_pyspark_zips_only_when_they_change(scored):
    # PySpark invalidates import caches at every task; Python 3.11 then re-reads every zip
    # on the path (scoring.core.worker). The UDF makes that lazy before its first batch.
    batches = [line.split() for line in scored.log if line.startswith("batch ")]
    assert batches and {line[-1] for line in batches} == {"lazy-zips"}


def test_batches_hold_batch_size_rows_whatever_the_sessions_byte_cap(spark, scored):
    rows = [int(line.split()[2]) for line in scored.log if line.startswith("batch ")]
    assert sum(rows) == 40 and max(rows) == 4
    # Only the last batch of each task may be short; with the cap, every batch would be 1 row.
    assert len([r for r in rows if r < 4]) <= spark.sparkContext.defaultParallelism


def test_the_sessions_settings_are_restored_after_scoring(scored):
    before, after = scored.settings
    assert before[MAX_BYTES_CONF] == "1"
    assert after == before


def test_the_scores_slice_is_written_as_it_comes_not_sorted_by_date_first(scored):
    # Spark's writer sorts a partitioned write's rows by the partition column, in execution
    # memory, unless it may keep a file open per date; past its limit of open files it sorts
    # the rest of the task's rows, and says so. The run's writes never did.
    assert FALLS_BACK_TO_SORT not in scored.writer_log
    assert scored.writer_log == ""


def test_the_writer_log_shows_the_sort_when_one_open_file_is_the_limit(spark, tmp_path):
    # The control of the test above: with the limit at 1 the writer opens its file and then
    # sorts every following row of the task, even of one date (finding 29), and says so.
    rows = spark.range(0, 100, 1, 2).withColumn("as_of_date", F.current_date())
    with temporary_conf(spark, {WRITERS_CONF: "1"}), jvm_log(spark, CONCURRENT_WRITER) as log:
        rows.write.format("delta").partitionBy("as_of_date").save(str(tmp_path / "t"))
    assert log().count(FALLS_BACK_TO_SORT) == 2  # once per task


@pytest.mark.parametrize("table", ["scores", "scores_current"])
def test_parquet_keeps_no_statistics_for_string_columns_but_keeps_them_for_numbers(scored, table):
    files = sorted(Path(str(tables_of(scored.config)[table].path)).rglob("*.parquet"))
    assert files
    for path in files:
        meta = pq.ParquetFile(path).metadata
        assert meta.num_row_groups > 0
        for group in range(meta.num_row_groups):
            columns = meta.row_group(group)
            stats = {
                columns.column(i).path_in_schema: columns.column(i).statistics
                for i in range(columns.num_columns)
            }
            for name in STRING_COLUMNS:
                assert stats[name] is None or not stats[name].has_min_max, (path, name)
            for name in ("score", "label", "feature_table_version"):
                assert stats[name] is not None and stats[name].has_min_max, (path, name)


def test_scores_equal_the_models_own_predict_proba(spark, trained, scored):
    config = scored.config
    configure_mlflow(mlflow_target(config, "churn"))
    model = mlflow.sklearn.load_model("models:/scoring_churn/1")
    rows = pd.DataFrame([feature_row(c, RUN_DATE) for c in range(40)])
    inputs = rows.drop(columns=["customer_id", "as_of_date", "feature_run_id"])
    strings = ["segment", "country"]
    inputs[strings] = inputs[strings].astype(object).where(inputs[strings].notna(), np.nan)
    numbers = [c for c in inputs.columns if c not in strings]
    inputs[numbers] = inputs[numbers].astype("float64")
    assert list(model.classes_) == [0, 1]
    expected = dict(zip(rows["customer_id"], model.predict_proba(inputs)[:, 1], strict=True))
    actual = io.read_table(spark, tables_of(config)["scores"], 1).select("customer_id", "score")
    scores = {r.customer_id: r.score for r in actual.collect()}
    # The default scoring.compiled: auto scores compiled trees, held to the gate's 1e-12.
    assert scores == pytest.approx(expected, rel=0, abs=1e-12)
    assert scored.result.details["compiled"]["champion"].startswith("compiled ")


def test_rows_carry_lineage_and_commits_carry_run_model_and_feature_versions(spark, scored):
    config = scored.config
    row = io.read_table(spark, tables_of(config)["scores"], 1).where("customer_id = 'C001'").first()
    assert row is not None
    assert (row.model_name, row.model_version, row.feature_table_version, row.run_id) == (
        "scoring_churn",
        "1",
        1,
        "score-1",
    )
    assert row.model_run_id and row.scored_at
    for table in ("scores", "scores_current"):
        meta = io.last_commit(spark, tables_of(config)[table])["userMetadata"]
        assert (meta["run_id"], meta["model_uri"], meta["model_version"]) == (
            "score-1",
            CHAMPION,
            "1",
        )
        assert meta["feature_table_version"] == 1 and meta["code_version"]


def test_scores_table_has_change_data_feed_and_no_deletion_vectors(spark, scored):
    config = scored.config
    detail = io.delta_table(spark, tables_of(config)["scores"]).detail().first()
    assert detail is not None
    props = detail.properties
    assert props["delta.enableChangeDataFeed"] == "true"
    assert props["delta.enableDeletionVectors"] == "false"


def _file_statistics(table_path: str) -> list[dict]:
    """The `stats` of every file the table's Delta log ever added."""
    stats = []
    for log_file in sorted(Path(table_path, "_delta_log").glob("*.json")):
        for line in log_file.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                stats.append(json.loads(action["add"]["stats"]))
    return stats


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("scores", {"customer_id", "model_name", "model_version"}),
        ("scores_current", {"customer_id"}),
    ],
)
def test_scored_tables_keep_file_statistics_only_for_their_lookup_columns(
    spark, scored, table, columns
):
    config = scored.config
    stats = _file_statistics(str(tables_of(config)[table].path))
    assert stats
    for file_stats in stats:
        assert set(file_stats["minValues"]) == set(file_stats["maxValues"]) == columns
        assert set(file_stats["nullCount"]) == columns
    assert all(file_stats["numRecords"] > 0 for file_stats in stats)
    detail = io.delta_table(spark, tables_of(config)[table]).detail().first()
    assert detail is not None
    assert set(detail.properties["delta.dataSkippingStatsColumns"].split(",")) == columns


def test_a_run_without_bad_rows_counts_none_and_creates_no_score_errors_table(spark, scored):
    result = scored.result
    assert (result.rows_in, result.rows_out, result.rows_quarantined) == (40, 40, 0)
    assert result.warnings == () and "score_errors" not in result.table_versions
    assert not io.table_exists(spark, tables_of(scored.config)["score_errors"])


def test_scores_current_holds_one_row_per_customer(spark, scored):
    config = scored.config
    current = io.read_table(spark, tables_of(config)["scores_current"])
    assert current.count() == current.select("customer_id").distinct().count() == 40


def test_rerun_of_the_same_date_and_version_replaces_its_slice_with_identical_scores(spark, scored):
    config = scored.config
    score(spark, config, "models:/scoring_churn/1", "score-2")
    scores = tables_of(config)["scores"]
    assert io.read_table(spark, scores).count() == 40
    before = io.read_table(spark, scores, 1).select("customer_id", "score", "label")
    after = io.read_table(spark, scores).select("customer_id", "score", "label")
    assert_frames_equal(after, before)
    assert io.last_commit(spark, scores)["operationMetrics"]["numDeletedRows"] == "40"


def test_with_current_write_overwrite_a_rerun_overwrites_scores_current(spark, scored):
    # The rerun scores every entity again: it covers scores_current (scoring.score.current).
    config = scored.config
    score(spark, config, CHAMPION, "score-3", write="overwrite")
    current = tables_of(config)["scores_current"]
    assert io.last_commit(spark, current)["operation"] == "WRITE"
    rows = io.read_table(spark, current).groupBy("run_id").count().collect()
    assert [(r["run_id"], r["count"]) for r in rows] == [("score-3", 40)]


def test_missing_signature_column_fails_before_scoring_and_writes_nothing(spark, trained, tmp_path):
    config = scoring_config(trained, tmp_path / "lake", str(tmp_path / "features"))
    frame = features_frame(spark, [feature_row(c, RUN_DATE) for c in range(3)])
    io.write_delta(
        frame.drop("tenure_days"), tables_of(config)["features"], "append", {"run_id": "f"}
    )
    with pytest.raises(ModelError, match="column 'tenure_days' required by the model signature"):
        score(spark, config, CHAMPION, "score-x")
    assert not io.table_exists(spark, tables_of(config)["scores"])
    assert not io.table_exists(spark, tables_of(config)["scores_current"])


def test_a_custom_pyfunc_model_scores_with_outputs_chosen_by_name(spark, trained, tmp_path):
    config = scoring_config(trained, tmp_path / "lake")
    version = register_custom_model(mlflow_target(config, "churn"), "custom_churn")
    trusting = replace(CHURN.model, allow_pickled_code=True)  # a custom pyfunc is code
    score(spark, config, f"models:/custom_churn/{version}", "score-c", spec=trusting)
    actual = (
        io.read_table(spark, tables_of(config)["scores"])
        .where("customer_id IN ('C000', 'C001', 'C002')")
        .select("customer_id", "score", "label", "model_name")
    )
    expected = spark.createDataFrame(
        [
            ("C000", 1.0, 1, "custom_churn"),  # no purchases in 30 days
            ("C001", 1 / 3, 0, "custom_churn"),  # 2 purchases
            ("C002", 0.25, 0, "custom_churn"),  # 3 purchases
        ],
        "customer_id string, score double, label int, model_name string",
    )
    assert_frames_equal(actual, expected)
    assert os.environ.get(LOAD_LOG_ENV) is None


def test_a_model_other_than_the_serving_alias_writes_scores_only(spark, trained, tmp_path):
    config = scoring_config(trained, tmp_path / "lake")
    result = score(spark, config, "models:/scoring_churn/1", "score-v")
    assert result.details["scores_current"] is False
    assert io.table_exists(spark, tables_of(config)["scores"])
    assert not io.table_exists(spark, tables_of(config)["scores_current"])
    score(spark, config, "models:/scoring_churn/1", "score-w", current=True)
    assert io.read_table(spark, tables_of(config)["scores_current"]).count() == 40


def test_a_model_that_cannot_serve_the_task_fails_in_one_line_before_anything_is_written(
    spark, trained, tmp_path
):
    config = scoring_config(trained, tmp_path / "lake")
    regression = ModelSpec("scoring_churn", "champion", "regression")
    with pytest.raises(
        ModelError, match=r"^models:/scoring_churn/1: .*cannot serve task regression"
    ):
        score(spark, config, CHAMPION, "score-r", spec=regression)
    assert not io.table_exists(spark, tables_of(config)["scores"])


@pytest.mark.parametrize(
    ("kind", "what_to_do"),
    [
        ("array", r"ModelError: model output is ndarray; for task binary a custom model must "
                  r"return a DataFrame \(a column 'score' or 'probability'\)"),
        ("pickle", r"saved as 'cloudpickle'; loading a pickle runs any code in it: log it with "
                   r"serialization_format='skops', or set model\.allow_pickled_code: true"),
        ("skops_type", r"skops types \['tests\.model_fixtures\.Reviewed'\] are not trusted; "
                       r"review them and list them in usecase\.yaml model\.skops_trusted_types"),
    ],
)  # fmt: skip
def test_a_model_the_engine_cannot_use_fails_on_the_driver_in_one_line_before_scoring(
    spark, trained, tmp_path, kind, what_to_do
):
    config = scoring_config(trained, tmp_path / "lake")
    name = f"bad_{kind}"
    version = register_bad_model(mlflow_target(config, "churn"), name, kind)
    spec = replace(CHURN.model, allow_pickled_code=kind == "array")
    with pytest.raises(ModelError) as error:
        score(spark, config, f"models:/{name}/{version}", f"score-{kind}", spec=spec)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"models:/{name}/{version}: ")
    assert re.search(what_to_do, message), message
    assert not io.table_exists(spark, tables_of(config)["scores"])
