"""The daily-write probe's options write what the score step's writes would: the slice read
from the commit's files is the committed slice, and the changed-only MERGE leaves an
unchanged row alone (the overwrite option is the score step's own, tests/score/test_current.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pyspark.sql import types as T

from bench.data import AS_OF
from bench.usecase import churn_usecase, scores_layout
from bench.write import (
    Write,
    added_files,
    main,
    merge,
    read_back,
    stamped,
    write_slice,
)
from scoring.core import io
from scoring.core.tables import TableRef

LAYOUT = scores_layout(churn_usecase())
SOURCE = T.StructType(
    [
        T.StructField("customer_id", T.StringType(), False),
        T.StructField("score", T.DoubleType(), True),
        T.StructField("label", T.IntegerType(), True),
    ]
)


def _write(spark, tmp_path, rows, run_id, day=AS_OF) -> Write:
    scores = TableRef("scores", path=str(tmp_path / "scores"))
    current = TableRef("scores_current", path=str(tmp_path / "scores_current"))
    io.ensure_table(spark, scores, LAYOUT.table_spec(current=False))
    io.ensure_table(spark, current, LAYOUT.table_spec(current=True))
    frame = stamped(spark.createDataFrame(rows, SOURCE), LAYOUT, day, run_id)
    return Write(spark, LAYOUT, scores, current, frame, day, {"run_id": run_id})


def _rows(frame):
    return sorted(
        (r.customer_id, r.as_of_date, r.score, r.label, r.run_id) for r in frame.collect()
    )


def test_the_commits_files_hold_exactly_the_committed_slice(spark, tmp_path):
    yesterday = _write(
        spark, tmp_path, [("C1", 0.1, 0), ("C9", 0.9, 1)], "old", AS_OF - timedelta(1)
    )
    write_slice(yesterday)
    today = _write(spark, tmp_path, [("C1", 0.5, 0), ("C2", None, None)], "today")
    commit = write_slice(today)
    expected = [("C1", AS_OF, 0.5, 0, "today"), ("C2", AS_OF, None, None, "today")]
    assert _rows(added_files(today, commit)) == expected
    assert _rows(read_back(today, commit)) == expected


def test_the_changed_only_merge_leaves_an_unchanged_row_alone(spark, tmp_path):
    first = _write(spark, tmp_path, [("C1", 0.5, 0), ("C2", 0.6, 1)], "first")
    merge(first, first.rows)
    rerun = _write(spark, tmp_path, [("C1", 0.5, 0), ("C2", 0.7, 1)], "rerun")
    merge(rerun, rerun.rows, changed_only=True)
    assert _rows(io.read_table(spark, rerun.current)) == [
        ("C1", AS_OF, 0.5, 0, "first"),
        ("C2", AS_OF, 0.7, 1, "rerun"),
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--options", "ax"], "--options: letters of abcdef, got 'ax'"),
        (["--conf", "spark.sql.shuffle.partitions"], "--conf: expected KEY=VALUE"),
        (["--conf", "=16"], "--conf: expected KEY=VALUE"),
    ],
)
def test_a_bad_option_or_conf_is_refused_before_any_table_is_written(
    argv, message, capsys, tmp_path
):
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--work", str(tmp_path / "work")])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "work").exists()
