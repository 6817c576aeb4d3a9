"""What the engine hands a use case's code, as protocols the use case may type against.

Feature functions get plain `Mapping[str, DataFrame]` and a `date`; label functions get a
`TrainingData`, reads pinned to the versions the training run recorded.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

from pyspark.sql import DataFrame


class TrainingData(Protocol):
    """Reads a label function may make, pinned to the training run's table versions."""

    def features(self, as_of: date) -> DataFrame:
        """The features partition of `as_of` (DataError when there is none)."""
        ...

    def source(self, name: str, as_of: date) -> DataFrame:
        """A raw source as known at the end of `as_of` (the rule features get)."""
        ...
