"""The score step's error budget, per model: counted on the scores write, settled after it.

Rows a model raises on, or returns NaN / out-of-range outputs for, never reach `scores` or
`scores_current`. The scores write counts, per model, all rows and the bad ones on its own
pass (an Observation); with no bad row that is all it costs. Then, per model:

- the serving model (the first) over `ErrorBudget`: the scores write is undone and the run
  fails (every table as before the run);
- a shadow model over budget: its slice of the date is removed from `scores` again (and its
  `score_errors` slice cleared), with a warning; the serving model's scores stay written;
- within budget: the bad rows are found again as the features rows the model's slice
  lacks, scored again by that model only for their error, and written to its slice of
  `score_errors` (cleared when it has none).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from scoring.core import io
from scoring.core.contracts import load_contract
from scoring.core.errors import DataError, ModelError
from scoring.core.tables import Tables
from scoring.model.registry import ResolvedModel
from scoring.score.tables import Lineage, ScoresLayout, commit_metadata, slices_predicate
from scoring.score.udf import ERROR, INPUT, MODEL, ShippedModel, score_frame
from scoring.usecase.spec import AS_OF_DATE

log = logging.getLogger(__name__)
#: The error of a row that failed in the scoring pass but not when scored again (a model
#: that is not deterministic), followed by the run's first error.
NOT_REPRODUCED = "not reproduced when scored again; the run's first error: "


@dataclass(frozen=True)
class ErrorBudget:
    """How many features rows a run may fail to score (scoring.max_error_rows / _share).

    The run fails when its bad rows are more than `max_rows` OR more than `max_share` of
    its rows: the defaults (0, 0.0) fail it on any bad row.
    """

    max_rows: int = 0
    max_share: float = 0.0

    def exceeded(self, bad: int, rows: int) -> bool:
        """Whether `bad` of `rows` rows is more than the budget allows."""
        return bad > self.max_rows or (bad > 0 and bad > self.max_share * rows)

    def __str__(self) -> str:
        return f"scoring.max_error_rows={self.max_rows}, scoring.max_error_share={self.max_share}"


@dataclass(frozen=True)
class ErrorCount:
    """What the scoring pass's Observation counted for one model: rows, bad rows, the first
    error."""

    rows: int
    bad: int
    first_error: str | None


def count_columns(models: int) -> list[Column]:
    """The Observation's aggregates: per model (by `MODEL`), rows, bad rows, first error."""
    columns = []
    for index in range(models):
        mine = F.col(MODEL) == F.lit(index)
        columns += [
            F.count_if(mine).alias(f"rows_{index}"),
            F.count_if(mine & F.col(ERROR).isNotNull()).alias(f"bad_{index}"),
            F.min(F.when(mine, F.col(ERROR))).alias(f"first_error_{index}"),
        ]
    return columns


def counted(observation: Observation, models: int) -> list[ErrorCount]:
    """The Observation's counts per model: the scores write computed the scored rows once,
    and counted all of them and the bad ones on that same pass (no count() over the data)."""
    metrics = observation.get
    out = []
    for index in range(models):
        first = metrics.get(f"first_error_{index}")
        out.append(
            ErrorCount(
                int(metrics[f"rows_{index}"]),
                int(metrics[f"bad_{index}"]),
                str(first) if first else None,
            )
        )
    return out


@dataclass(frozen=True)
class Scored:
    """What the settlement needs of the scoring: the models, their shipped copies and
    lineage, the keyed features and the layout of the scored tables."""

    models: tuple[ResolvedModel, ...]
    shipped: tuple[ShippedModel, ...]
    lineages: tuple[Lineage, ...]
    keyed: DataFrame  # the features with the as-of column named `as_of_date`
    keys: tuple[str, ...]
    layout: ScoresLayout


