"""bench/RESULTS.md's measured part: Markdown tables from a list of measurements."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from importlib.metadata import version
from statistics import median

from bench.run import SHADOW, SHADOWED, Measurement

SUMMARY_COLUMNS = (
    "rows",
    "shape",
    "model",
    "a s",
    "a rows/s",
    "b rows/s",
    "c rows/s",
    "d rows/s",
    "r rows/s",
    "r/a time",
    "predict s",
    "a/b thr",
    "a/c thr",
    "a/(d+p) time",
    "a MiB",
    "b MiB",
    "d MiB",
    "load1",
)
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


def summary_rows(measurements: Sequence[Measurement]) -> list[dict[str, str]]:
    """One row per (rows, shape, model): rates, ratios and worker peaks."""
    groups: dict[tuple[int, str, str], list[Measurement]] = {}
    for m in measurements:
        groups.setdefault((m.rows, m.shape, m.model), []).append(m)
    table = []
    for (rows, shape, model), items in groups.items():
        best = {v: _best(items, v) for v in "abcdr"}
        secs = {v: m.seconds for v, m in best.items() if m is not None}
        c = best["c"]
        predict = c.predict_seconds if c is not None else None
        row = {"rows": f"{rows:,}", "shape": shape, "model": model}
        row["a s"] = _fmt(secs.get("a"), "{:.1f}")
        for v in "abcdr":
            row[f"{v} rows/s"] = _fmt(rows / secs[v] if v in secs else None, "{:,.0f}")
        row["r/a time"] = _ratio(secs.get("r"), secs.get("a"))  # what reason codes cost
        row["predict s"] = _fmt(predict, "{:.1f}")
        row["a/b thr"] = _ratio(secs.get("b"), secs.get("a"))
        row["a/c thr"] = _ratio(secs.get("c"), secs.get("a"))
        floor = secs["d"] + predict if "d" in secs and predict is not None else None
        row["a/(d+p) time"] = _ratio(secs.get("a"), floor)
        for v in "abd":
            peak = best[v]
            row[f"{v} MiB"] = _fmt(peak.worker_peak_mib if peak else None, "{:.0f}")
        row["load1"] = f"{median(m.load1 for m in items):.1f}"
        table.append(row)
    return table


def _fmt(value: float | None, pattern: str) -> str:
    """`value` formatted, or `-` when it was not measured."""
    return "-" if value is None else pattern.format(value)


def _ratio(top: float | None, bottom: float | None) -> str:
    """top / bottom with two decimals, or `-`."""
    return "-" if top is None or not bottom else f"{top / bottom:.2f}"


def growth_rows(measurements: Sequence[Measurement]) -> list[dict[str, str]]:
    """Per (shape, model, variant): time ratio largest/smallest size against the rows ratio."""
    sizes = sorted({m.rows for m in measurements})
    if len(sizes) < 2:
        return []
    low, high = sizes[0], sizes[-1]
    keys = sorted({(m.shape, m.model, m.variant) for m in measurements})
    table = []
    for shape, model, variant in keys:
        times = {}
        for rows in (low, high):
            found = [
                m
                for m in measurements
                if (m.rows, m.shape, m.model, m.variant) == (rows, shape, model, variant)
            ]
            if found:
                times[rows] = min(m.seconds for m in found)
        if len(times) == 2:
            table.append(
                {
                    "shape": shape,
                    "model": model,
                    "variant": variant,
                    "rows x": f"{high / low:.0f}",
                    "time x": f"{times[high] / times[low]:.1f}",
                }
            )
    return table


def shadow_rows(measurements: Sequence[Measurement]) -> list[dict[str, str]]:
    """Per (rows, shape): two models in one pass (s) against two separate runs ((a) of each)."""
    table = []
    for rows, shape in sorted({(m.rows, m.shape) for m in measurements if m.variant == "s"}):
        items = [m for m in measurements if (m.rows, m.shape) == (rows, shape)]
        both = _best([m for m in items if m.model == SHADOWED], "s")
        alone = [_best([m for m in items if m.model == k], "a") for k in (SHADOWED, SHADOW)]
        runs = sum(m.seconds for m in alone if m is not None) if all(alone) else None
        one = both.seconds if both is not None else None
        table.append(
            {
                "rows": f"{rows:,}",
                "shape": shape,
                "one pass s": _fmt(one, "{:.1f}"),
                "two runs s": _fmt(runs, "{:.1f}"),
                "one pass / two runs": _ratio(one, runs),
            }
        )
    return table


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


def measured_section(measurements: Sequence[Measurement], command: str, batch_size: int) -> str:
    """The generated part of RESULTS.md."""
    return (
        f"Command: `{command}` (Arrow batch {batch_size:,} rows; best of the repetitions)\n\n"
        f"Machine: {machine()}\n\n"
        f"### Summary\n\n{markdown(summary_rows(measurements))}\n"
        f"### Growth with rows\n\n{markdown(growth_rows(measurements))}\n"
        f"### Two models in one pass (s) vs two runs (a + a)\n\n"
        f"{markdown(shadow_rows(measurements))}\n"
        f"### Every measurement\n\n{markdown(raw_rows(measurements))}"
    )
