"""Regenerate tests/vectors/cycle/bills.json: cycle bills with real circuit proofs.

    .venv/bin/python tests/vectors/cycle/make_cycle_bill_vectors.py

Each vector holds a cycle tariff, the meter's batches of the cycle and its cycle bill
as canonical record bytes (hex), with the readings the bill was proven from (test data,
public here). ``tests/unit/settlement/test_cycle_bill_vectors.py`` checks that every
stored bill still decodes and verifies (docs/notes/r1cs.md (C10)) and that its total is
the tariff's bill of those readings: later versions of zkgrid must keep verifying these
bytes. Do not regenerate them to make a failing test pass (a failure means the proof
system, the circuit or a record format changed, and old bills would stop verifying).

The range proofs, blindings and circuit proofs are randomized: a regeneration gives
other bytes with the same meaning.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import the repository's test helpers
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from settlement.cycle_bills import prove_cycle_bill
from tests.unit.settlement.cycle_bill_support import METER, make_cycle, tariff

OUT = Path(__file__).with_name("bills.json")
FIRST, LAST = "2026-11-01", "2026-11-02"
IMPORTS = [[900, 1200, 3000, 2500, 400, 0], [700, 1100, 2900, 4100, 350, 20]]
EXPORTS = [[0, 800, 1500, 200, 0, 0], [0, 600, 1800, 100, 0, 0]]
PLANS: dict[str, dict[str, Any]] = {
    "inclining tiers": {"tiers": ((0, 100), (5_000, 150), (12_000, 400))},
    "declining tiers": {"tiers": ((0, 400), (5_000, 150), (12_000, 100))},
    "demand charge": {"demand_charge": 12_000_000},
    "tiers and demand": {"tiers": ((0, 100), (5_000, 150)), "demand_charge": 8_000_000},
}


def main() -> None:
    cycle = make_cycle(FIRST, LAST, IMPORTS, EXPORTS)
    vectors = []
    for name, fields in PLANS.items():
        plan = tariff(FIRST, LAST, plan=name.replace(" ", "-"), **fields)
        bill = prove_cycle_bill(METER, plan, cycle.batches, cycle.openings)
        vectors.append(
            {
                "name": name,
                "imports": IMPORTS,
                "exports": EXPORTS,
                "tariff": plan.encode().hex(),
                "batches": [batch.encode().hex() for batch in cycle.batches],
                "bill": bill.encode().hex(),
                "total": bill.total,
            }
        )
    OUT.write_text(json.dumps({"version": 1, "vectors": vectors}, indent=1) + "\n")


if __name__ == "__main__":
    main()
