"""The raw files: their names, their day folders (replaced whole) and their bytes."""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scoring.usecase import Contract, ContractError


def file_name(contract: Contract, day: datetime.date, part: int | None = None) -> str:
    """The contract's file glob with the `*` filled: the day and, for parts, the part."""
    glob = contract.file_glob or ""
    if glob.count("*") != 1:
        raise ContractError(f"{contract.path}: file_glob must hold one '*', got {glob!r}")
    fill = day.isoformat() if part is None else f"{day.isoformat()}_part-{part:04d}"
    return glob.replace("*", fill)


def day_path(raw_root: Path, source: str, day: datetime.date) -> Path:
    """The folder holding the delivery of `source` on `day`."""
    return raw_root / source / day.isoformat()


@contextmanager
def day_folder(raw_root: Path, source: str, day: datetime.date) -> Iterator[Path]:
    """A fresh staging folder for one delivery, moved over the day's folder when complete.

    Readers skip names starting with a dot, so they never see a half-written day.
    """
    final = day_path(raw_root, source, day)
    staging = raw_root / source / f".{day.isoformat()}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)


def write_lines(path: Path, lines: pa.Array, header: str | None = None) -> None:
    """Write each line followed by "\\n" straight from the Arrow buffer (no Python strings)."""
    with path.open("wb") as handle:
        if header is not None:
            handle.write(header.encode("utf-8") + b"\n")
        if len(lines) == 0:
            return
        text = pc.binary_join_element_wise(lines, "\n", "")
        _, offsets, data = text.buffers()
        width = 8 if text.type == pa.large_string() else 4
        bounds = np.frombuffer(offsets, dtype=f"<i{width}", count=len(text) + 1, offset=0)
        bounds = bounds[text.offset : text.offset + len(text) + 1]
        handle.write(memoryview(data)[int(bounds[0]) : int(bounds[-1])])
