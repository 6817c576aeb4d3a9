"""`scoring replay`: a past score run scored again from its pinned inputs, compared bit for bit.

A score run pins what it reads and records it: every row of its slice of `scores` carries
`run_id`, `model_name`, `model_version`, `model_run_id` and `feature_table_version`; its
`runs` row the `scores` version it committed; that commit's userMetadata the model URI it
was asked for, the engine's `code_version` and the use case's `usecase_code` fingerprint.
A replay finds the run (`--run-id`, or the newest succeeded score run of `--run-date`,
optionally of `--model`), reads the features partition of its date at the recorded
version (Delta time travel), scores it with the recorded model version through the score
step's own `score_features` (no copy of the scoring code), writes the result to a scratch
table (`replay_<run id>` among the use case's tables, or `--into`) and compares it with the
run's rows, output column by output column:

- identical means bit for bit: doubles are compared by their exact hexadecimal text (Java's
  `%a`, every bit of sign, exponent and mantissa), so there is no tolerance and -0.0
  differs from 0.0 (NaN equals NaN); other columns by value (null equals null); a map of
  probabilities by its entries;
- the run's rows are its rows in `scores` now (stamped with its run id), so a row changed
  since is found; when a later run of the same date and model version replaced the slice,
  the rows as the run committed them (time travel to its `scores` version);
- a run that scored shadow models too (champion and challenger in one pass) is replayed for
  its serving model only: the model its commit names first (`model_name`, `model_version`).

Every argument that cannot be replayed (unknown run id, another step's run, a failed run, a
features or `scores` version past the time-travel window, a model version the registry no
longer has) raises `ReplayRefused`, naming what and why, before anything is written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from scoring.core import io
from scoring.core.config import for_usecase, join_path
from scoring.core.errors import ModelError, ModelNotFoundError, ScoringError
from scoring.core.session import temporary_conf
from scoring.core.tables import TableRef, Tables, parse_location
from scoring.model.registry import MlflowTarget, ResolvedModel, parse_model_uri, resolve_model
from scoring.model.tasks import output_fields
from scoring.score.step import (
    BATCH_SIZE_CONF,
    MAX_BYTES_CONF,
    NO_BYTE_LIMIT,
    ScoreRequest,
    commit_metadata,
    score_features,
)
from scoring.score.tables import Lineage, with_lineage
from scoring.score.udf import ERROR, INPUT
from scoring.usecase.spec import AS_OF_DATE

log = logging.getLogger(__name__)
REPLAY_STEP = "replay"
#: Bisect every failing batch down to its bad rows: a replay reproduces rows, not budgets.
_NO_LIMIT = 2**62
_MARK_RECORDED, _MARK_REPLAYED = "__replay_in_recorded", "__replay_in_replayed"


class ReplayRefused(ScoringError):
    """The run cannot be replayed as asked (exit 2): the message names the run and why."""


@dataclass(frozen=True)
class Selector:
    """Which past score run to replay: by id, or the newest of a date (and model)."""

    run_id: str | None = None
    run_date: date | None = None
    model_uri: str | None = None


@dataclass(frozen=True)
class ScoreRun:
    """A succeeded score run as `runs` and its `scores` commit recorded it."""

    run_id: str
    run_date: date
    scores_version: int | None
    metadata: Mapping[str, Any] | None  # its scores commit's userMetadata, when still in the log


@dataclass(frozen=True)
class RecordedSlice:
    """The rows a score run wrote, and the pinned inputs they carry."""

    rows: DataFrame
    model_name: str
    model_version: str
    model_run_id: str | None
    feature_table_version: int
    source: str  # where the rows were read, for people

    @property
    def pinned_uri(self) -> str:
        """The exact model version the run scored with."""
        return f"models:/{self.model_name}/{self.model_version}"


@dataclass(frozen=True)
class ColumnDifference:
    """One output column: rows whose value differs, and the largest absolute difference
    (None for a column that is not numeric, or when no row was on both sides)."""

    name: str
    rows: int
    largest: float | None


@dataclass(frozen=True)
class Comparison:
    """Recorded rows vs replayed rows, matched on the entity key and `as_of_date`."""

    identical: int
    different: int
    only_recorded: int
    only_replayed: int
    columns: tuple[ColumnDifference, ...]

    @property
    def same(self) -> bool:
        """Every row on both sides, every output bit for bit equal."""
        return self.different == self.only_recorded == self.only_replayed == 0


@dataclass(frozen=True)
class ReplayResult:
    """What a replay did and found."""

    run: ScoreRun
    recorded: RecordedSlice
    into: TableRef
    into_version: int
    comparison: Comparison
    warnings: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line for people: identical or not, counts, largest difference per column."""
        c, r = self.comparison, self.recorded
        head = (
            f"replay of {self.run.run_id} ({self.run.run_date}, {r.pinned_uri}, "
            f"features v{r.feature_table_version})"
        )
        where = f"replay in {self.into} v{self.into_version}"
        if c.same:
            return f"{head}: identical: all {c.identical} rows bit for bit; {where}"
        largest = ", ".join(
            f"{d.name} {'-' if d.largest is None else repr(d.largest)} ({d.rows} rows)"
            for d in c.columns
        )
        return (
            f"{head}: NOT identical: {c.identical} rows identical, {c.different} different, "
            f"{c.only_recorded} only in {r.source}, {c.only_replayed} only in the replay; "
            f"largest absolute difference: {largest}; {where}"
        )


