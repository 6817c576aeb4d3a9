"""An ingest rerun of a delivery date replaces its own sources' quarantine rows only: the
outcomes `scoring quality` kept out (source `quality:<labels source>`) stay."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from scoring.core import io
from scoring.core.config import IngestSettings
from scoring.core.contracts import load_contract, spark_schema
from scoring.ingest.step import run_ingest
from scoring.quality.step import quarantine_source
from scoring.usecase import load_usecase
from tests.conftest import CHURN_DIR, churn_tables, make_config
from tests.ingest.drops import CUSTOMERS_DAY1, TRANSACTIONS_DAY1, write_drop

pytestmark = pytest.mark.slow
DAY1 = date(2026, 3, 1)
STARTED = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def test_an_ingest_rerun_keeps_the_quality_steps_quarantine_rows(spark, tmp_path):
    config = make_config(tmp_path / "lakehouse")
    write_drop(Path(config.raw_root("churn")), DAY1.isoformat(), CUSTOMERS_DAY1, TRANSACTIONS_DAY1)
    tables = churn_tables(config)
    usecase = load_usecase(CHURN_DIR)

    def ingest(run_id: str) -> None:
        run_ingest(spark, tables, usecase.sources, raw_root=config.raw_root("churn"),
                   settings=IngestSettings(1.0, "error", 24.0), run_date=DAY1, run_id=run_id,
                   started_at=STARTED)  # fmt: skip

    ingest("ingest-1")
    ingested = io.read_table(spark, tables["quarantine"]).count()
    assert ingested > 0  # the drop has bad records of its own
    row = (DAY1, quarantine_source("outcomes"), "/raw/o.csv", '{"x":1}', None,
           ["unknown_entity"], None, "quality-1", STARTED)  # fmt: skip
    frame = spark.createDataFrame([row], spark_schema(load_contract("quarantine")))
    frame.write.format("delta").mode("append").save(str(tables["quarantine"].path))

    ingest("ingest-2")
    after = io.read_table(spark, tables["quarantine"])
    assert after.count() == ingested + 1
    (kept,) = after.where(f"source = '{quarantine_source('outcomes')}'").collect()
    assert list(kept["reasons"]) == ["unknown_entity"]
