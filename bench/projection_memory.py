"""Memory of the settlement projection (``settlement.rules.LedgerState``) per registered
meter and per batch or bill entry, measured with tracemalloc.

``python -m bench.projection_memory --json [--meters 1000 --periods 30]``

The service's projection and the auditor hold this state in memory: it grows with the
ledger (meters, batches, bills), not with time. The records are real registrations
(signed); batches and bills are represented as the projection holds them, a
:class:`settlement.rules.Ref` per period (index, record digest, leaf hash).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tracemalloc
from collections.abc import Sequence

from settlement import rules
from settlement.periods import period_of_ordinal, period_ordinal
from settlement.records import MeterKey, MeterRegistration


def _ref(index: int, tag: bytes) -> rules.Ref:
    return rules.Ref(
        index,
        hashlib.sha256(tag + b"%d" % index).digest(),
        hashlib.sha256(b"leaf %d" % index).digest(),
    )


def _grown(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> int:
    return sum(stat.size_diff for stat in after.compare_to(before, "filename"))


def measure(meters: int, periods: int) -> dict[str, int]:
    keys = [MeterKey.generate() for _ in range(min(meters, 50))]
    state = rules.LedgerState()
    index = 0
    tracemalloc.start()
    try:
        start = tracemalloc.take_snapshot()
        for m in range(meters):
            reg = MeterRegistration.create(keys[m % len(keys)], f"meter-{m:05d}", 15)
            rules.apply(state, reg, _ref(index, b"registration"))
            index += 1
        registered = tracemalloc.take_snapshot()
        first = period_ordinal("2026-11-01")
        for d in range(periods):
            period = period_of_ordinal(first + d)
            for meter in state.meters.values():
                batch = _ref(index, b"batch")
                meter.batches[period] = batch
                meter.next_sequence += 1
                meter.last_batch_hash = batch.digest
                meter.bills[period] = _ref(index + 1, b"bill")
                index += 2
        filled = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    return {
        "bytes_per_meter": round(_grown(start, registered) / meters),
        "bytes_per_batch_or_bill": round(_grown(registered, filled) / (2 * meters * periods)),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--periods", type=int, default=30)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = {"benchmark": "projection-memory", "meters": args.meters, "periods": args.periods}
    result.update(measure(args.meters, args.periods))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
