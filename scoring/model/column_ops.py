"""Column operations of the vectorised preprocessing (`scoring.model.vectorised`).

Each operation redoes one fitted scikit-learn transformer's `transform` on whole columns with
numpy / pandas (no Python loop per row), step for step as scikit-learn does it, so the output
is the same bit for bit: the same dtype at every step (float32 stays float32 where scikit-learn
keeps it), the same in-place arithmetic, the same missing-value rules (an object NaN is missing
for `missing_values=np.nan`, None is not).

Columns travel as a list of `Column` (one array) or `OneHot` (the codes of one encoded input;
its 0/1 columns are written straight into the output matrix, never built one by one).
Their plain-JSON form is in `scoring.model.column_json`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

NAN = float("nan")
_FLOATS = (np.dtype("float64"), np.dtype("float32"), np.dtype("float16"))  # FLOAT_DTYPES


@dataclass(frozen=True, eq=False)
class Column:
    """One column: the input column it comes from (for messages) and its values."""

    name: str
    values: np.ndarray


@dataclass(frozen=True, eq=False)
class OneHot:
    """The one-hot columns of one input: per row the index of its 1, or -1 for all zeros."""

    name: str
    codes: np.ndarray  # int64
    width: int
    dtype: np.dtype

    def columns(self) -> list[Column]:
        """The 0/1 columns, built when a later step needs them one by one."""
        return [
            Column(f"{self.name}[{j}]", (self.codes == j).astype(self.dtype))
            for j in range(self.width)
        ]


Item = Column | OneHot


def dense(items: Sequence[Item]) -> list[Column]:
    """The items as single columns (one-hot blocks expanded)."""
    out: list[Column] = []
    for item in items:
        out += item.columns() if isinstance(item, OneHot) else [item]
    return out


def _common_dtype(columns: Sequence[Column], floats: bool) -> np.dtype:
    """The dtype scikit-learn's `check_array` gives these columns together: their common
    type, or with `floats` (dtype=FLOAT_DTYPES) that type if a float, else float64."""
    common = np.result_type(*[c.values.dtype for c in columns]) if columns else np.dtype("f8")
    if floats and common not in _FLOATS:
        return np.dtype("float64")
    return common


def _cast(column: Column, dtype: np.dtype) -> np.ndarray:
    """A writable copy of the column in `dtype`; a text value that is no number is an error
    naming the column."""
    try:
        return column.values.astype(dtype, copy=True)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"column '{column.name}': cannot convert to {dtype} ({exc})") from exc


def missing_mask(values: np.ndarray, missing: Any) -> np.ndarray:
    """scikit-learn's `_get_mask`: NaN (float NaN; for objects `x != x`) or None."""
    if values.dtype.kind in "iub":
        return np.zeros(len(values), dtype=bool)
    if values.dtype.kind == "f":
        return np.isnan(values) if missing is not None else np.zeros(len(values), dtype=bool)
    mask = np.asarray(pd.isna(values))  # fast candidates; exact test on them only
    where = np.flatnonzero(mask)
    if len(where):
        picked = values[where]
        exact = _is_none(picked) if missing is None else np.not_equal(picked, picked)
        mask[where] = exact.astype(bool)
    return mask


def _is_none(values: np.ndarray) -> np.ndarray:
    """Per object value whether it is None (numpy compares an object array elementwise)."""
    return np.asarray(values == None, dtype=bool)  # noqa: E711


def lookup(values: np.ndarray, categories: np.ndarray, index: pd.Index) -> np.ndarray:
    """Per value the position of its category, -1 when unknown; missing values (None, NaN)
    match only a missing category of the same kind, as in scikit-learn's `_check_unknown`."""
    codes = np.asarray(index.get_indexer(values), dtype="int64")
    if categories.dtype.kind != "O":
        return codes
    unknown = np.flatnonzero(codes < 0)  # a missing value is never a regular category
    missing = unknown[np.asarray(pd.isna(values[unknown]), dtype=bool)]
    if len(missing):
        picked = values[missing]
        codes[missing] = -1
        for marker, at in _missing_categories(categories).items():
            hit = _is_none(picked) if marker == "none" else np.not_equal(picked, picked)
            codes[missing[hit.astype(bool)]] = at
    return codes


