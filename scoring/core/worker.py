"""What the score step's UDF sets up once in each Python worker process it runs in.

**Zip archives are re-read only when they changed.** PySpark's worker calls
`importlib.invalidate_caches()` at the start of every task (`worker_util.setup_spark_files`,
Spark 4.0). On Python 3.10 and 3.11 that makes every `zipimporter` re-read its archive's whole
directory in pure Python, eagerly: one importer per package imported from `pyspark.zip`, and
the `spark-core` jar that Spark puts on the workers' `PYTHONPATH`. Measured in a worker of our
local session: 158 ms of CPU per task (`pyspark.zip` 7.5 ms for each of ten importers, the jar
33-35 ms for each of two), 16 % of the Python workers' samples of a 4M-row scoring run
(bench/RESULTS.md, finding 30). CPython made the re-read lazy in 3.12 (python/cpython#103200);
Spark calls it only when a task adds files since SPARK-54744 (not in 4.0). Until then the UDF
installs `lazy_zip_invalidation`: an importer re-reads its archive when the file's size,
modification time or inode differ from when it last read it, so a changed or replaced archive
is still seen, and an unchanged one costs one `stat`.
"""

from __future__ import annotations

import os
import sys
import zipimport
from typing import Any

#: Marks the installed replacement (installing twice keeps one).
_MARK = "_scoring_lazy"
#: The per-importer attribute holding its archive's stat at its last read.
_SEEN = "_scoring_archive_stat"


def lazy_zip_invalidation() -> bool:
    """Make `zipimporter.invalidate_caches` re-read an archive only when it changed.

    Returns True when this call installed it; False when it was installed already or this
    Python (3.12+) does not re-read eagerly.
    """
    if zip_invalidation_is_lazy():
        return False
    eager = zipimport.zipimporter.invalidate_caches

    def invalidate_caches(self: Any) -> None:
        stat = _archive_stat(self.archive)
        if stat is not None and getattr(self, _SEEN, None) == stat:
            return
        eager(self)
        setattr(self, _SEEN, stat)

    setattr(invalidate_caches, _MARK, True)
    zipimport.zipimporter.invalidate_caches = invalidate_caches  # type: ignore[method-assign]
    return True


def zip_invalidation_is_lazy() -> bool:
    """Whether `invalidate_caches` skips unchanged archives in this process."""
    current = zipimport.zipimporter.invalidate_caches
    return sys.version_info >= (3, 12) or getattr(current, _MARK, False)


def _archive_stat(path: str) -> tuple[int, int, int] | None:
    """(size, modification time in ns, inode) of an archive, or None when it cannot be read."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino)
