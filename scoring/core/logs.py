"""Logging with the run id on every line, as text or as JSON lines, in one timestamp format.

Every line, ours and MLflow's, carries an ISO 8601 UTC time with milliseconds
(`2026-03-05T06:00:12.345Z`); the local Spark's own log4j lines use the same format
(`conf/log4j2.properties`, see `scoring.core.session`). MLflow is told not to install
its own handler (`MLFLOW_CONFIGURE_LOGGING=false`), so its records come through ours.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from datetime import UTC, datetime

_TEXT_FORMAT = "%(asctime)s %(levelname)s run=%(run_id)s %(name)s: %(message)s"
#: The environment variable with which MLflow leaves the logging set-up to the application.
MLFLOW_LOGGING_ENV = "MLFLOW_CONFIGURE_LOGGING"


def new_run_id(command: str, now: datetime | None = None) -> str:
    """A unique, sortable run id: `<command>-<UTC time>-<8 hex digits>`."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{command}-{stamp}-{uuid.uuid4().hex[:8]}"


def utc_stamp(created: float) -> str:
    """A log record's time as ISO 8601 UTC with milliseconds: `2026-03-05T06:00:12.345Z`."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _RunIdFilter(logging.Filter):
    """Stamps every record with the run id, whatever logger it comes from."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = self.run_id
        return True


class _TextFormatter(logging.Formatter):
    """The text format, with the one timestamp format."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return utc_stamp(record.created)


class _JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors on Databricks and EMR."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": utc_stamp(record.created),
            "level": record.levelname,
            "run_id": getattr(record, "run_id", None),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: str, as_json: bool, run_id: str) -> None:
    """Send the root logger to stderr with the run id on every line; replaces old handlers.

    MLflow's loggers lose their own handler and propagate here, so their lines share the
    format (the environment variable keeps a later `import mlflow` from adding it back).
    """
    os.environ[MLFLOW_LOGGING_ENV] = "false"
    handler = logging.StreamHandler()
    handler.addFilter(_RunIdFilter(run_id))
    handler.setFormatter(_JsonFormatter() if as_json else _TextFormatter(_TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    mlflow_logger = logging.getLogger("mlflow")
    mlflow_logger.handlers[:] = []
    mlflow_logger.propagate = True
    for noisy in ("py4j", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
