"""A pytest plugin: each failure's line in the closing summary without Java stack frames.

On CI (the `CI` variable set) pytest writes every failure's whole message into the summary
that closes the run, and a Spark error's message holds the JVM's stack trace: hundreds of
lines. CI shows the last lines of a run, so the last failure's frames filled them and hid
which tests failed and why. Here the summary keeps the lines of a message that say what
happened (the Python error, the Java exception, every "Caused by"), joined into one line;
the failures section above the summary still prints each traceback whole.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import Any

import pytest

# A JVM stack frame ("\tat org.apache...(File.scala:12)") or the count of frames left out.
FRAME = re.compile(r"^\s*(at \S+\(.*\)|\.\.\. \d+ more)\s*$")
# What a summary line keeps of a message, in characters: room for a few exceptions.
LIMIT = 600


def summary_message(message: str) -> str:
    """`message` without its stack frames and blank lines, on one line, at most LIMIT long."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    text = " | ".join(line for line in lines if not FRAME.match(line))
    return text if len(text) <= LIMIT else text[: LIMIT - 3] + "..."


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    crash: Any = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and crash.message:
        crash.message = summary_message(crash.message)
    return report
