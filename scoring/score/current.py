"""How a run's serving slice becomes `scores_current` (`scoring.current_write`).

`merge` (the default): one MERGE on the entity key, a row replaced when the slice's is newer
(`NEWER_SCORE`), a new entity inserted. The change feed records each replaced row as
`update_preimage` + `update_postimage`.

`overwrite`: when the slice **covers** `scores_current` (every entity in it has a row in the
slice and none of its rows is newer than that slice row), the slice alone is what the MERGE
would leave, so the table is overwritten with it: no join rewrites every row and no change
rows are written, which on a daily run (every entity scored again) makes the write a
quarter to a half of the MERGE's (bench/RESULTS.md, findings 15 and 18). The table holds
the same rows either way; what changes is the change feed: an overwrite records every
entity as `delete` + `insert` in one version. Opt in only where the readers of
`scores_current` take snapshots, or apply the feed by version rather than row by row. When
the slice does not cover the table (an entity left the features, a backfill of an older
date), the run MERGEs, and says so in the log.

The check first compares one aggregate of each side, no join: the row count and a 128-bit
fingerprint of the entity keys (sums of two seeded 64-bit hashes), and the newest date and
run time of the table against the oldest of the slice. Equal counts and fingerprints with
every table row older is the daily case (the same entities scored again); any other answer
goes to the exact check, a join of the two on the key. The fingerprint of the same keys is
always equal; two different key sets share it by chance only, about 2**-128 for keys that are
not built to collide. On a daily run it takes the check from a join of both tables to two
scans (bench/RESULTS.md, finding 24).

The check reads `scores_current` at a pinned version. If another run commits to the table
between the check and the overwrite, the version the overwrite replaced is checked again;
when the slice does not cover that one, the table is restored to it (nothing of the other
run is lost) and the slice is MERGEd.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from scoring.core import io, sql
from scoring.core.tables import TableRef
from scoring.score.tables import NEWER_SCORE
from scoring.usecase import AS_OF_DATE

log = logging.getLogger(__name__)

MERGE = "merge"
OVERWRITE = "overwrite"


def feed_current(
    spark: SparkSession,
    written: DataFrame,
    ref: TableRef,
    keys: tuple[str, ...],
    metadata: Mapping[str, Any],
    mode: str = MERGE,
) -> str:
    """Make `written` (one row per entity, the run's committed serving slice) current in
    `ref`, which exists; returns how: `merge` or `overwrite`."""
    if mode not in (MERGE, OVERWRITE):
        raise ValueError(f"scoring.current_write: expected merge or overwrite, got {mode!r}")
    if mode == OVERWRITE:
        checked = io.required_version(spark, ref)
        if covers(spark, written, ref, keys, checked):
            return _overwrite(spark, written, ref, keys, metadata, checked)
        log.info(
            "%s: scoring.current_write is overwrite, but the slice does not cover the table "
            "(an entity has no row in it, or a newer row than it): MERGE",
            ref,
        )
    io.merge_newer(spark, written, ref, keys, NEWER_SCORE, metadata)
    return MERGE


def covers(
    spark: SparkSession, source: DataFrame, ref: TableRef, keys: tuple[str, ...], version: int
) -> bool:
    """Whether every row of `ref` at `version` is older than (`NEWER_SCORE`) the row of its
    entity in `source`: then `source` alone is what a MERGE of it would leave. Proven by
    `same_entities_all_older` when it can be (two aggregates), else by one left join of the
    key, date and run time columns, stopped at the first row that blocks."""
    columns = [*keys, AS_OF_DATE, "scored_at"]
    table = io.read_table(spark, ref, version)
    if same_entities_all_older(source, table, keys):
        return True
    target = table.select(*columns).alias("t")
    joined = target.join(
        source.select(*columns).alias("s"), on=F.expr(sql.join_condition(keys)), how="left"
    )
    missing = f"s.{sql.identifier(keys[0])} IS NULL"
    blocking = joined.where(f"{missing} OR NOT ({NEWER_SCORE})")
    return not blocking.select(F.lit(1)).head(1)


# A second seed for the second key hash: the two 64-bit hashes make one 128-bit fingerprint.
SECOND_SEED = "scores_current"
LOW_32 = 0xFFFFFFFF


def same_entities_all_older(source: DataFrame, target: DataFrame, keys: tuple[str, ...]) -> bool:
    """Whether `source` holds the same entities as `target` (equal row count and key
    fingerprint) and its oldest date and run time are at least `target`'s newest: then every
    row of `target` is older (`NEWER_SCORE`) than its entity's row in `source`. False is not
    a no: an empty side, a null date or run time, a new entity or a row as new as the slice
    leave it to the exact join of `covers`. One aggregate of each side (keys, date, run time)."""
    newest = _summary(target, keys, F.max)
    oldest = _summary(source, keys, F.min)
    if any(value is None for value in (*newest, *oldest)):
        return False
    n, *fingerprint, last_date, last_run = newest
    m, *other, first_date, first_run = oldest
    if (n, fingerprint) != (m, other):
        return False
    # lexicographic: a later date, or the same date and a run at least as late
    return (first_date, first_run) >= (last_date, last_run)


def _summary(
    frame: DataFrame, keys: tuple[str, ...], pick: Callable[[Column], Column]
) -> tuple[Any, ...]:
    """Row count, the key fingerprint (each 64-bit hash summed as two exact 32-bit halves;
    `try_sum`: null past 2**31 rows) and `pick` (min or max) of the date and the run time.
    Each key is hashed with its null flag, so (a, null) and (null, a) differ."""
    hashed = [c for k in keys for c in (F.col(k), F.col(k).isNull())]
    sums = []
    for hashes in (F.xxhash64(*hashed), F.xxhash64(F.lit(SECOND_SEED), *hashed)):
        low = hashes.bitwiseAND(F.lit(LOW_32))
        sums += [F.try_sum(low), F.try_sum(F.shiftrightunsigned(hashes, 32))]
    row = frame.agg(
        F.count(F.lit(1)), *sums, pick(F.col(AS_OF_DATE)), pick(F.col("scored_at"))
    ).first()
    assert row is not None  # a global aggregate has one row
    return tuple(row)


def _overwrite(
    spark: SparkSession,
    written: DataFrame,
    ref: TableRef,
    keys: tuple[str, ...],
    metadata: Mapping[str, Any],
    checked: int,
) -> str:
    """Overwrite `ref` with `written`, covered at version `checked`; if the overwrite
    replaced a later version that `written` does not cover, restore that one and MERGE.
    Returns which write made the slice current."""
    io.write_delta(written, ref, "overwrite", metadata)
    mine = io.require_own_commit(spark, ref, str(metadata["run_id"]), after=checked)
    replaced = mine["version"] - 1
    if replaced == checked or covers(spark, written, ref, keys, replaced):
        return OVERWRITE
    log.warning(
        "%s: another run committed version %s after this run checked version %s, and the "
        "slice does not cover it: restoring version %s and MERGEing the slice instead",
        ref,
        replaced,
        checked,
        replaced,
    )
    with io.commit_metadata(spark, metadata):
        io.restore(spark, ref, replaced)
    io.merge_newer(spark, written, ref, keys, NEWER_SCORE, metadata)
    return MERGE