def _missing_categories(categories: np.ndarray) -> dict[str, int]:
    """Where None and NaN are among object categories (scikit-learn sorts them last)."""
    found = {}
    for at, category in enumerate(categories):
        if category is None:
            found["none"] = at
        elif isinstance(category, float) and math.isnan(category):
            found["nan"] = at
    return found


def category_index(categories: np.ndarray) -> pd.Index:
    """The lookup index of fitted categories (object categories without their missing ones)."""
    if categories.dtype.kind == "O":
        skip = set(_missing_categories(categories).values())
        regular = [c for i, c in enumerate(categories) if i not in skip]
        return pd.Index(np.array(regular, dtype=object), dtype=object)
    return pd.Index(categories)


def unknown_error(column: Column, codes: np.ndarray) -> ValueError:
    """scikit-learn's error for categories not seen in fit, naming the column."""
    seen = pd.unique(column.values[codes < 0])
    shown = sorted(map(repr, seen))[:10]
    return ValueError(
        f"Found unknown categories [{', '.join(shown)}] in column '{column.name}' during transform"
    )


@dataclass(frozen=True, eq=False)
class Impute:
    """SimpleImputer: missing values replaced by the fitted statistic per column; a column
    without statistic (all missing in fit) dropped."""

    missing: Any  # None or NaN
    floats: bool  # mean / median: numbers only
    fit_dtype: np.dtype
    fill: np.ndarray  # per column, in fit_dtype
    keep: np.ndarray  # per column, bool

    def width(self, n_in: int) -> int:
        return int(self.keep.sum())

    def apply(self, items: Sequence[Item]) -> list[Item]:
        columns = dense(items)
        dtype = self.fit_dtype if self.fit_dtype.kind == "O" else None
        dtype = dtype or _common_dtype(columns, self.floats)
        out: list[Item] = []
        for i, column in enumerate(columns):
            if not self.keep[i]:
                continue
            values = _cast(column, dtype)
            if self.missing is None and missing_mask(values, NAN).any():
                raise ValueError(  # as scikit-learn: only NaN may be missing besides None
                    f"column '{column.name}': Input contains NaN (the imputer's missing value "
                    "is None)"
                )
            values[missing_mask(values, self.missing)] = self.fill[i]
            out.append(Column(column.name, values))
        return out

    def fuses(self, items: Sequence[Item]) -> bool:
        """Whether an encoder after this imputer can encode the imputed columns straight from
        `items`: text columns and fill values, NaN missing, no column dropped."""
        return (
            self.fit_dtype.kind == "O"
            and self.missing is not None
            and bool(self.keep.all())
            and all(isinstance(i, Column) and i.values.dtype.kind == "O" for i in items)
        )


