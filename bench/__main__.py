"""`python -m bench --sizes 1M,4M,16M`: run the benchmark, write the report into RESULTS.md.

The generated tables replace the text between the `measured:start` / `measured:end` markers
of the report file (the written findings around them stay); raw measurements also go to
`<work>/results.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from bench.models import MODELS
from bench.report import measured_section
from bench.run import SHAPES, Settings, as_rows, bench_config, parse_sizes, run_bench
from scoring.core.errors import ConfigError

START, END = "<!-- measured:start -->", "<!-- measured:end -->"
DEFAULT_SIZES = "1M,4M,16M"


def replace_measured(report: Path, section: str) -> None:
    """Put `section` between the markers of `report` (appended, with markers, if absent)."""
    text = report.read_text(encoding="utf-8") if report.exists() else ""
    block = f"{START}\n{section}{END}"
    if START in text and END in text:
        before, rest = text.split(START, 1)
        text = before + block + rest.split(END, 1)[1]
    else:
        text = text + ("\n" if text else "") + block + "\n"
    report.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, write the report."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"rows (default {DEFAULT_SIZES})")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="few-large,many-small")
    parser.add_argument("--models", default=",".join(MODELS), help="tree,linear")
    parser.add_argument(
        "--variants",
        default="a,b,c,d,r,s",
        help="subset of a,b,c,d,r,s (r: a with reason codes; s: the tree and linear models in one pass)",
    )
    parser.add_argument("--reps", type=int, default=2, help="repetitions (order alternates)")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="Arrow batch rows (default scoring.batch_size)"
    )
    parser.add_argument("--work", type=Path, default=Path("bench/.work"), help="scratch folder")
    parser.add_argument("--report", type=Path, default=Path("bench/RESULTS.md"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    work = args.work.resolve()
    try:
        batch_size = bench_config(work, args.batch_size).scoring.batch_size
    except ConfigError as exc:
        print(f"bench: config error: {exc}", file=sys.stderr)
        return 2
    settings = Settings(
        sizes=parse_sizes(args.sizes),
        shapes=tuple(s for s in args.shapes.split(",") if s),
        models=tuple(m for m in args.models.split(",") if m),
        reps=args.reps,
        variants=tuple(v for v in args.variants.split(",") if v),
        work=work,
        batch_size=batch_size,
    )
    started = time.time()
    measurements = run_bench(settings, lambda line: print(line, file=sys.stderr, flush=True))
    (settings.work / "results.json").write_text(json.dumps(as_rows(measurements), indent=1))
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    replace_measured(args.report, measured_section(measurements, command, batch_size))
    print(f"{len(measurements)} measurements in {time.time() - started:.0f} s -> {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
