"""Fault points: where tests kill or hold a real run, to prove what it leaves behind.

A step calls `fault_point("<name>")` at the moments a kill would hurt most (between two
commits of one step, right after claiming its run). With `SCORING_FAULT=<name>:<action>` in
the process's environment, the point acts:

- `kill`: SIGKILL this process, as the OOM killer or a cancelled job would (no `finally`,
  no atexit, no Spark shutdown);
- `pause=<seconds>`: sleep, so that another run can start while this one holds its step;
- `wait=<path>`: sleep until the file `path` exists (at most 10 minutes), so that a test
  decides when the run goes on.

Unset (production), a point reads one environment variable and returns. Names in use:
`run.claimed.<step>`, `ingest.quarantined`, `ingest.merged.<source>`, `score.written`.
"""

from __future__ import annotations

import logging
import os
import signal
import time

from scoring.core.errors import ConfigError

log = logging.getLogger(__name__)
ENV = "SCORING_FAULT"
_MAX_WAIT_S = 600


def fault_point(name: str) -> None:
    """Act as `SCORING_FAULT` says when it names this point (module docstring)."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    point, _, action = wanted.partition(":")
    if point != name:
        return
    if action == "kill":
        log.warning("%s=%s: killing this process at %s", ENV, wanted, name)
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)
    elif action.startswith("pause="):
        seconds = float(action.removeprefix("pause="))
        log.warning("%s=%s: pausing %g s at %s", ENV, wanted, seconds, name)
        time.sleep(seconds)
    elif action.startswith("wait="):
        path = action.removeprefix("wait=")
        log.warning("%s=%s: waiting at %s for %s", ENV, wanted, name, path)
        deadline = time.monotonic() + _MAX_WAIT_S
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.5)
    else:
        raise ConfigError(
            f"{ENV}={wanted}: unknown action {action!r} (kill, pause=<seconds> or wait=<path>)"
        )
