"""Real batches with their openings, for the cycle bill tests (no service, no store)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from settlement.periods import cycle_periods
from settlement.records import (
    RANGE_PROOF_BITS,
    ZERO_HASH,
    CycleTariff,
    MeterKey,
    ReadingBatch,
    reading_proof_context,
)
from zkp.rangeproof import RangeProof

KEY = MeterKey.from_private_value(0xC0FFEE1234)
METER = "meter-7"


@dataclass
class Cycle:
    """A meter's batches for consecutive periods and the openings it keeps."""

    batches: list[ReadingBatch]
    openings: list[tuple[list[int], list[int]]]
    imports: list[list[int]]
    exports: list[list[int]]


def make_cycle(
    first: str,
    last: str,
    imports: Sequence[Sequence[int]],
    exports: Sequence[Sequence[int]],
    *,
    interval_minutes: int = 240,
    meter_id: str = METER,
) -> Cycle:
    """Commit, range-prove and sign one batch per period (real proofs)."""
    periods = cycle_periods(first, last)
    batches: list[ReadingBatch] = []
    openings: list[tuple[list[int], list[int]]] = []
    prev = ZERO_HASH
    for sequence, (period, day_imp, day_exp) in enumerate(
        zip(periods, imports, exports, strict=True)
    ):
        values = [v for pair in zip(day_imp, day_exp, strict=True) for v in pair]
        bundle = RangeProof.prove(
            values,
            RANGE_PROOF_BITS,
            context=reading_proof_context(meter_id, period, sequence),
        )
        batch = ReadingBatch.create(
            KEY,
            meter_id=meter_id,
            period=period,
            interval_minutes=interval_minutes,
            sequence=sequence,
            prev_hash=prev,
            commitments=[c.to_bytes() for c in bundle.commitments],
            range_proof=bundle.proof.to_bytes(),
        )
        prev = batch.batch_hash()
        batches.append(batch)
        openings.append((values, list(bundle.blindings)))
    return Cycle(batches, openings, [list(d) for d in imports], [list(d) for d in exports])


def tariff(first: str, last: str, **over: Any) -> CycleTariff:
    """A 240-minute (6 intervals a day) cycle tariff; ``over`` replaces fields."""
    fields: dict[str, Any] = {
        "plan": "test-plan",
        "meters": (),
        "first_period": first,
        "last_period": last,
        "interval_minutes": 240,
        "currency": "EUR",
        "fixed_charge": 1_000_000,
        "import_price": (200, 210, 220, 230, 240, 250),
        "export_credit": (50, 50, 60, 60, 70, 70),
        "tiers": (),
        "demand_charge": 0,
    }
    fields.update(over)
    return CycleTariff(**fields)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
