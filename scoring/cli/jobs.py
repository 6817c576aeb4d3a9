"""The commands a scheduler runs, each with a `jobs/<command>.py` spark-submit entry point.

One list, checked by the tests against `jobs/`, the CLI parser, the Databricks bundle and
the EMR step files, so that a command cannot be scheduled on one platform and missing on
another.
"""

from __future__ import annotations

JOB_COMMANDS: tuple[str, ...] = (
    "doctor",
    "ingest",
    "features",
    "train",
    "baseline",
    "score",
    "monitor",
    "quality",
    "compare",
    "report",
    "pipeline",
    "maintain",
    "replay",
)
