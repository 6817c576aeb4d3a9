"""Logging with the run id on every line, as text or as JSON lines."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime

_TEXT_FORMAT = "%(asctime)s %(levelname)s run=%(run_id)s %(name)s: %(message)s"


def new_run_id(command: str, now: datetime | None = None) -> str:
    """A unique, sortable run id: `<command>-<UTC time>-<8 hex digits>`."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{command}-{stamp}-{uuid.uuid4().hex[:8]}"


class _RunIdFilter(logging.Filter):
    """Stamps every record with the run id, whatever logger it comes from."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = self.run_id
        return True


class _JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors on Databricks and EMR."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "run_id": getattr(record, "run_id", None),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: str, as_json: bool, run_id: str) -> None:
    """Send the root logger to stderr with the run id on every line; replaces old handlers."""
    handler = logging.StreamHandler()
    handler.addFilter(_RunIdFilter(run_id))
    handler.setFormatter(_JsonFormatter() if as_json else logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("py4j", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
