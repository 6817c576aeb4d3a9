"""Peak resident memory of the Python workers Spark forks, per timed run (Linux /proc only).

Python workers are forked by `pyspark.daemon` and reused across jobs, so their lifetime peak
(`VmHWM`) would carry over from one variant to the next. Before each run the peak of every
live worker is reset (`echo 5 > /proc/<pid>/clear_refs`, Linux >= 4.0), and a thread samples
`VmHWM` of every worker (new ones included) until the run ends. Reported: the largest single
worker's peak and the largest sum over simultaneously live workers.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

_MARKER = b"pyspark.daemon"


def worker_pids(root: int | None = None) -> list[int]:
    """The `pyspark.daemon` processes (and their forked workers) descending from `root`.

    `root` defaults to this process: the driver, whose JVM starts the daemon. Other users'
    Spark sessions on the same machine are left out.
    """
    ancestor = os.getpid() if root is None else root
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if _MARKER in (entry / "cmdline").read_bytes() and _descends(int(entry.name), ancestor):
                pids.append(int(entry.name))
        except OSError:
            continue  # the process ended while we looked
    return pids


def _descends(pid: int, ancestor: int) -> bool:
    """Whether `ancestor` is among the first few parents of `pid`."""
    for _ in range(6):
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
    return False


def peak_kib(pid: int) -> int:
    """`VmHWM` (peak resident set, KiB) of a process; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak(pid: int) -> None:
    """Reset a process's `VmHWM` to its current resident set."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


@dataclass
class WorkerPeak:
    """Sampled peaks of one run, in MiB."""

    max_worker_mib: float = 0.0
    sum_workers_mib: float = 0.0


class WorkerMemory:
    """Context manager: resets worker peaks on entry, samples them until exit."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peak = WorkerPeak()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WorkerPeak:
        for pid in worker_pids():
            reset_peak(pid)
        self._thread.start()
        return self.peak

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        peaks = [peak_kib(pid) / 1024 for pid in worker_pids()]
        if peaks:
            self.peak.max_worker_mib = max(self.peak.max_worker_mib, max(peaks))
            self.peak.sum_workers_mib = max(self.peak.sum_workers_mib, sum(peaks))