def run_replay(
    spark: SparkSession,
    tables: Tables,
    target: MlflowTarget,
    request: ScoreRequest,
    selector: Selector,
    batch_size: int,
    replay_id: str,
    into: TableRef | None = None,
    code_version: str | None = None,
) -> ReplayResult:
    """Replay the selected score run into a scratch table and compare (module docstring).

    Args:
        request: the use case's score request (`scoring.runs.steps.score_request`); its
            model URI is replaced by the run's pinned version.
        replay_id: this replay's own run id, stamped on the scratch rows.
        into: the scratch table (default: `replay_<run id>` next to the use case's tables).
        code_version: the engine's code version now (default `io.code_version()`).

    Raises:
        ReplayRefused: the run cannot be replayed (nothing is written).
        ModelError: the registry could not be asked, or the model fails its checks.
    """
    run = find_run(spark, tables, selector)
    recorded = recorded_slice(spark, tables["scores"], run)
    if selector.model_uri and not _uses_model(selector.model_uri, recorded, run.metadata):
        raise ReplayRefused(
            f"run '{run.run_id}' scored with {recorded.pinned_uri}, not {selector.model_uri}"
        )
    model = _pinned_model(target, recorded, run.run_id)
    features_ref = tables["features"]
    features = pinned_partition(
        spark,
        features_ref,
        recorded.feature_table_version,
        F.col(request.as_of_column) == F.lit(run.run_date),
        f"the features of {run.run_date} that run {run.run_id} read",
    )
    warnings = code_warnings(run, request.usecase_code, code_version or io.code_version())
    for line in warnings:
        log.warning("%s", line)
    request = replace(request, model_uri=model.pinned_uri, update_current=False)
    scoring = score_features(
        spark, target, request, model, features, features_ref, error_limit=_NO_LIMIT
    )
    # Rows the model cannot score are left out, as the run left them out of `scores` (they
    # went to score_errors): one the run scored and the replay cannot shows as a difference.
    scored = scoring.scored.where(F.col(ERROR).isNull()).drop(ERROR, INPUT)
    layout = scoring.layout
    lineage = Lineage(
        model.name,
        model.version,
        model.run_id,
        recorded.feature_table_version,
        replay_id,
        datetime.now(UTC),
        request.usecase_code,
    )
    into = into or scratch_table(tables, run.run_id)
    _check_scratch(spark, into, tables, layout.schema)
    metadata = {
        **commit_metadata(model, lineage, features_ref, run.run_date, tables.usecase),
        "step": REPLAY_STEP,
        "replay_of": run.run_id,
    }
    description = f"Replay of score run {run.run_id} (scoring replay): scratch, may be dropped."
    io.ensure_table(spark, into, io.TableSpec(layout.schema, (), {}, description, layout.comments))
    batches = {BATCH_SIZE_CONF: str(batch_size), MAX_BYTES_CONF: NO_BYTE_LIMIT}
    with temporary_conf(spark, {**batches, **layout.parquet_string_stats_off}):
        io.write_delta(with_lineage(scored, lineage, layout), into, "overwrite", metadata)
    version = int(io.require_own_commit(spark, into, replay_id)["version"])
    replayed = io.read_table(spark, into, version)
    comparison = compare(
        recorded.rows, replayed, (*layout.keys, AS_OF_DATE), output_fields(layout.task)
    )
    result = ReplayResult(run, recorded, into, version, comparison, tuple(warnings))
    log.info("%s", result.summary())
    return result


