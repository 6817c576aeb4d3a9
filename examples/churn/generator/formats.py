"""How a source writes its lines (CSV, JSON lines), and the rendering of rows with their dirt."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Final, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scoring.usecase import Contract, ContractError

from .dirt import (
    bad_text,
    defect_columns,
    is_json_string,
    replace_rows,
    split_at_random,
    take_rows,
)
from .knobs import CODE, FIELD_KINDS, GARBAGE_LINE, CodeArray, IntArray

# --- malformations -----------------------------------------------------------------------


def _cut(lines: pa.Array, chars: int) -> pa.Array:
    """Lines missing their last `chars` characters, as after an interrupted write."""
    return pc.utf8_slice_codeunits(lines, 0, -chars)


def _garbage(lines: pa.Array) -> pa.Array:
    """An error page where the lines should be."""
    return pa.repeat(pa.scalar(GARBAGE_LINE, pa.string()), len(lines))


def _wrong_delimiter(lines: pa.Array) -> pa.Array:
    """CSV lines written with `;`, a one-field line for a comma-separated reader."""
    return pc.replace_substring(lines, ",", ";")


# --- formats -----------------------------------------------------------------------------


class Format(Protocol):
    """How a source writes a field and a line, and how a line breaks."""

    malformations: tuple[Callable[[pa.Array], pa.Array], ...]

    def encode(self, text: pa.Array, as_string: bool) -> pa.Array:
        """The field text as written in a line, nulls included."""
        ...

    def join(self, names: tuple[str, ...], fields: list[pa.Array]) -> pa.Array:
        """One line per row from the encoded fields, in contract order."""
        ...


class _JsonLines:
    """JSON lines: strings quoted, numbers and booleans bare, nulls `null`."""

    malformations: tuple[Callable[[pa.Array], pa.Array], ...] = (
        partial(_cut, chars=1),
        partial(_cut, chars=25),
        _garbage,
    )

    def encode(self, text: pa.Array, as_string: bool) -> pa.Array:
        """Quote strings (the values hold no quotes or backslashes); null becomes `null`."""
        if as_string:
            text = pc.binary_join_element_wise('"', text, '"', "")
        return pc.fill_null(text, "null")

    def join(self, names: tuple[str, ...], fields: list[pa.Array]) -> pa.Array:
        """`{"name":value,...}` with the keys in contract order."""
        parts: list[Any] = []
        for i, (name, field) in enumerate(zip(names, fields, strict=True)):
            parts += [('{"' if i == 0 else ',"') + name + '":', field]
        return pc.binary_join_element_wise(*parts, "}", "")


class _Csv:
    """CSV: comma separated, minimal RFC 4180 quoting, nulls empty."""

    malformations: tuple[Callable[[pa.Array], pa.Array], ...] = (
        _wrong_delimiter,
        partial(_cut, chars=30),
        _garbage,
    )

    def encode(self, text: pa.Array, as_string: bool) -> pa.Array:
        """Quote a field only when it holds a comma or a quote; null becomes empty."""
        text = pc.fill_null(text, "")
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
        return pc.if_else(pc.match_substring_regex(text, '[,"]'), quoted, text)

    def join(self, names: tuple[str, ...], fields: list[pa.Array]) -> pa.Array:
        """Fields joined by commas."""
        return pc.binary_join_element_wise(*fields, ",")


JSON_LINES: Final = _JsonLines()
CSV: Final = _Csv()


# --- rendering ---------------------------------------------------------------------------


def render(
    contract: Contract,
    texts: dict[str, pa.Array],
    codes: CodeArray,
    rng: np.random.Generator,
    fmt: Format,
) -> pa.Array:
    """The lines of rows given as clean column texts, each spoiled as its code says."""
    if set(texts) != set(contract.column_names):
        differ = sorted(set(texts) ^ set(contract.column_names))
        raise ContractError(f"{contract.path}: the demo generator does not fill {differ}")
    fields = {c.name: fmt.encode(texts[c.name], is_json_string(c)) for c in contract.columns}
    for kind in FIELD_KINDS:
        rows = np.flatnonzero(codes == CODE[kind])
        if rows.size:
            _spoil_fields(kind, rows, contract, texts, fields, rng, fmt)
    lines = fmt.join(contract.column_names, [fields[name] for name in contract.column_names])
    return _malform(lines, np.flatnonzero(codes == CODE["malformed"]), rng, fmt)


def _spoil_fields(
    kind: str,
    rows: IntArray,
    contract: Contract,
    texts: dict[str, pa.Array],
    fields: dict[str, pa.Array],
    rng: np.random.Generator,
    fmt: Format,
) -> None:
    """Give one field of each of `rows` the defect `kind`, in place in `fields`."""
    columns = defect_columns(contract, kind)
    for spec, hit in zip(columns, split_at_random(rng, rows, len(columns)), strict=True):
        if hit.size:
            bad, as_string = bad_text(kind, spec, take_rows(texts[spec.name], hit), rng)
            fields[spec.name] = replace_rows(fields[spec.name], hit, fmt.encode(bad, as_string))


def _malform(lines: pa.Array, rows: IntArray, rng: np.random.Generator, fmt: Format) -> pa.Array:
    """`lines` with the lines at `rows` broken, each by one of the format's malformations."""
    groups = split_at_random(rng, rows, len(fmt.malformations))
    for malformation, hit in zip(fmt.malformations, groups, strict=True):
        if hit.size:
            lines = replace_rows(lines, hit, malformation(take_rows(lines, hit)))
    return lines