@dataclass(frozen=True, eq=False)
class Encode:
    """OneHotEncoder (`onehot`) or OrdinalEncoder: each column looked up in its fitted
    categories, unknown values an error naming the column or encoded as configured."""

    kind: str  # "onehot" | "ordinal"
    categories: list[np.ndarray]
    unknown_error: bool
    dtype: np.dtype
    drop: list[int | None] = field(default_factory=list)  # onehot
    unknown_value: Any = None  # ordinal, when not unknown_error
    missing_value: Any = None  # ordinal: encoded_missing_value
    missing_at: list[int | None] = field(default_factory=list)  # ordinal: missing category
    indexes: list[pd.Index] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "indexes", [category_index(c) for c in self.categories])

    def width(self, n_in: int) -> int:
        if self.kind == "ordinal":
            return len(self.categories)
        return sum(
            len(c) - (d is not None) for c, d in zip(self.categories, self.drop, strict=True)
        )

    def apply(self, items: Sequence[Item], imputed: Impute | None = None) -> list[Item]:
        """The encoded columns; with `imputed` (a text imputer that `fuses` with these
        columns), of the imputed columns, without building them."""
        out: list[Item] = []
        for i, column in enumerate(dense(items)):
            codes = lookup(column.values, self.categories[i], self.indexes[i])
            if imputed is not None:
                self._fill(i, column.values, codes, imputed.fill[i])
            if self.unknown_error and (codes < 0).any():
                raise unknown_error(column, codes)
            out.append(
                self._onehot(i, column, codes)
                if self.kind == "onehot"
                else self._ordinal(i, column, codes)
            )
        return out

    def _fill(self, i: int, values: np.ndarray, codes: np.ndarray, fill: Any) -> None:
        """Give the rows an imputer would fill the code of its fill value. Only rows not
        coded as a regular category can be missing, so only those are tested."""
        categories, index = self.categories[i], self.indexes[i]
        suspects = codes < 0
        for at in _missing_categories(categories).values():
            suspects |= codes == at
        rows = np.flatnonzero(suspects)
        rows = rows[missing_mask(values[rows], NAN)]
        codes[rows] = lookup(np.array([fill], dtype=object), categories, index)[0]

    def _onehot(self, i: int, column: Column, codes: np.ndarray) -> OneHot:
        width = len(self.categories[i])
        drop = self.drop[i]
        if drop is not None:
            dropped = codes == drop
            codes = np.where(codes > drop, codes - 1, codes)
            codes[dropped] = -1
            width -= 1
        return OneHot(column.name, codes, width, self.dtype)

    def _ordinal(self, i: int, column: Column, codes: np.ndarray) -> Column:
        unknown = codes < 0
        known = np.where(unknown, 0, codes)
        values = known.astype(self.dtype)
        if self.missing_at[i] is not None:
            values[known == self.missing_at[i]] = self.missing_value
        if not self.unknown_error:
            values[unknown] = self.unknown_value
        return Column(column.name, values)


@dataclass(frozen=True, eq=False)
class Scale:
    """StandardScaler (`x -= mean; x /= scale`) or MinMaxScaler (`x *= multiply;
    x += add`, then clipped), in place on the float dtype scikit-learn uses."""

    kind: str  # "standard" | "minmax"
    first: np.ndarray | None  # standard: mean; minmax: scale_
    second: np.ndarray | None  # standard: scale; minmax: min_
    clip: tuple[float, float] | None = None

    def width(self, n_in: int) -> int:
        return n_in

    def apply(self, items: Sequence[Item]) -> list[Item]:
        columns = dense(items)
        dtype = _common_dtype(columns, floats=True)
        out: list[Item] = []
        for i, column in enumerate(columns):
            values = _cast(column, dtype)
            first = None if self.first is None else self.first[i : i + 1]
            second = None if self.second is None else self.second[i : i + 1]
            if self.kind == "standard":  # scikit-learn casts mean and scale to the data's dtype
                if first is not None:
                    values -= first.astype(dtype)
                if second is not None:
                    values /= second.astype(dtype)
            else:
                values *= first
                values += second
                if self.clip is not None:
                    np.clip(values, self.clip[0], self.clip[1], out=values)
            out.append(Column(column.name, values))
        return out


@dataclass(frozen=True, eq=False)
class Select:
    """ColumnTransformer: per branch, its columns (positions in the input) through its steps;
    the branches' outputs side by side, in order."""

    branches: list[tuple[list[int], list[Op]]]

    def width(self, n_in: int) -> int:
        return sum(chain_width(steps, len(picked)) for picked, steps in self.branches)

    def apply(self, items: Sequence[Item]) -> list[Item]:
        columns = dense(items)
        out: list[Item] = []
        for picked, steps in self.branches:
            out += run(steps, [columns[p] for p in picked])
        return out


Op = Impute | Encode | Scale | Select


def run(steps: Sequence[Op], items: list[Item]) -> list[Item]:
    """The columns after every step, in order (a text imputer and the encoder after it in
    one pass: the imputed text columns are never built)."""
    at = 0
    while at < len(steps):
        step, following = steps[at], steps[at + 1] if at + 1 < len(steps) else None
        if isinstance(step, Impute) and isinstance(following, Encode) and step.fuses(items):
            items, at = following.apply(items, imputed=step), at + 2
        else:
            items, at = step.apply(items), at + 1
    return items


def chain_width(steps: Sequence[Op], n_in: int) -> int:
    """How many columns the steps make of `n_in` columns."""
    for step in steps:
        n_in = step.width(n_in)
    return n_in
