"""One source's delivery for one date: which files it is, and whether they may be read at all.

A delivery lives at `<raw_root>/<source>/<YYYY-MM-DD>/`. Every file there must be one the
source's contract takes: its `file_glob`, or the glob plus a compression suffix Spark reads
(`.gz`, `.bz2`, `.deflate`). Anything else is an error naming the file (or, with
`ingest.unexpected_files: warn`, a warning recorded in `runs`): a file nobody reads must not
vanish in silence. Hidden names (`.x`, `_SUCCESS`) are not files of the delivery.

Before anything is read in bulk, each file is checked where it points and what it holds: a
file that resolves outside the raw root (a symlink, `..`) is refused; a text drop whose
bytes are compressed under a plain name, or hold NUL bytes, or a Parquet drop that is not
Parquet, fails naming the file.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlparse

from pyspark.sql import SparkSession

from scoring.core import io
from scoring.core.config import join_path
from scoring.core.contracts import Contract
from scoring.core.errors import DataError

#: Compression suffixes Spark's text and CSV/JSON readers decompress by themselves.
COMPRESSED = (".gz", ".bz2", ".deflate")
#: Leading bytes of files that are not text.
_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"PK\x03\x04": "zip",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PAR1": "Parquet",
}
_SNIFF_BYTES = 4096


@dataclass(frozen=True)
class Delivery:
    """A source's files of one delivery date, and the files there that it does not take."""

    source: str
    folder: str
    files: tuple[str, ...]
    ignored: tuple[str, ...] = ()


def find_delivery(
    spark: SparkSession,
    raw_root: str,
    source: str,
    contract: Contract,
    day: date,
    unexpected: str = "error",
) -> Delivery:
    """The files of a source's delivery for `day`, each checked (module docstring).

    Raises:
        DataError: the folder or its files are missing, a file is not the contract's (with
            `unexpected` "error"), resolves outside the raw root, or is not what its name
            and the contract's format say.
    """
    folder = join_path(raw_root, source, day.isoformat())
    found = io.list_files(spark, folder)
    if found is None:
        raise DataError(f"{folder}: source folder for {source} on {day} is missing")
    files = tuple(f for f in found if takes(contract, _name(f)))
    others = tuple(f for f in found if f not in files)
    if others and unexpected == "error":
        raise DataError(
            f"{others[0]}: no contract takes this file: source {source} reads "
            f"'{contract.file_glob}' (optionally {'/'.join(COMPRESSED)}); remove it or set "
            "ingest.unexpected_files: warn"
        )
    if not files:
        raise DataError(f"{folder}: no file matching '{contract.file_glob}' for {source}")
    for file in files:
        check_inside(raw_root, file)
        check_content(spark, file, contract)
    return Delivery(source, folder, files, others)


def delivers(
    spark: SparkSession, raw_root: str, source: str, contract: Contract, day: date
) -> bool:
    """Whether the source has a delivery to look for on `day`: always for a `daily` contract
    (a missing folder is an error of `find_delivery`); for an `occasional` one (outcomes,
    corrections), only when its folder exists."""
    if contract.schedule != "occasional":
        return True
    return io.list_files(spark, join_path(raw_root, source, day.isoformat())) is not None


def takes(contract: Contract, name: str) -> bool:
    """Whether a file name is the contract's: its glob, or its glob plus a compression suffix."""
    glob = contract.file_glob or "*"
    if fnmatch.fnmatchcase(name, glob):
        return True
    suffix = next((s for s in COMPRESSED if name.endswith(s)), None)
    return suffix is not None and fnmatch.fnmatchcase(name[: -len(suffix)], glob)


def check_inside(raw_root: str, file: str) -> None:
    """Refuse a local file that resolves outside the raw root (a symlink or `..`).

    Object stores have neither, so only local paths (`file:` or no scheme) are resolved.
    """
    path, root = _local(file), _local(raw_root)
    if path is None or root is None:
        return
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    if os.path.commonpath([real, real_root]) != real_root:
        raise DataError(f"{file}: resolves to {real}, outside the raw root {real_root}; refused")


def check_content(spark: SparkSession, file: str, contract: Contract) -> None:
    """Fail naming the file when its first bytes contradict its name and the format."""
    head = io.head_bytes(spark, file, _SNIFF_BYTES)
    kind = next((k for magic, k in _MAGIC.items() if head.startswith(magic)), None)
    if contract.format == "parquet":
        if kind != "Parquet":
            raise DataError(f"{file}: not a Parquet file (it does not start with PAR1)")
        return
    if any(_name(file).endswith(s) for s in COMPRESSED):
        return  # Spark decompresses it; what is inside is checked record by record
    if kind is not None:
        raise DataError(
            f"{file}: holds {kind} bytes but its name says {contract.format} text; a "
            f"compressed drop needs its suffix (e.g. {_name(file)}.gz)"
        )
    if b"\x00" in head and "16" not in contract.encoding and "32" not in contract.encoding:
        raise DataError(f"{file}: not text (NUL bytes) in encoding {contract.encoding}")


def _name(file: str) -> str:
    return file.rstrip("/").rsplit("/", 1)[-1]


def _local(location: str) -> str | None:
    """The local path of a `file:` URI or a plain path; None for other schemes."""
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return parsed.path if parsed.scheme else location
    return None
