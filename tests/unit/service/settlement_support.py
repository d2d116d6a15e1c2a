"""Test support for the settlement domain: a simulated meter (it alone knows readings and
blindings), tariffs and cycle tariffs, and the meter's real proofs of day and cycle bills.
Not a test module."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from ledger.checkpoint import CheckpointSigner
from service.settlement import Settlement
from service.storage import LedgerStore, open_store
from settlement.cycle_bills import prove_cycle_bill
from settlement.periods import cycle_periods
from settlement.records import (
    ZERO_HASH,
    Bill,
    CycleBill,
    CycleTariff,
    MeterKey,
    MeterRegistration,
    ReadingBatch,
    Tariff,
    bill_coefficients,
    bill_proof_context,
    reading_proof_context,
)
from zkp.group import Scalar
from zkp.pedersen import Commitment
from zkp.rangeproof import RangeProof
from zkp.sigma import LinearCombinationProof

ORIGIN = "zkgrid.test/settlement"
SIGNER = CheckpointSigner.from_private_bytes("zkgrid-test", bytes(range(32)))


def open_memory_store() -> LedgerStore:
    return open_store("sqlite://", SIGNER, ORIGIN)


@dataclass
class Openings:
    """What only the meter knows about a batch: values and blindings in commitment order."""

    values: list[int]
    blindings: list[Scalar]


@dataclass
class SimMeter:
    meter_id: str
    interval_minutes: int = 240
    key: MeterKey = field(default_factory=MeterKey.generate)
    sequence: int = 0
    prev_hash: bytes = ZERO_HASH
    openings: dict[str, Openings] = field(default_factory=dict)
    batches: dict[str, ReadingBatch] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    @property
    def intervals(self) -> int:
        return 1440 // self.interval_minutes

    def registration(self) -> MeterRegistration:
        return MeterRegistration.create(self.key, self.meter_id, self.interval_minutes)

    def readings(self) -> tuple[list[int], list[int]]:
        t = self.intervals
        imports = [self.rng.randrange(0, 5_000) for _ in range(t)]
        exports = [self.rng.randrange(0, 3_000) for _ in range(t)]
        return imports, exports

    def batch(
        self,
        period: str,
        imports: Sequence[int] | None = None,
        exports: Sequence[int] | None = None,
        *,
        advance: bool = True,
    ) -> ReadingBatch:
        """A signed, range-proved batch for ``period``; ``advance`` moves the chain on."""
        if imports is None or exports is None:
            imports, exports = self.readings()
        values = [v for pair in zip(imports, exports, strict=True) for v in pair]
        bundle = RangeProof.prove(
            values, 32, context=reading_proof_context(self.meter_id, period, self.sequence)
        )
        batch = ReadingBatch.create(
            self.key,
            meter_id=self.meter_id,
            period=period,
            interval_minutes=self.interval_minutes,
            sequence=self.sequence,
            prev_hash=self.prev_hash,
            commitments=[c.to_bytes() for c in bundle.commitments],
            range_proof=bundle.proof.to_bytes(),
        )
        if advance:
            self.accept(batch, Openings(values, list(bundle.blindings)))
        return batch

    def accept(self, batch: ReadingBatch, openings: Openings) -> None:
        self.openings[batch.period] = openings
        self.batches[batch.period] = batch
        self.sequence = batch.sequence + 1
        self.prev_hash = batch.batch_hash()

    def bill(self, period: str, tariff: Tariff) -> Bill:
        batch = self.batches[period]
        op = self.openings[period]
        commitments = [Commitment.from_bytes(c) for c in batch.commitments]
        context = bill_proof_context(batch.batch_hash(), tariff.tariff_hash())
        proof, total = LinearCombinationProof.prove(
            bill_coefficients(tariff),
            commitments,
            op.values,
            op.blindings,
            constant=tariff.fixed_charge,
            context=context,
        )
        return Bill(
            meter_id=self.meter_id,
            period=period,
            batch_hash=batch.batch_hash(),
            tariff_hash=tariff.tariff_hash(),
            total=total,
            proof=proof.to_bytes(),
        )

    def plaintext_bill(self, period: str, tariff: Tariff) -> int:
        values = self.openings[period].values
        return tariff.bill_total(values[0::2], values[1::2])

    def cycle_bill(self, tariff: CycleTariff) -> CycleBill:
        """The meter's proven bill of ``tariff``'s cycle (its batches and openings: real)."""
        periods = tariff.periods
        return prove_cycle_bill(
            self.meter_id,
            tariff,
            [self.batches[p] for p in periods],
            [(self.openings[p].values, self.openings[p].blindings) for p in periods],
        )

    def plaintext_cycle_bill(self, tariff: CycleTariff) -> int:
        """The cycle's bill computed in plain integers from the readings."""
        values = [self.openings[p].values for p in tariff.periods]
        return tariff.bill_breakdown([v[0::2] for v in values], [v[1::2] for v in values]).total


def make_tariff(period: str, interval_minutes: int = 240, seed: int = 1) -> Tariff:
    rng = random.Random(seed)
    t = 1440 // interval_minutes
    return Tariff(
        period=period,
        interval_minutes=interval_minutes,
        currency="EUR",
        fixed_charge=rng.randrange(-50_000, 500_000),
        import_price=tuple(rng.randrange(100, 600) for _ in range(t)),
        export_credit=tuple(rng.randrange(0, 200) for _ in range(t)),
    )


def make_cycle_tariff(
    first: str,
    last: str,
    interval_minutes: int = 240,
    *,
    plan: str = "tiered",
    meters: tuple[str, ...] = (),
    tiers: tuple[tuple[int, int], ...] = ((0, 100), (3_000, 150), (12_000, 300)),
    demand_charge: int = 0,
    currency: str = "EUR",
    seed: int = 1,
) -> CycleTariff:
    """A cycle tariff over ``first..last``: time-of-use prices and credits, inclining tiers
    on the cycle's import (Wh starts chosen so a few days of SimMeter readings reach the
    top tier) and, given, a demand charge (micro-currency per kW)."""
    rng = random.Random(seed)
    t = 1440 // interval_minutes
    cycle_periods(first, last)  # a valid cycle
    return CycleTariff(
        plan=plan,
        meters=meters,
        first_period=first,
        last_period=last,
        interval_minutes=interval_minutes,
        currency=currency,
        fixed_charge=rng.randrange(0, 2_000_000),
        import_price=tuple(rng.randrange(50, 300) for _ in range(t)),
        export_credit=tuple(rng.randrange(0, 100) for _ in range(t)),
        tiers=tiers,
        demand_charge=demand_charge,
    )


def registered(settlement: Settlement, *meters: SimMeter) -> None:
    for meter in meters:
        settlement.register_meter(meter.registration())
