"""spark-submit entry point: `spark-submit jobs/doctor.py --env local`."""

from __future__ import annotations

import sys

from scoring.cli import main

if __name__ == "__main__":
    sys.exit(main(["doctor", *sys.argv[1:]]))