class Settlement:
    """The budget settled after the scores write, per model (module docstring).

    Called with the scores commit and the version before it; afterwards `counts` holds the
    counts per model, `dropped` the positions of the shadows dropped over budget,
    `warnings` what the run's `runs` row should say, `errors_version` the score_errors
    version this run committed (or None)."""

    def __init__(
        self,
        spark: SparkSession,
        tables: Tables,
        scored: Scored,
        run_date: date,
        budget: ErrorBudget,
        observation: Observation,
    ) -> None:
        self.spark, self.tables, self.scored = spark, tables, scored
        self.run_date, self.budget, self.observation = run_date, budget, observation
        self.counts: list[ErrorCount] = []
        self.dropped: list[int] = []
        self.warnings: list[str] = []
        self.errors_version: int | None = None

    @property
    def _run_id(self) -> str:
        return self.scored.lineages[0].run_id

    def __call__(self, commit: dict[str, Any], before: int | None) -> None:
        """Over budget (serving model) or rows unaccounted for: undo the scores write and
        fail in one line. Else drop the shadows over budget and replace every kept model's
        slice of score_errors; on any failure both tables are put back."""
        self.counts = counted(self.observation, len(self.scored.models))
        scores = self.tables["scores"]
        rows = sum(c.rows for c in self.counts)
        bad = sum(c.bad for c in self.counts)
        written = written_rows(commit)
        if written + bad != rows:
            undone = io.undo_own_commits(self.spark, scores, before, self._run_id, "score")
            raise DataError(
                f"{scores}: conservation broken: {rows} rows scored, {bad} bad, but "
                f"{written} written; {undone_text(undone)}"
            )
        serving = self.counts[0]
        if self.budget.exceeded(serving.bad, serving.rows):
            undone = io.undo_own_commits(self.spark, scores, before, self._run_id, "score")
            raise ModelError(
                f"{self.scored.models[0].pinned_uri}: {self._over(serving)}; {undone_text(undone)}"
            )
        self.dropped = [
            i
            for i, count in enumerate(self.counts)
            if i > 0 and self.budget.exceeded(count.bad, count.rows)
        ]
        ref = self.tables["score_errors"]
        errors_before = io.current_version(self.spark, ref)
        try:
            self._drop_shadows(int(commit["version"]))
            self._settle_errors(int(commit["version"]), errors_before)
        except Exception:
            io.undo_own_commits(self.spark, scores, before, self._run_id, "score")
            io.undo_own_commits(self.spark, ref, errors_before, self._run_id, "score")
            raise
        if errors_before is not None or any(self.counts[i].bad for i in self._kept):
            own = io.own_commit(self.spark, ref, self._run_id, after=errors_before)
            self.errors_version = None if own is None else int(own["version"])
        self.warnings = [self._warning(i) for i, c in enumerate(self.counts) if c.bad]

    @property
    def _kept(self) -> list[int]:
        return [i for i in range(len(self.scored.models)) if i not in self.dropped]

    def _over(self, count: ErrorCount) -> str:
        return (
            f"{count.bad} of {count.rows} rows of {self.run_date} could not be scored (first "
            f"error: {count.first_error}), more than the error budget allows ({self.budget})"
        )

    def _warning(self, index: int) -> str:
        count, model = self.counts[index], self.scored.models[index]
        if index in self.dropped:
            return (
                f"shadow {model.pinned_uri} ({model.requested_uri}): {self._over(count)}; its "
                f"slice of {self.run_date} was dropped from scores, the serving model's scores "
                "were written"
            )
        text = (
            f"{count.bad} of {count.rows} rows could not be scored and are in score_errors "
            f"(first error: {count.first_error}); within the error budget ({self.budget})"
        )
        return text if index == 0 else f"shadow {model.pinned_uri}: {text}"

    def _slices(self, indices: Sequence[int]) -> str:
        lineages = self.scored.lineages
        return slices_predicate(
            self.run_date, [(lineages[i].model_name, lineages[i].model_version) for i in indices]
        )

    def _metadata(self) -> dict[str, Any]:
        return commit_metadata(
            self.scored.models,
            self.scored.lineages[0],
            self.tables["features"],
            self.run_date,
            self.tables.usecase,
        )

    def _drop_shadows(self, version: int) -> None:
        """Remove the over-budget shadows' rows this run wrote (one overwrite, no rows)."""
        if not self.dropped:
            return
        for index in self.dropped:
            log.warning("%s", self._over(self.counts[index]))
        empty = self.spark.createDataFrame([], self.scored.layout.schema)
        io.write_delta(
            empty, self.tables["scores"], "overwrite", self._metadata(), self._slices(self.dropped)
        )

    def _settle_errors(self, scores_version: int, errors_before: int | None) -> None:
        """Write the bad rows of each kept model with some; clear every other slice."""
        for index in self._kept:
            if self.counts[index].bad:
                self._write(index, scores_version)
        others = [i for i, c in enumerate(self.counts) if i in self.dropped or not c.bad]
        if others and errors_before is not None:
            self._clear(others)

    def _write(self, index: int, scores_version: int) -> None:
        """One model's bad rows, found again by what its scores slice lacks; only they are
        scored again (for their error), so the happy path never pays for this pass."""
        spark, ref, scored = self.spark, self.tables["score_errors"], self.scored
        lineage, count = scored.lineages[index], self.counts[index]
        contract = load_contract("score_errors")
        entity, keys = scored.keys[:-1], scored.keys
        written = io.read_table(spark, self.tables["scores"], scores_version).where(
            self._slices([index])
        )
        missing = scored.keyed.join(written.select(*keys), list(keys), "left_anti")
        again = score_frame(missing, scored.shipped[index], keys, error_limit=count.bad)
        rows = again.select(
            F.col(AS_OF_DATE).alias("as_of_date"),
            F.to_json(F.struct(*[F.col(k) for k in entity])).alias("entity_key"),
            F.lit(lineage.model_name).alias("model_name"),
            F.lit(lineage.model_version).alias("model_version"),
            F.lit(lineage.run_id).alias("run_id"),
            F.coalesce(F.col(ERROR), F.lit(f"{NOT_REPRODUCED}{count.first_error}")).alias("error"),
            F.col(INPUT).alias("input_values"),
            F.lit(lineage.scored_at).alias("recorded_at"),
        ).select(*[F.col(c.name).cast(c.spark_type).alias(c.name) for c in contract.columns])
        io.ensure_table(spark, ref, io.contract_spec(contract))
        io.write_delta(
            rows, ref, "overwrite", self._metadata(), self._slices([index]), contract.partition_by
        )

    def _clear(self, indices: Sequence[int]) -> None:
        """A rerun without bad rows (or a dropped shadow) removes the slices an earlier run
        of the date left; no commit when there is nothing to remove."""
        ref, predicate = self.tables["score_errors"], self._slices(indices)
        if not io.read_table(self.spark, ref).where(predicate).select(F.lit(1)).head(1):
            return
        contract = load_contract("score_errors")
        empty = self.spark.createDataFrame([], io.contract_spec(contract).schema)
        io.write_delta(empty, ref, "overwrite", self._metadata(), predicate, contract.partition_by)


def written_rows(commit: dict[str, Any]) -> int:
    """The rows a scores commit wrote for its run: its output rows less the rows it copied.

    A replaceWhere on data columns rewrites a file that also holds rows outside the slices
    (another model's rows written in the same pass by an earlier run): those rows are
    copied into the new files and counted in `numOutputRows` too, as `numCopiedRows`.
    """
    metrics = commit["operationMetrics"]
    return int(metrics.get("numOutputRows", 0)) - int(metrics.get("numCopiedRows", 0))


def undone_text(undone: bool) -> str:
    """How an over-budget or broken run leaves the tables, for its one-line error."""
    if undone:
        return "nothing was written (the scores write was undone)"
    return "the scores write was not undone: another run committed since; rerun the date"
