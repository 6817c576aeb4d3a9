"""A dry run on a table that still carries a longer retention than the configured one."""

from __future__ import annotations

import pytest
from pyspark.sql import types as T

from scoring.core import io
from scoring.core.tables import TableRef
from scoring.maintain.tables import TablePlan, maintain_table

pytestmark = pytest.mark.slow
SCHEMA = T.StructType([T.StructField("key", T.StringType())])
LONG = {"delta.deletedFileRetentionDuration": "interval 60 days"}


def test_a_dry_run_below_the_tables_current_retention_reports_and_changes_nothing(spark, tmp_path):
    ref = TableRef("scores", path=str(tmp_path / "scores"), properties=tuple(LONG.items()))
    io.ensure_table(spark, ref, io.TableSpec(SCHEMA))
    io.write_delta(spark.createDataFrame([("a",)], SCHEMA), ref, "append", {"run_id": "w"})
    version = io.current_version(spark, ref)
    outcome = maintain_table(spark, TablePlan(ref, 30 * 24.0), "maintain-dry", dry_run=True)
    assert outcome is not None
    assert (outcome.files_before, outcome.files_vacuumed, outcome.version) == (1, 0, None)
    assert io.current_version(spark, ref) == version
    detail = io.delta_table(spark, ref).detail().first()
    assert detail is not None
    assert detail["properties"]["delta.deletedFileRetentionDuration"] == "interval 60 days"
    # Delta's safety check is back on for everything else.
    assert spark.conf.get("spark.databricks.delta.retentionDurationCheck.enabled", "true") == "true"
