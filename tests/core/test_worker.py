"""Zip archives on a worker's path are re-read only when they change (scoring.core.worker)."""

from __future__ import annotations

import sys
import zipfile
import zipimport
from pathlib import Path

import pytest

from scoring.core.worker import lazy_zip_invalidation, zip_invalidation_is_lazy

pytestmark = pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="Python 3.12+ re-reads a zip lazily itself"
)


def archive(path: Path, *modules: str) -> Path:
    with zipfile.ZipFile(path, "w") as zipped:
        for name in modules:
            zipped.writestr(f"{name}.py", f"NAME = {name!r}\n")
    return path


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The archives zipimport reads a directory of, while the test runs eager or lazy."""
    # Put back whatever the test installs, and count every directory read.
    monkeypatch.setattr(
        zipimport.zipimporter, "invalidate_caches", zipimport.zipimporter.invalidate_caches
    )
    calls: list[str] = []
    read = zipimport._read_directory  # type: ignore[attr-defined]

    def counting(path):
        calls.append(path)
        return read(path)

    monkeypatch.setattr(zipimport, "_read_directory", counting)
    return calls


def test_python_311_re_reads_every_archive_on_every_invalidation(tmp_path, reads):
    importer = zipimport.zipimporter(str(archive(tmp_path / "a.zip", "zmod_a")))
    reads.clear()
    for _ in range(3):
        importer.invalidate_caches()
    assert len(reads) == 3  # what the worker paid per task, per importer


def test_an_unchanged_archive_is_read_once_then_only_looked_at(tmp_path, reads):
    importer = zipimport.zipimporter(str(archive(tmp_path / "a.zip", "zmod_a")))
    assert lazy_zip_invalidation() and zip_invalidation_is_lazy()
    reads.clear()
    for _ in range(3):
        importer.invalidate_caches()
    assert reads == [str(tmp_path / "a.zip")]
    assert importer.find_spec("zmod_a") is not None


def read_lazily(folder: Path) -> tuple[Path, zipimport.zipimporter]:
    """An archive of `zmod_a`, and an importer of it that has read it once, lazily."""
    path = archive(folder / "a.zip", "zmod_a")
    importer = zipimport.zipimporter(str(path))
    lazy_zip_invalidation()
    importer.invalidate_caches()
    return path, importer


def test_a_changed_archive_is_read_again_and_its_new_modules_found(tmp_path, reads):
    path, importer = read_lazily(tmp_path)
    assert importer.find_spec("zmod_b") is None
    archive(tmp_path / "next.zip", "zmod_a", "zmod_b").replace(path)
    reads.clear()
    importer.invalidate_caches()
    assert reads == [str(path)]
    assert importer.find_spec("zmod_b") is not None


def test_each_importer_of_one_archive_keeps_its_own_view(tmp_path, reads):
    path = archive(tmp_path / "a.zip", "zmod_a")
    first, second = zipimport.zipimporter(str(path)), zipimport.zipimporter(str(path))
    lazy_zip_invalidation()
    first.invalidate_caches()
    second.invalidate_caches()
    archive(tmp_path / "next.zip", "zmod_a", "zmod_b").replace(path)
    first.invalidate_caches()  # reads the new archive; the second has not looked since
    second.invalidate_caches()
    assert second.find_spec("zmod_b") is not None


def test_a_vanished_archive_empties_its_importer_as_before(tmp_path, reads):
    path, importer = read_lazily(tmp_path)
    path.unlink()
    importer.invalidate_caches()
    assert importer.find_spec("zmod_a") is None


def test_installing_twice_keeps_one_replacement(reads):
    assert lazy_zip_invalidation() is True
    installed = zipimport.zipimporter.invalidate_caches
    assert lazy_zip_invalidation() is False
    assert zipimport.zipimporter.invalidate_caches is installed