def find_run(spark: SparkSession, tables: Tables, selector: Selector) -> ScoreRun:
    """The succeeded score run `selector` names, from the `runs` table.

    Raises:
        ReplayRefused: no such run, not a score run, not succeeded, or none of that date
            (and model).
    """
    runs = tables["runs"]
    if not io.table_exists(spark, runs):
        raise ReplayRefused(f"{runs}: no runs table: this use case has no run to replay yet")
    history = io.read_table(spark, runs)
    if selector.run_id is not None:
        return _run_by_id(spark, tables, history, selector)
    if selector.run_date is None:
        raise ReplayRefused("give --run-id RUN, or --run-date D (and optionally --model URI)")
    # A few rows (the score runs of one date): collected at the job's start.
    rows = (
        history.where(
            (F.col("step") == "score")
            & (F.col("status") == "succeeded")
            & (F.col("run_date") == F.lit(selector.run_date))
        )
        .orderBy(F.col("started_at").desc(), F.col("run_id").desc())
        .collect()
    )
    if not rows:
        raise ReplayRefused(f"{runs}: no succeeded score run of {selector.run_date}")
    metadata = _commit_metadata(spark, tables["scores"], rows)
    candidates = [_score_run(row, metadata) for row in rows]
    if selector.model_uri is None:
        return candidates[0]
    models = _models_of(spark, tables["scores"], candidates)
    for candidate in candidates:
        found = models.get(candidate.run_id)
        if found is not None and _matches(selector.model_uri, *found, candidate.metadata):
            return candidate
    seen = ", ".join(
        f"{c.run_id}: models:/{models[c.run_id][0]}/{models[c.run_id][1]}"
        if c.run_id in models
        else f"{c.run_id}: model unknown"
        for c in candidates
    )
    raise ReplayRefused(
        f"{runs}: no succeeded score run of {selector.run_date} used {selector.model_uri} "
        f"(score runs of that date: {seen})"
    )


def recorded_slice(spark: SparkSession, scores: TableRef, run: ScoreRun) -> RecordedSlice:
    """The run's rows: in `scores` now, or (its slice replaced since) as it committed them.

    Raises:
        ReplayRefused: the rows are gone and the version the run committed is no longer
            readable, or they carry more than one model or features version.
    """
    if not io.table_exists(spark, scores):
        raise ReplayRefused(f"{scores}: no scores table: run '{run.run_id}' wrote nothing here")
    of_run = (F.col(AS_OF_DATE) == F.lit(run.run_date)) & (F.col("run_id") == F.lit(run.run_id))
    meta = run.metadata or {}
    if meta.get("model_name") and meta.get("model_version"):
        # A run with shadows wrote one slice per model; its commit names the serving one first.
        of_run = (
            of_run
            & (F.col("model_name") == F.lit(str(meta["model_name"])))
            & (F.col("model_version") == F.lit(str(meta["model_version"])))
        )
    rows = io.read_table(spark, scores).where(of_run)
    lineage = _lineage(rows)
    source = str(scores)
    if not lineage:
        if run.scores_version is None:
            raise ReplayRefused(
                f"{scores}: holds no rows of run '{run.run_id}', and its runs row records no "
                "scores version to read them back at"
            )
        replaced_by = _replacing_runs(spark, scores, run)
        rows = pinned_partition(
            spark,
            scores,
            run.scores_version,
            of_run,
            f"the rows of run {run.run_id} (its slice was replaced since by {replaced_by})",
        )
        lineage = _lineage(rows)
        if not lineage:
            raise ReplayRefused(
                f"{scores}: version {run.scores_version} holds no rows of run '{run.run_id}'"
            )
        source = f"{scores} v{run.scores_version}"
    if len(lineage) > 1:
        raise ReplayRefused(
            f"{source}: the rows of run '{run.run_id}' carry {len(lineage)} different model or "
            "features versions; a score run writes one"
        )
    (name, version, model_run_id, feature_version) = lineage[0]
    return RecordedSlice(rows, name, version, model_run_id, int(feature_version), source)


