"""SQL text built from values: every literal and identifier escaped, never pasted in.

Delta's `replaceWhere` and MERGE conditions are SQL strings; a model name, a version or a
date that reaches them must not be able to change the predicate (`evil' OR 'a'='a`).

Example:
    >>> predicate(("as_of_date", date(2026, 3, 1)), ("model_name", "claims_cost"))
    "`as_of_date` = DATE'2026-03-01' AND `model_name` = 'claims_cost'"
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any


def identifier(name: str) -> str:
    """A column name back-quoted, with back-quotes inside doubled."""
    return "`" + name.replace("`", "``") + "`"


def literal(value: Any) -> str:
    """A SQL literal of a string, date, int, float or bool (None is NULL)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return f"TIMESTAMP'{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE'{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__} {value!r}")


def predicate(*equalities: tuple[str, Any]) -> str:
    """`col1 = v1 AND col2 = v2 ...`, each column quoted and each value a literal."""
    return " AND ".join(f"{identifier(c)} = {literal(v)}" for c, v in equalities)


def is_in(column: str, values: Sequence[Any]) -> str:
    """`col IN (v1, v2, ...)`, the column quoted and each value a literal (FALSE when empty)."""
    if not values:
        return "FALSE"
    return f"{identifier(column)} IN ({', '.join(literal(v) for v in values)})"


def any_of(predicates: Sequence[str]) -> str:
    """`(p1) OR (p2) ...` of predicates built here; one is returned as it is, none is FALSE."""
    if not predicates:
        return "FALSE"
    if len(predicates) == 1:
        return predicates[0]
    return " OR ".join(f"({p})" for p in predicates)


def join_condition(keys: Sequence[str], left: str = "t", right: str = "s") -> str:
    """`t.k1 = s.k1 AND ...` for a MERGE on `keys`."""
    return " AND ".join(f"{left}.{identifier(k)} = {right}.{identifier(k)}" for k in keys)
