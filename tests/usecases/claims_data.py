"""Raw drops of the `claims_cost` test use case: Parquet policies, CSV claims, two days.

Deterministic: the same call writes the same files. Day 1 is the insurers' initial load
(every policy, a year of claims); day 2 brings a new version of one policy (its region),
a new policy, new claims, a claim reported late (dated day 1) and one bad claim.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DAY1, DAY2 = date(2026, 3, 1), date(2026, 3, 2)
INSURERS = ("INS01", "INS02")
POLICIES_PER_INSURER = 60
PRODUCTS = ("auto", "home", "travel")
REGIONS = ("north", "south", None)
CLAIM_HEADER = "claim_id,insurer_id,policy_no,reported_on,amount,cause"
CAUSES = ("collision", "theft", "water", "fire", "other")


def policies(rng: np.random.Generator) -> list[dict[str, object]]:
    """Every policy of the initial load."""
    rows = []
    for insurer in INSURERS:
        for number in range(1, POLICIES_PER_INSURER + 1):
            rows.append(
                {
                    "insurer_id": insurer,
                    "policy_no": 1000 + number,
                    "product": PRODUCTS[number % 3],
                    "insured_value": float(rng.integers(5, 500)) * 1000.0,
                    "start_date": DAY1 - timedelta(days=int(rng.integers(30, 2000))),
                    "region": REGIONS[number % 3],
                }
            )
    return rows


def claims(rng: np.random.Generator, rows: list[dict[str, object]]) -> list[str]:
    """A year of claims before day 1: riskier products and bigger values claim more."""
    lines, number = [], 1
    for policy in rows:
        rate = {"auto": 1.5, "home": 0.8, "travel": 0.4}[str(policy["product"])]
        for _ in range(int(rng.poisson(rate))):
            day = DAY1 - timedelta(days=int(rng.integers(0, 365)))
            amount = float(policy["insured_value"]) * float(rng.uniform(0.001, 0.02))  # type: ignore[arg-type]
            cause = CAUSES[int(rng.integers(0, len(CAUSES)))]
            lines.append(
                f"CL{number},{policy['insurer_id']},{policy['policy_no']},{day},{amount:.2f},{cause}"
            )
            number += 1
    return lines


def write_parquet(folder: Path, name: str, rows: list[dict[str, object]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    schema = pa.schema(
        [
            ("insurer_id", pa.string()),
            ("policy_no", pa.int64()),
            ("product", pa.string()),
            ("insured_value", pa.float64()),
            ("start_date", pa.date32()),
            ("region", pa.string()),
        ]
    )
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / name)


def write_csv(folder: Path, name: str, lines: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join([CLAIM_HEADER, *lines]) + "\n", encoding="utf-8")


def write_claims_drops(raw_root: Path, seed: int = 3) -> dict[str, int]:
    """Write both days under `raw_root`; return the count of claim lines per day."""
    rng = np.random.default_rng(seed)
    initial = policies(rng)
    first_claims = claims(rng, initial)
    for insurer in INSURERS:
        mine = [p for p in initial if p["insurer_id"] == insurer]
        write_parquet(raw_root / "policies" / DAY1.isoformat(), f"policies_{insurer}.parquet", mine)
    write_csv(raw_root / "claims" / DAY1.isoformat(), "claims_day1.csv", first_claims)
    moved = dict(initial[0], region="north")  # a new version of INS01/1001 (was south)
    new = dict(initial[1], policy_no=5000, start_date=DAY2)
    write_parquet(raw_root / "policies" / DAY2.isoformat(), "policies_INS01.parquet", [moved, new])
    second = [
        f"CL9001,INS01,1001,{DAY2},1200.00,collision",
        f"CL9002,INS02,1002,{DAY2},300.50,water",
        f"CL9003,INS01,1003,{DAY1},80.00,other",  # reported on day 1, delivered on day 2
        "CL9004,INS01,1004,not-a-date,10.00,fire",  # quarantined: bad_type:reported_on
        *(f"CL{9010 + i},INS02,{1010 + i},{DAY2},{50 + i}.00,theft" for i in range(6)),
    ]
    write_csv(raw_root / "claims" / DAY2.isoformat(), "claims_day2.csv", second)
    return {"day1": len(first_claims), "day2": len(second)}
