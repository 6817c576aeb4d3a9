"""bench/RESULTS.md's measured part: Markdown tables from a list of measurements."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from importlib.metadata import version
from statistics import median

from bench.parity import TOLERANCE
from bench.results import BenchResults, Measurement, ParityCheck
from bench.run import SHADOW, SHADOWED

SUMMARY_COLUMNS = (
    "rows",
    "table",
    "scenario",
    "shape",
    "model",
    "a s",
    "a rows/s",
    "n rows/s",
    "b rows/s",
    "c rows/s",
    "d rows/s",
    "r rows/s",
    "r/a time",
    "predict s",
    "a/n thr",
    "a/b thr",
    "a/c thr",
    "a/(d+p) time",
    "rows x",
    "a time x",
    "a MiB",
    "n MiB",
    "b MiB",
    "d MiB",
    "r MiB",
    "compiled parity",
    "load1",
)
#: The variants with their own rate column, and those with their own worker-memory column.
RATES, MEMORY = "anbcdr", "anbdr"
#: A summary row's cell: (rows, table, scenario, shape, model).
CellKey = tuple[int, str, str, str, str]
_PACKAGES = ("pyspark", "delta-spark", "mlflow", "scikit-learn", "pandas", "pyarrow", "numpy")


def machine() -> str:
    """One line: CPU, cores, memory, OS, Python and package versions."""
    cpu = "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next((ln.split(":", 1)[1].strip() for ln in info if "model name" in ln), "?")
        with open("/proc/meminfo", encoding="utf-8") as info:
            mem_gib = int(next(ln for ln in info if ln.startswith("MemTotal")).split()[1]) / 2**20
    except (OSError, StopIteration):
        mem_gib = 0.0
    packages = ", ".join(f"{p} {version(p)}" for p in _PACKAGES)
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; {packages}"
    )


def _best(items: Sequence[Measurement], variant: str) -> Measurement | None:
    """The fastest repetition of a variant (least disturbed by other load on the machine)."""
    found = [m for m in items if m.variant == variant]
    return min(found, key=lambda m: m.seconds) if found else None


def _key(m: Measurement | ParityCheck) -> CellKey:
    return (m.rows, m.table, m.scenario, m.shape, m.model)


def summary_rows(
    measurements: Sequence[Measurement], parity: Sequence[ParityCheck] = ()
) -> list[dict[str, str]]:
    """One row per (rows, table, scenario, shape, model): rates, ratios, growth with rows,
    worker peaks and the compiled parity of its repetitions.

    (c) writes no table, so it runs in one scenario only: a row without its own (c) takes
    the (c) of the same rows, table, shape and model. "rows x" / "a time x" set the rows
    and a's time against those of the smallest size of the same table, scenario, shape
    and model: time linear in rows has "a time x" at most "rows x".
    """
    groups: dict[CellKey, list[Measurement]] = {}
    for m in measurements:
        groups.setdefault(_key(m), []).append(m)
    table = []
    for key, items in groups.items():
        rows, name, scenario, shape, model = key
        best = {v: _best(items, v) for v in RATES}
        if best["c"] is None:
            best["c"] = _best([m for m in measurements if _same_but_scenario(m, key)], "c")
        secs = {v: m.seconds for v, m in best.items() if m is not None}
        c = best["c"]
        predict = c.predict_seconds if c is not None else None
        row = {"rows": f"{rows:,}", "table": name, "scenario": scenario, "shape": shape}
        row["model"] = model
        row["a s"] = _fmt(secs.get("a"), "{:.1f}")
        for v in RATES:
            row[f"{v} rows/s"] = _fmt(rows / secs[v] if v in secs else None, "{:,.0f}")
        row["r/a time"] = _ratio(secs.get("r"), secs.get("a"))  # what reason codes cost
        row["predict s"] = _fmt(predict, "{:.1f}")
        row["a/n thr"] = _ratio(secs.get("n"), secs.get("a"))  # what compiling gains
        row["a/b thr"] = _ratio(secs.get("b"), secs.get("a"))
        row["a/c thr"] = _ratio(secs.get("c"), secs.get("a"))
        floor = secs["d"] + predict if "d" in secs and predict is not None else None
        row["a/(d+p) time"] = _ratio(secs.get("a"), floor)
        row["rows x"], row["a time x"] = _growth(groups, key, secs.get("a"))
        for v in MEMORY:
            peak = best[v]
            row[f"{v} MiB"] = _fmt(peak.worker_peak_mib if peak else None, "{:.0f}")
        row["compiled parity"] = parity_cell([p for p in parity if _key(p) == key])
        row["load1"] = f"{median(m.load1 for m in items):.1f}"
        table.append(row)
    return table


def _same_but_scenario(m: Measurement, key: CellKey) -> bool:
    rows, table, _scenario, shape, model = key
    return (m.rows, m.table, m.shape, m.model) == (rows, table, shape, model)


def _growth(
    groups: dict[CellKey, list[Measurement]], key: CellKey, seconds: float | None
) -> tuple[str, str]:
    """("rows x", "a time x") of a summary row against the smallest size of its kind."""
    rows, table, scenario, shape, model = key
    smallest = min(k[0] for k in groups if k[1:] == key[1:])
    base = _best(groups[(smallest, table, scenario, shape, model)], "a")
    if seconds is None or base is None:
        return "-", "-"
    return f"{rows / smallest:.0f}", f"{seconds / base.seconds:.1f}"


def parity_cell(checks: Sequence[ParityCheck]) -> str:
    """The summary's `compiled parity`: `ok` with the largest difference of every
    repetition, or `FAIL` with the worst repetition's numbers; `-` when (a) and (n) did not
    both run."""
    if not checks:
        return "-"
    failed = [c.parity for c in checks if not c.parity.ok]
    if not failed:
        return f"ok, max {max(c.parity.max_abs_diff for c in checks):.3g}"
    worst = failed[0]
    return "FAIL, " + worst.describe().split(": ", 1)[1]


def _fmt(value: float | None, pattern: str) -> str:
    """`value` formatted, or `-` when it was not measured."""
    return "-" if value is None else pattern.format(value)


def _ratio(top: float | None, bottom: float | None) -> str:
    """top / bottom with two decimals, or `-`."""
    return "-" if top is None or not bottom else f"{top / bottom:.2f}"


def growth_rows(measurements: Sequence[Measurement]) -> list[dict[str, str]]:
    """Per (table, scenario, shape, model, variant): time ratio largest/smallest size against
    the rows ratio."""
    sizes = sorted({m.rows for m in measurements})
    if len(sizes) < 2:
        return []
    low, high = sizes[0], sizes[-1]
    keys = sorted({(m.table, m.scenario, m.shape, m.model, m.variant) for m in measurements})
    table = []
    for key in keys:
        times = {}
        for rows in (low, high):
            found = [
                m.seconds
                for m in measurements
                if (m.rows, m.table, m.scenario, m.shape, m.model, m.variant) == (rows, *key)
            ]
            if found:
                times[rows] = min(found)
        if len(times) == 2:
            name, scenario, shape, model, variant = key
            table.append(
                {
                    "table": name,
                    "scenario": scenario,
                    "shape": shape,
                    "model": model,
                    "variant": variant,
                    "rows x": f"{high / low:.0f}",
                    "time x": f"{times[high] / times[low]:.1f}",
                }
            )
    return table


def shadow_rows(measurements: Sequence[Measurement]) -> list[dict[str, str]]:
    """Per (rows, table, scenario, shape): two models in one pass (s) against two separate
    runs ((a) of each)."""
    table = []
    cells = sorted(
        {(m.rows, m.table, m.scenario, m.shape) for m in measurements if m.variant == "s"}
    )
    for cell in cells:
        items = [m for m in measurements if (m.rows, m.table, m.scenario, m.shape) == cell]
        both = _best([m for m in items if m.model == SHADOWED], "s")
        alone = [_best([m for m in items if m.model == k], "a") for k in (SHADOWED, SHADOW)]
        runs = sum(m.seconds for m in alone if m is not None) if all(alone) else None
        one = both.seconds if both is not None else None
        rows, name, scenario, shape = cell
        table.append(
            {
                "rows": f"{rows:,}",
                "table": name,
                "scenario": scenario,
                "shape": shape,
                "one pass s": _fmt(one, "{:.1f}"),
                "two runs s": _fmt(runs, "{:.1f}"),
                "one pass / two runs": _ratio(one, runs),
            }
        )
    return table


def parity_rows(checks: Sequence[ParityCheck]) -> list[dict[str, str]]:
    """Every comparison of (a)'s scores with (n)'s, one row per repetition."""
    return [
        {
            "rows": f"{c.rows:,}",
            "table": c.table,
            "scenario": c.scenario,
            "shape": c.shape,
            "model": c.model,
            "rep": str(c.rep),
            "rows compared": f"{c.parity.rows:,}",
            "unmatched": f"{c.parity.unmatched:,}",
            "max abs diff": f"{c.parity.max_abs_diff:.3g}",
            "label mismatches": f"{c.parity.label_mismatches:,}",
            f"within {TOLERANCE:g}": "yes" if c.parity.ok else "**no**",
        }
        for c in checks
    ]


def markdown(rows: Sequence[dict[str, str]]) -> str:
    """A Markdown table of dicts sharing the same keys."""
    if not rows:
        return "(no rows)\n"
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r[h] for h in header) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def raw_rows(measurements: Sequence[Measurement]) -> list[dict[str, str]]:
    """Every measurement, for the appendix."""
    return [
        {
            "rows": f"{m.rows:,}",
            "table": m.table,
            "scenario": m.scenario,
            "shape": m.shape,
            "model": m.model,
            "variant": m.variant,
            "rep": str(m.rep),
            "s": f"{m.seconds:.2f}",
            "predict s": "" if m.predict_seconds is None else f"{m.predict_seconds:.2f}",
            "peak MiB": f"{m.worker_peak_mib:.0f}",
            "sum MiB": f"{m.workers_sum_mib:.0f}",
            "load1": f"{m.load1:.2f}",
        }
        for m in measurements
    ]


def measured_section(results: BenchResults, command: str, batch_size: int) -> str:
    """The generated part of RESULTS.md."""
    measurements = results.measurements
    return (
        f"Command: `{command}` (Arrow batch {batch_size:,} rows; best of the repetitions)\n\n"
        f"Machine: {machine()}\n\n"
        f"### Summary\n\n{markdown(summary_rows(measurements, results.parity))}\n"
        f"### Compiled parity: (a) against (n), every row, every repetition\n\n"
        f"{markdown(parity_rows(results.parity))}\n"
        f"### Growth with rows\n\n{markdown(growth_rows(measurements))}\n"
        f"### Two models in one pass (s) vs two runs (a + a)\n\n"
        f"{markdown(shadow_rows(measurements))}\n"
        f"### Every measurement\n\n{markdown(raw_rows(measurements))}"
    )
