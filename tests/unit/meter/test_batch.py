"""MeterClient offline: batches commit to the readings, the range proof verifies with the
documented context, the chain links, and the bill proof gives the plaintext formula."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from meter.client import (
    BatchConflictError,
    MeterClient,
    build_batch_in_home,
    prove_bill_from_openings,
)
from meter.readings import DayReadings
from settlement.records import (
    ZERO_HASH,
    Bill,
    ReadingBatch,
    Tariff,
    bill_coefficients,
    bill_proof_context,
)
from zkgrid.errors import InvalidArgumentError
from zkp.pedersen import Commitment, commit
from zkp.rangeproof import RangeProof
from zkp.sigma import LinearCombinationProof

INTERVAL = 240  # T = 6 keeps proving fast (12 values, padded to 16)


def _readings(period: str, base: int = 0) -> DayReadings:
    imports = [base + 100 * (i + 1) for i in range(6)]
    exports = [0, 0, 350 + base, 4294967295, 0, 12]
    return DayReadings.from_lists(period, INTERVAL, imports, exports)


def _context(meter_id: str, period: str, sequence: int) -> bytes:
    mid = meter_id.encode()
    per = period.encode()
    return (
        b"zkgrid/readings v1"
        + len(mid).to_bytes(4, "big")
        + mid
        + len(per).to_bytes(4, "big")
        + per
        + sequence.to_bytes(8, "big")
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[MeterClient]:
    MeterClient.keygen(tmp_path / "home", "meter-7", INTERVAL)
    c = MeterClient(tmp_path / "home")
    yield c
    c.close()


def test_batch_commits_to_the_openings_and_verifies(client: MeterClient) -> None:
    readings = _readings("2026-11-21")
    batch = client.build_batch(readings)
    assert batch.meter_id == "meter-7"
    assert batch.sequence == 0
    assert batch.prev_hash == ZERO_HASH
    stored = client.store.batch("2026-11-21")
    assert stored is not None
    assert list(stored.values) == readings.values()
    assert stored.batch == batch.encode()
    assert stored.batch_hash == hashlib.sha256(batch.encode()).digest()
    # Commitments open to [import_0, export_0, import_1, ...] with the stored blindings.
    for c, v, r in zip(batch.commitments, stored.values, stored.blindings, strict=True):
        assert Commitment.from_bytes(c) == commit(v, r)
    commitments = [Commitment.from_bytes(c) for c in batch.commitments]
    proof = RangeProof.from_bytes(batch.range_proof)
    proof.verify(commitments, 32, _context("meter-7", "2026-11-21", 0))
    with pytest.raises(Exception, match="does not verify"):
        proof.verify(commitments, 32, _context("meter-7", "2026-11-21", 1))
    batch.verify_signature(client.home.public_key)
    assert ReadingBatch.decode(batch.encode()) == batch


def test_same_readings_same_batch_different_readings_refused(client: MeterClient) -> None:
    batch = client.build_batch(_readings("2026-11-21"))
    assert client.build_batch(_readings("2026-11-21")) == batch
    with pytest.raises(BatchConflictError):
        client.build_batch(_readings("2026-11-21", base=1))


def test_next_period_waits_for_acceptance_then_chains(client: MeterClient) -> None:
    first = client.build_batch(_readings("2026-11-21"))
    with pytest.raises(BatchConflictError, match="not accepted"):
        client.build_batch(_readings("2026-11-22"))
    client.store.mark_accepted("2026-11-21", b"receipt")
    second = client.build_batch(_readings("2026-11-22"))
    assert second.sequence == 1
    assert second.prev_hash == first.batch_hash()
    RangeProof.from_bytes(second.range_proof).verify(
        [Commitment.from_bytes(c) for c in second.commitments],
        32,
        _context("meter-7", "2026-11-22", 1),
    )


def test_interval_must_match_the_registration(client: MeterClient) -> None:
    readings = DayReadings.from_lists("2026-11-21", 720, [1, 2], [3, 4])
    with pytest.raises(InvalidArgumentError, match="720-minute"):
        client.build_batch(readings)


def test_build_batch_in_home_for_worker_processes(tmp_path: Path) -> None:
    MeterClient.keygen(tmp_path / "h", "m-2", INTERVAL)
    encoded = build_batch_in_home(tmp_path / "h", _readings("2026-11-21"))
    assert ReadingBatch.decode(encoded).meter_id == "m-2"


def test_bill_proof_equals_plaintext_formula(client: MeterClient) -> None:
    readings = _readings("2026-11-21")
    batch = client.build_batch(readings)
    stored = client.store.batch("2026-11-21")
    assert stored is not None
    tariff = Tariff(
        period="2026-11-21",
        interval_minutes=INTERVAL,
        currency="EUR",
        fixed_charge=-450_000,
        import_price=(160, 260, 260, 260, 410, 260),
        export_credit=(80, 80, 60, 60, 80, 80),
    )
    expected = (
        tariff.fixed_charge
        + sum(p * v for p, v in zip(tariff.import_price, readings.imports, strict=True))
        - sum(c * v for c, v in zip(tariff.export_credit, readings.exports, strict=True))
    )
    assert expected < 0  # the large export makes it a credit
    bill = prove_bill_from_openings(stored, tariff, "meter-7")
    assert bill.total == expected
    assert bill.batch_hash == batch.batch_hash()
    assert bill.tariff_hash == tariff.tariff_hash()
    context = bill_proof_context(batch.batch_hash(), tariff.tariff_hash())
    commitments = [Commitment.from_bytes(c) for c in batch.commitments]
    proof = LinearCombinationProof.from_bytes(bill.proof)
    proof.verify(bill_coefficients(tariff), commitments, bill.total, tariff.fixed_charge, context)
    with pytest.raises(Exception, match="fails"):
        proof.verify(
            bill_coefficients(tariff), commitments, bill.total + 1, tariff.fixed_charge, context
        )
    assert Bill.decode(bill.encode()) == bill
    other = Tariff("2026-11-21", INTERVAL, "EUR", 0, (1,) * 6, (0,) * 6)
    assert prove_bill_from_openings(stored, other, "meter-7").total == sum(readings.imports)
