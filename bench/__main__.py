"""`python -m bench --sizes 1M,4M,16M`: run the benchmark, write the report into RESULTS.md.

The generated tables replace the text between the `measured:start` / `measured:end` markers
of the report file (the written findings around them stay); raw measurements and the
compiled-parity checks also go to `<work>/results.json`.
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
from bench.results import SCENARIOS, as_rows
from bench.run import (
    SHAPES,
    VARIANTS,
    Settings,
    bench_config,
    parse_conf,
    parse_sizes,
    run_bench,
)
from bench.stages import event_log_conf
from bench.steady import HISTORY_DAYS
from bench.tables import TABLES
from scoring.core.errors import ConfigError
from scoring.score.current import MERGE, OVERWRITE

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
        default=",".join(VARIANTS),
        help=f"subset of {','.join(VARIANTS)} (n: a with scoring.compiled off; r: a with reason "
        "codes; s: the tree and linear models in one pass)",
    )
    parser.add_argument(
        "--tables",
        default=",".join(TABLES),
        help="demo (the churn demo's mixed types), float (20 float64 features)",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="first (into empty tables), steady (day 2 into full scores / scores_current)",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=HISTORY_DAYS,
        help=f"dates already in scores in the steady scenario (default {HISTORY_DAYS})",
    )
    parser.add_argument(
        "--current-write",
        choices=(MERGE, OVERWRITE),
        default=MERGE,
        help="scoring.current_write of every variant's writes (default merge)",
    )
    parser.add_argument("--reps", type=int, default=2, help="repetitions (order alternates)")
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark setting of the bench's session, set when it starts (repeatable); e.g. "
        "spark.driver.extraJavaOptions=-XX:+UseG1GC for Java's default collector",
    )
    parser.add_argument(
        "--event-log",
        type=Path,
        default=None,
        metavar="DIR",
        help="write Spark's event log (uncompressed) into DIR; `python -m bench.stages DIR` "
        "then splits each timed run's wall time by stage",
    )
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
        logged = event_log_conf(args.event_log) if args.event_log is not None else {}
        spark_conf = {**logged, **parse_conf(args.conf)}
    except ConfigError as exc:
        print(f"bench: config error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    settings = Settings(
        sizes=parse_sizes(args.sizes),
        shapes=_names(args.shapes),
        models=_names(args.models),
        reps=args.reps,
        variants=_names(args.variants),
        work=work,
        batch_size=batch_size,
        tables=_names(args.tables),
        scenarios=_names(args.scenarios),
        history=args.history,
        current_write=args.current_write,
        spark_conf=spark_conf,
    )
    if problem := check_settings(settings):
        print(f"bench: {problem}", file=sys.stderr)
        return 2
    started = time.time()
    results = run_bench(settings, lambda line: print(line, file=sys.stderr, flush=True))
    dump = {"measurements": as_rows(results.measurements), "parity": as_rows(results.parity)}
    (settings.work / "results.json").write_text(json.dumps(dump, indent=1))
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    replace_measured(args.report, measured_section(results, command, batch_size))
    count = len(results.measurements)
    print(f"{count} measurements in {time.time() - started:.0f} s -> {args.report}")
    return 0


def _names(text: str) -> tuple[str, ...]:
    """`a,b,,c` -> ("a", "b", "c")."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def check_settings(settings: Settings) -> str | None:
    """What is wrong with the command line's choices (the first problem), or None."""
    known = {
        "--shapes": (settings.shapes, tuple(SHAPES)),
        "--models": (settings.models, MODELS),
        "--variants": (settings.variants, VARIANTS),
        "--tables": (settings.tables, TABLES),
        "--scenarios": (settings.scenarios, SCENARIOS),
    }
    for option, (chosen, choices) in known.items():
        unknown = [c for c in chosen if c not in choices]
        if unknown or not chosen:
            what = f"unknown '{unknown[0]}'" if unknown else "nothing chosen"
            return f"{option}: {what} (choose from {','.join(choices)})"
    if "steady" in settings.scenarios and settings.history < 1:
        return (
            f"--history: the steady scenario needs at least 1 earlier date, got {settings.history}"
        )
    if settings.reps < 1:
        return f"--reps: at least 1, got {settings.reps}"
    return None


if __name__ == "__main__":
    raise SystemExit(main())
