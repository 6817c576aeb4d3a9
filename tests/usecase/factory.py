"""Tiny use case folders written on the fly, for the loader's and the steps' bad cases.

`write_usecase(folder)` writes a complete, valid use case `tiny`: one CSV event source
`visits` keyed by `visit_id`, entity `shop_id`, Python features (`features.py:build`, the
visit count per shop and a fixed category), a binary model and a trainer. Every file can be
replaced or removed through the arguments, so each test states only what it breaks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

VISITS = """\
name: visits
kind: raw_source
description: Shop visits.
format: csv
file_glob: "visits_*.csv"
keys: [visit_id]
event_time_column: visited_at
columns:
  - {name: visit_id, type: string, nullable: false, description: v}
  - {name: shop_id, type: string, nullable: false, description: s}
  - {name: visited_at, type: timestamp, nullable: false, description: t}
  - {name: spend, type: double, nullable: true, description: p}
"""
FEATURES_CONTRACT = """\
name: features
kind: table
description: Per shop.
columns:
  - {name: shop_id, type: string, nullable: false, description: s}
  - {name: visits, type: int, nullable: false, description: v}
  - {name: spend, type: double, nullable: true, description: p}
  - {name: kind, type: string, nullable: false, allowed: [a, b], description: k}
"""
FEATURES_PY = """\
from pyspark.sql import functions as F


def build(sources, as_of):
    visits = sources["visits"]
    return visits.groupBy("shop_id").agg(
        F.count(F.lit(1)).alias("visits"),
        F.sum("spend").alias("spend"),
        F.lit("a").alias("kind"),
    )
"""
TRAIN_PY = """\
from pyspark.sql import functions as F
from sklearn.linear_model import LogisticRegression


def label(data, as_of):
    return data.features(as_of).select("shop_id", (F.col("visits") > 1).cast("int").alias("label"))


def fit(inputs, labels, seed):
    return LogisticRegression().fit(inputs[["visits"]], labels)
"""


def usecase_doc(**changes: Any) -> dict[str, Any]:
    """The tiny use case's usecase.yaml as a dict, with top-level keys changed or removed
    (a value of None removes the key)."""
    doc: dict[str, Any] = {
        "name": "tiny",
        "entity": ["shop_id"],
        "sources": {"visits": "contracts/visits.yaml"},
        "features": {"python": "features.py:build", "contract": "contracts/features.yaml"},
        "model": {"name": "tiny_model", "task": "binary"},
        "train": {"python": "train.py:fit", "label": "train.py:label"},
    }
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


def write_usecase(
    folder: Path,
    doc: dict[str, Any] | None = None,
    files: dict[str, str | None] | None = None,
) -> Path:
    """Write the tiny use case into `folder`; `files` replaces (or, with None, omits) files."""
    contents: dict[str, str | None] = {
        "contracts/visits.yaml": VISITS,
        "contracts/features.yaml": FEATURES_CONTRACT,
        "features.py": FEATURES_PY,
        "train.py": TRAIN_PY,
        **(files or {}),
    }
    for name, text in contents.items():
        if text is None:
            continue
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    text = yaml.safe_dump(doc if doc is not None else usecase_doc(), sort_keys=False)
    (folder / "usecase.yaml").write_text(text, encoding="utf-8")
    return folder


def write_visits(raw_root: Path, day: str, lines: list[str]) -> None:
    """One day's visits drop: `visit_id,shop_id,visited_at,spend` lines under a header."""
    folder = raw_root / "visits" / day
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join(["visit_id,shop_id,visited_at,spend", *lines]) + "\n"
    (folder / f"visits_{day}.csv").write_text(text, encoding="utf-8")