def pinned_partition(
    spark: SparkSession, ref: TableRef, version: int, where: Column, what: str
) -> DataFrame:
    """The rows `where` of `ref` at `version`, once it is known that every file is still there.

    Raises:
        ReplayRefused: the version is no longer in the table's log (log retention), or some
            of its files were removed (VACUUM), or it holds no such rows.
    """
    try:
        frame = io.read_table(spark, ref, version).where(where)
        files = frame.inputFiles()  # from the Delta log, pruned to the partition: no data read
    except (PySparkException, Py4JJavaError) as exc:
        raise ReplayRefused(
            f"{ref}: version {version} ({what}) is no longer available: {_first_line(exc)} "
            "(a replay needs the table's delta.logRetentionDuration to cover it)"
        ) from exc
    missing = missing_files(spark, files)
    if missing:
        raise ReplayRefused(
            f"{ref}: version {version} ({what}) is no longer readable: {len(missing)} of its "
            f"{len(files)} files were removed by VACUUM, e.g. {missing[0]} (a replay needs "
            "the table's delta.deletedFileRetentionDuration to cover it)"
        )
    if not files or not frame.select(F.lit(1)).head(1):
        raise ReplayRefused(f"{ref}: version {version} holds none of {what}")
    return frame


def missing_files(spark: SparkSession, files: Sequence[str]) -> list[str]:
    """The files of `files` that no longer exist (through Hadoop's FileSystem: any storage)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None  # a classic (non-Connect) session always has the JVM gateway
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    missing = []
    for file in files:
        path = jvm.org.apache.hadoop.fs.Path(file)
        if not path.getFileSystem(conf).exists(path):
            missing.append(file)
    return missing


def code_warnings(run: ScoreRun, usecase_code: str | None, code_version: str) -> list[str]:
    """One line when the code now is not the code the run recorded (or it recorded none)."""
    meta = run.metadata
    if meta is None:
        return [
            f"replay: the commit of run {run.run_id} is no longer in the scores log: the code "
            "it ran is unknown, so differences may come from the code"
        ]
    recorded = (meta.get("code_version"), meta.get("usecase_code"))
    if recorded == (code_version, usecase_code):
        return []
    changes = []
    if recorded[0] != code_version:
        changes.append(f"engine {code_version} now, {recorded[0] or 'not recorded'} then")
    if recorded[1] != usecase_code:
        changes.append(f"use case code {usecase_code} now, {recorded[1] or 'not recorded'} then")
    return [
        f"replay: the code differs from what run {run.run_id} recorded ({'; '.join(changes)}): "
        "differences may come from the code"
    ]


def scratch_table(tables: Tables, run_id: str) -> TableRef:
    """`replay_<run id>` where the use case's `scores` table lives: next to it (a path), or
    in its catalog schema; characters other than letters, digits and _ become _."""
    safe = "".join(c if c.isalnum() or c == "_" else "_" for c in run_id)
    name = f"replay_{safe}"
    scores = tables["scores"]
    if scores.catalog_name:
        schema = scores.catalog_name.rsplit(".", 1)[0]
        return parse_location(name, f"{schema}.{name}", "tables.scores")
    assert scores.path is not None
    return TableRef(name, path=join_path(scores.path.rstrip("/").rsplit("/", 1)[0], name))


def into_table(value: str, usecase: str) -> TableRef:
    """The `--into` table: a path or a catalog name (`{usecase}` replaced).

    Raises:
        ReplayRefused: neither a path nor a valid catalog name.
    """
    try:
        return parse_location("replay", for_usecase(value, usecase), "--into")
    except ScoringError as exc:
        raise ReplayRefused(str(exc)) from exc


def compare(
    recorded: DataFrame,
    replayed: DataFrame,
    keys: Sequence[str],
    outputs: Sequence[T.StructField],
) -> Comparison:
    """Match rows on `keys`; count identical / different rows and rows on one side only;
    per output column, the rows that differ and the largest absolute difference.

    Doubles are equal only when their raw bits are (see the module docstring). One
    aggregate: the single row it returns is collected.
    """
    left = recorded.select(
        *keys,
        *(F.col(f.name).alias(f"__recorded_{i}") for i, f in enumerate(outputs)),
        F.lit(True).alias(_MARK_RECORDED),
    )
    right = replayed.select(
        *keys,
        *(F.col(f.name).alias(f"__replayed_{i}") for i, f in enumerate(outputs)),
        F.lit(True).alias(_MARK_REPLAYED),
    )
    joined = left.join(right, list(keys), "full_outer")
    in_recorded = F.coalesce(F.col(_MARK_RECORDED), F.lit(False))
    in_replayed = F.coalesce(F.col(_MARK_REPLAYED), F.lit(False))
    both = in_recorded & in_replayed
    same, largest = [], []
    for i, field in enumerate(outputs):
        a, b = F.col(f"__recorded_{i}"), F.col(f"__replayed_{i}")
        same.append(exact(a, field.dataType).eqNullSafe(exact(b, field.dataType)))
        distance = absolute_difference(a, b, field.dataType)
        largest.append(None if distance is None else F.max(F.when(both, distance)))
    all_same = F.lit(True)
    for column in same:
        all_same = all_same & column
    aggregates = [
        F.count_if(both & all_same).alias("identical"),
        F.count_if(both & ~all_same).alias("different"),
        F.count_if(in_recorded & ~in_replayed).alias("only_recorded"),
        F.count_if(~in_recorded & in_replayed).alias("only_replayed"),
        *(F.count_if(both & ~s).alias(f"rows_{i}") for i, s in enumerate(same)),
        *(m.alias(f"largest_{i}") for i, m in enumerate(largest) if m is not None),
    ]
    row = joined.agg(*aggregates).first()
    assert row is not None  # a global aggregate always returns one row
    columns = tuple(
        ColumnDifference(
            field.name,
            int(row[f"rows_{i}"]),
            _float(row[f"largest_{i}"]) if largest[i] is not None else None,
        )
        for i, field in enumerate(outputs)
    )
    return Comparison(
        int(row["identical"]),
        int(row["different"]),
        int(row["only_recorded"]),
        int(row["only_replayed"]),
        columns,
    )


def exact(column: Column, data_type: T.DataType) -> Column:
    """A value that is equal for two columns exactly when their bits are: a double or a float
    as its exact hexadecimal text (Java's `%a`: sign, every bit of the mantissa, exponent),
    applied inside maps and arrays; others as they are.

    Spark's own `=` on doubles says -0.0 = 0.0 (and normalizes both); the text does not.
    (`reflect` of `Double.doubleToRawLongBits` would also do, but Spark refuses it inside an
    aggregate: it is not deterministic.) Null stays null: null equals null.
    """
    if isinstance(data_type, T.DoubleType | T.FloatType):
        return F.format_string("%a", column)
    if isinstance(data_type, T.MapType):
        values = data_type.valueType
        # Maps cannot be compared in Spark; their entries, sorted by key, can.
        return F.array_sort(
            F.map_entries(F.transform_values(column, lambda _key, v: exact(v, values)))
        )
    if isinstance(data_type, T.ArrayType):
        element = data_type.elementType
        return F.transform(column, lambda v: exact(v, element))
    return column


def absolute_difference(a: Column, b: Column, data_type: T.DataType) -> Column | None:
    """|a - b| as a double for numbers; the largest over the entries for a map of numbers;
    None for other types (text, dates)."""
    if isinstance(data_type, T.NumericType):
        return F.abs(a.cast("double") - b.cast("double"))
    if isinstance(data_type, T.MapType) and isinstance(data_type.valueType, T.NumericType):
        return F.array_max(
            F.map_values(
                F.map_zip_with(a, b, lambda _k, x, y: F.abs(x.cast("double") - y.cast("double")))
            )
        )
    return None


def _run_by_id(
    spark: SparkSession, tables: Tables, history: DataFrame, selector: Selector
) -> ScoreRun:
    """The score run with id `selector.run_id`, refused unless it is a succeeded score run."""
    runs, run_id = tables["runs"], str(selector.run_id)
    # The rows of one run id (one, or a few with a running row first): a tiny collect.
    rows = history.where(F.col("run_id") == F.lit(run_id)).orderBy(F.col("ended_at")).collect()
    if not rows:
        raise ReplayRefused(f"run id '{run_id}' is unknown: {runs} has no run of that id")
    step = rows[-1]["step"]
    if step != "score":
        raise ReplayRefused(
            f"run '{run_id}' is a {step} run, not a score run: replay takes a score run's id"
        )
    succeeded = [r for r in rows if r["status"] == "succeeded"]
    if not succeeded:
        last = rows[-1]
        error = f": {last['error']}" if last["error"] else ""
        raise ReplayRefused(
            f"run '{run_id}' did not succeed (status {last['status']}{error}); only a succeeded "
            "score run wrote scores to replay"
        )
    row = succeeded[-1]
    if selector.run_date is not None and row["run_date"] != selector.run_date:
        raise ReplayRefused(
            f"run '{run_id}' scored {row['run_date']}, not --run-date {selector.run_date}"
        )
    return _score_run(row, _commit_metadata(spark, tables["scores"], [row]))


def _score_run(row: Row, metadata: Mapping[int, Mapping[str, Any]]) -> ScoreRun:
    """A runs row as a ScoreRun, with its scores commit's metadata when it is that run's."""
    version = (row["table_versions"] or {}).get("scores")
    meta = metadata.get(int(version)) if version is not None else None
    if meta is not None and meta.get("run_id") != row["run_id"]:
        meta = None  # another writer's commit: nothing it says is about this run
    return ScoreRun(
        row["run_id"], row["run_date"], int(version) if version is not None else None, meta
    )


def _commit_metadata(
    spark: SparkSession, scores: TableRef, rows: Sequence[Row]
) -> dict[int, dict[str, Any]]:
    """The userMetadata of the scores commits the runs rows name, by version (those still
    in the log). One read of the table's history, a few rows collected."""
    versions = sorted(
        {int(v) for r in rows if (v := (r["table_versions"] or {}).get("scores")) is not None}
    )
    if not versions or not io.table_exists(spark, scores):
        return {}
    commits = (
        io.delta_table(spark, scores)
        .history()
        .where(F.col("version").isin(versions))
        .select("version", "userMetadata")
        .collect()
    )
    found = {int(c["version"]): io.user_metadata(c["userMetadata"]) for c in commits}
    return {version: meta for version, meta in found.items() if meta}


def _models_of(
    spark: SparkSession, scores: TableRef, runs: Sequence[ScoreRun]
) -> dict[str, tuple[str, str]]:
    """run id -> (model name, version) of each run: from its commit's metadata, else from
    its rows still in `scores` (a distinct over one date's partition, a few rows)."""
    models = {
        r.run_id: (str(r.metadata["model_name"]), str(r.metadata["model_version"]))
        for r in runs
        if r.metadata and r.metadata.get("model_name") and r.metadata.get("model_version")
    }
    unknown = [r for r in runs if r.run_id not in models]
    if unknown and io.table_exists(spark, scores):
        rows = (
            io.read_table(spark, scores)
            .where(
                (F.col(AS_OF_DATE) == F.lit(unknown[0].run_date))
                & F.col("run_id").isin([r.run_id for r in unknown])
            )
            .select("run_id", "model_name", "model_version")
            .distinct()
            .collect()
        )
        models.update({r["run_id"]: (r["model_name"], r["model_version"]) for r in rows})
    return models


def _uses_model(uri: str, recorded: RecordedSlice, metadata: Mapping[str, Any] | None) -> bool:
    """Whether the run scored with `uri` (see `_matches`)."""
    return _matches(uri, recorded.model_name, recorded.model_version, metadata)


def _matches(uri: str, name: str, version: str, metadata: Mapping[str, Any] | None) -> bool:
    """`models:/NAME/VERSION`: the run scored with that version. `models:/NAME@ALIAS`: the
    run was asked for that alias (the version it pointed to then, not now).

    Raises:
        ReplayRefused: `uri` is not a model URI.
    """
    try:
        wanted, alias, wanted_version = parse_model_uri(uri)
    except ModelError as exc:
        raise ReplayRefused(f"--model: {exc}") from exc
    if alias is None:
        return (name, version) == (wanted, wanted_version)
    return name == wanted and metadata is not None and metadata.get("model_uri") == uri


def _pinned_model(target: MlflowTarget, recorded: RecordedSlice, run_id: str) -> ResolvedModel:
    """The registry's version the run scored with, checked to be the same logged model.

    Raises:
        ReplayRefused: the registry no longer has that version, or it is another model now.
        ModelError: the registry could not be asked.
    """
    try:
        model = resolve_model(target, recorded.pinned_uri)
    except ModelNotFoundError as exc:
        raise ReplayRefused(
            f"{recorded.pinned_uri}, which run {run_id} scored with, is no longer available: {exc}"
        ) from exc
    if recorded.model_run_id and model.run_id != recorded.model_run_id:
        raise ReplayRefused(
            f"{recorded.pinned_uri} in {target.registry_uri} is the model logged by MLflow run "
            f"{model.run_id}, but run {run_id} scored with the one logged by "
            f"{recorded.model_run_id}: not the registry that run used"
        )
    return model


def _lineage(rows: DataFrame) -> list[tuple[str, str, str | None, int]]:
    """The distinct (model name, version, model run id, features version) of a run's rows:
    one for a score run; collected (a handful of values)."""
    found = (
        rows.select("model_name", "model_version", "model_run_id", "feature_table_version")
        .distinct()
        .limit(10)
        .collect()
    )
    return [(r[0], r[1], r[2], r[3]) for r in found]


def _replacing_runs(spark: SparkSession, scores: TableRef, run: ScoreRun) -> str:
    """The run ids whose rows now hold the run's date in `scores` (for the message)."""
    ids = (
        io.read_table(spark, scores)
        .where(F.col(AS_OF_DATE) == F.lit(run.run_date))
        .select("run_id")
        .distinct()
        .limit(5)
        .collect()
    )
    return ", ".join(sorted(r["run_id"] for r in ids)) or "no run"


def _check_scratch(
    spark: SparkSession, into: TableRef, tables: Tables, schema: T.StructType
) -> None:
    """Refuse a scratch table that is one of the use case's tables, an existing table no
    replay wrote (a replay overwrites its scratch table) or one of other columns."""
    for name in tables:
        if str(tables[name]) == str(into):
            raise ReplayRefused(f"--into {into}: that is the use case's {name} table")
    if not io.table_exists(spark, into):
        return
    # The scratch table's own log: a few commits (a replay overwrites it), collected.
    history = io.delta_table(spark, into).history().select("userMetadata").collect()
    steps = {io.user_metadata(commit["userMetadata"]).get("step") for commit in history}
    if REPLAY_STEP not in steps:
        raise ReplayRefused(
            f"--into {into}: an existing table no replay wrote; a replay overwrites its "
            "scratch table, so give a new or a replay table"
        )
    existing = io.read_table(spark, into).schema
    if [(f.name, f.dataType) for f in existing] != [(f.name, f.dataType) for f in schema]:
        raise ReplayRefused(
            f"--into {into}: holds a replay with other columns (another use case or task); "
            "give another table"
        )


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message (Spark's carry a JVM stack trace)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
