"""Attacks on the settlement service: replays, reordering, forgeries, swapped commitments,
borrowed proofs, wrong bills and racing replicas. Every one is refused and appends nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from service.settlement import Receipt, Settlement
from service.storage import open_store
from settlement.records import (
    Bill,
    MeterKey,
    MeterRegistration,
    ReadingBatch,
    reading_proof_context,
)
from tests.unit.service.settlement_support import (
    ORIGIN,
    SIGNER,
    SimMeter,
    make_tariff,
    open_memory_store,
    registered,
)
from zkgrid.errors import ZkgridError
from zkp.rangeproof import RangeProof

DAY1, DAY2, DAY3 = "2024-05-01", "2024-05-02", "2024-05-03"


@pytest.fixture
def settlement() -> Iterator[Settlement]:
    store = open_memory_store()
    with Settlement(store) as s:
        yield s
    store.close()


def refused(settlement: Settlement, reason: str, call: Callable[[], object]) -> None:
    size = settlement.store.size()
    with pytest.raises(ZkgridError) as info:
        call()
    assert info.value.reason == reason, info.value
    assert settlement.store.size() == size


def fields(batch: ReadingBatch, **over: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "meter_id": batch.meter_id,
        "period": batch.period,
        "interval_minutes": batch.interval_minutes,
        "sequence": batch.sequence,
        "prev_hash": batch.prev_hash,
        "commitments": batch.commitments,
        "range_proof": batch.range_proof,
    }
    out.update(over)
    return out


def unsigned_copy(batch: ReadingBatch, **over: Any) -> ReadingBatch:
    """The batch with fields changed but the original signature (what a thief can do)."""
    f = fields(batch, **over)
    f["commitments"] = tuple(f["commitments"])
    return ReadingBatch(**f, signature=batch.signature)


@pytest.fixture
def world(settlement: Settlement) -> tuple[Settlement, SimMeter, SimMeter]:
    alice, bob = SimMeter("alice"), SimMeter("bob")
    registered(settlement, alice, bob)
    settlement.submit_readings(alice.batch(DAY1))
    settlement.submit_readings(bob.batch(DAY1))
    return settlement, alice, bob


def test_replay_of_a_batch_in_another_period(world: tuple[Settlement, SimMeter, SimMeter]) -> None:
    settlement, alice, _ = world
    old = alice.batches[DAY1]
    # a thief changes the period and chain fields: the signature no longer matches
    stolen = unsigned_copy(old, period=DAY2, sequence=1, prev_hash=old.batch_hash())
    refused(settlement, "SIGNATURE_INVALID", lambda: settlement.submit_readings(stolen))
    # even the meter re-signing yesterday's commitments and proof for today fails: the range
    # proof is bound to (meter, period, sequence)
    resigned = ReadingBatch.create(
        alice.key, **fields(old, period=DAY2, sequence=1, prev_hash=old.batch_hash())
    )
    refused(settlement, "PROOF_INVALID", lambda: settlement.submit_readings(resigned))
    # the replayed original itself is idempotent, not a second entry
    size = settlement.store.size()
    settlement.submit_readings(old)
    assert settlement.store.size() == size


def test_reordering_and_sequence_skips(world: tuple[Settlement, SimMeter, SimMeter]) -> None:
    settlement, alice, _ = world
    day2 = alice.batch(DAY2, advance=False)
    alice.accept(day2, alice.openings.get(DAY1))  # type: ignore[arg-type]  # pretend it went in
    day3 = alice.batch(DAY3, advance=False)  # sequence 2, chained to the unsent day2
    refused(settlement, "CHAIN_BROKEN", lambda: settlement.submit_readings(day3))
    settlement.submit_readings(day2)
    settlement.submit_readings(day3)
    # a fork: another batch with the already-used sequence 1
    fork = SimMeter("alice", key=alice.key)
    fork.sequence, fork.prev_hash = 1, alice.batches[DAY1].batch_hash()
    refused(
        settlement, "CHAIN_BROKEN", lambda: settlement.submit_readings(fork.batch("2024-05-09"))
    )


def test_forged_signatures(world: tuple[Settlement, SimMeter, SimMeter]) -> None:
    settlement, alice, bob = world
    batch = alice.batch(DAY2, advance=False)
    mallory = MeterKey.generate()
    forged = batch.with_signature(mallory.sign(batch.signed_bytes()))
    refused(settlement, "SIGNATURE_INVALID", lambda: settlement.submit_readings(forged))
    # high-S twin of the real signature: valid ECDSA, refused as non-canonical
    from cryptography.hazmat.primitives.asymmetric.utils import (
        decode_dss_signature,
        encode_dss_signature,
    )

    r, s = decode_dss_signature(batch.signature)
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    twin = batch.with_signature(encode_dss_signature(r, n - s))
    refused(settlement, "SIGNATURE_INVALID", lambda: settlement.submit_readings(twin))
    # bob's key signing a batch under alice's id
    as_alice = SimMeter("alice", key=bob.key)
    as_alice.sequence, as_alice.prev_hash = alice.sequence, alice.prev_hash
    refused(
        settlement, "SIGNATURE_INVALID", lambda: settlement.submit_readings(as_alice.batch(DAY2))
    )
    # registering a key without holding it (PoP copied from another registration)
    reg = bob.registration()
    hijack = MeterRegistration("carol", reg.public_key, 240, reg.pop_signature)
    refused(settlement, "SIGNATURE_INVALID", lambda: settlement.register_meter(hijack))
    settlement.submit_readings(batch)


def test_commitments_swapped_between_intervals(
    world: tuple[Settlement, SimMeter, SimMeter],
) -> None:
    settlement, alice, _ = world
    batch = alice.batch(DAY2, advance=False)
    c = list(batch.commitments)
    c[0], c[2] = c[2], c[0]  # import_0 <-> import_1 (moves energy to another price)
    after_signing = unsigned_copy(batch, commitments=tuple(c))
    refused(settlement, "SIGNATURE_INVALID", lambda: settlement.submit_readings(after_signing))
    # the meter itself swapping after proving: the proof's transcript binds the order
    resigned = ReadingBatch.create(alice.key, **fields(batch, commitments=tuple(c)))
    refused(settlement, "PROOF_INVALID", lambda: settlement.submit_readings(resigned))
    d = list(batch.commitments)
    d[0], d[1] = d[1], d[0]  # import_0 <-> export_0
    resigned = ReadingBatch.create(alice.key, **fields(batch, commitments=tuple(d)))
    refused(settlement, "PROOF_INVALID", lambda: settlement.submit_readings(resigned))


def test_range_proof_from_another_batch(world: tuple[Settlement, SimMeter, SimMeter]) -> None:
    settlement, alice, bob = world
    batch = alice.batch(DAY2, advance=False)
    borrowed = ReadingBatch.create(
        alice.key, **fields(batch, range_proof=bob.batches[DAY1].range_proof)
    )
    refused(settlement, "PROOF_INVALID", lambda: settlement.submit_readings(borrowed))
    own_old = ReadingBatch.create(
        alice.key, **fields(batch, range_proof=alice.batches[DAY1].range_proof)
    )
    refused(settlement, "PROOF_INVALID", lambda: settlement.submit_readings(own_old))
    # From now on alice's proofs are verified alone, never in a batch shared with bob's.
    assert settlement.verifier.is_suspect("alice")
    assert not settlement.verifier.is_suspect("bob")
    shared = len(settlement.verifier.range_proofs.batch_sizes)
    refused(settlement, "PROOF_INVALID", lambda: settlement.submit_readings(borrowed))
    settlement.submit_readings(alice.batch(DAY2))  # her honest batch is still accepted
    assert len(settlement.verifier.range_proofs.batch_sizes) == shared
    settlement.submit_readings(bob.batch(DAY2))
    assert len(settlement.verifier.range_proofs.batch_sizes) == shared + 1


def test_out_of_range_readings(world: tuple[Settlement, SimMeter, SimMeter]) -> None:
    """A reading outside [0, 2^32) (2^32 here; q - 5 would be a negative one): no valid proof."""
    settlement, alice, _ = world
    t = alice.intervals
    values = [100] * (2 * t)
    values[1] = 2**32  # one over the 32-bit range
    context = reading_proof_context("alice", DAY2, alice.sequence)
    bundle = RangeProof._prove_unchecked(values, 32, None, context=context, rng=None)
    batch = ReadingBatch.create(
        alice.key,
        meter_id="alice",
        period=DAY2,
        interval_minutes=240,
        sequence=alice.sequence,
        prev_hash=alice.prev_hash,
        commitments=[c.to_bytes() for c in bundle.commitments],
        range_proof=bundle.proof.to_bytes(),
    )
    refused(settlement, "PROOF_INVALID", lambda: settlement.submit_readings(batch))


def _bill(bill: Bill, **over: Any) -> Bill:
    f = {
        k: getattr(bill, k)
        for k in ("meter_id", "period", "batch_hash", "tariff_hash", "total", "proof")
    }
    f.update(over)
    return Bill(**f)


def test_wrong_bills(world: tuple[Settlement, SimMeter, SimMeter]) -> None:
    settlement, alice, bob = world
    tariff = make_tariff(DAY1)
    settlement.publish_tariff(tariff)
    bill = alice.bill(DAY1, tariff)
    for delta in (-1, 1, -1_000_000):
        wrong = _bill(bill, total=bill.total + delta)
        refused(settlement, "PROOF_INVALID", partial(settlement.submit_bill, wrong))
    # the proof of alice's bill presented for bob (another batch): context and commitments differ
    bob_bill = bob.bill(DAY1, tariff)
    refused(
        settlement,
        "PROOF_INVALID",
        lambda: settlement.submit_bill(_bill(bob_bill, proof=bill.proof, total=bill.total)),
    )
    # a cheaper tariff that was never published
    cheap = make_tariff(DAY1, seed=42)
    refused(settlement, "UNKNOWN_TARIFF", lambda: settlement.submit_bill(alice.bill(DAY1, cheap)))
    # alice's bill pointing at bob's batch
    refused(
        settlement,
        "UNKNOWN_BATCH",
        lambda: settlement.submit_bill(_bill(bill, batch_hash=bob_bill.batch_hash)),
    )
    # a total shifted by the group order claims the same residue: refused (sigma.md S2')
    from zkp.group import ORDER

    with pytest.raises(ZkgridError):
        settlement.submit_bill(_bill(bill, total=bill.total + ORDER))
    assert isinstance(settlement.submit_bill(bill), Receipt)
    assert isinstance(settlement.submit_bill(bob_bill), Receipt)


def test_racing_replicas_accept_one_of_two_conflicting_batches(tmp_path: Path) -> None:
    """Two replicas over one SQLite file get two different batches for the same
    (meter, sequence) at once: exactly one is appended."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    meter = SimMeter("m")
    twin = SimMeter("m", key=meter.key)
    with open_store(url, SIGNER, ORIGIN) as s1, open_store(url, SIGNER, ORIGIN) as s2:
        a, b = Settlement(s1), Settlement(s2)
        try:
            a.register_meter(meter.registration())
            b.catch_up()
            batches = [meter.batch(DAY1, advance=False), twin.batch(DAY2, advance=False)]
            outcomes: list[str] = []
            barrier = threading.Barrier(2)

            def submit(replica: Settlement, batch: ReadingBatch) -> None:
                barrier.wait()
                try:
                    replica.submit_readings(batch)
                    outcomes.append("ok")
                except ZkgridError as exc:
                    outcomes.append(exc.reason)

            threads = [
                threading.Thread(target=submit, args=(a, batches[0])),
                threading.Thread(target=submit, args=(b, batches[1])),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(outcomes) == ["CHAIN_BROKEN", "ok"]
            assert s1.size() == 2
            assert a.get_meter("m").next_sequence == b.get_meter("m").next_sequence == 1
        finally:
            a.close()
            b.close()


def test_store_is_unchanged_by_any_refusal(settlement: Settlement) -> None:
    meter = SimMeter("m")
    registered(settlement, meter)
    root = settlement.store.latest_checkpoint()
    for bad in (b"\x00" * 10, None, 5):
        with pytest.raises(ZkgridError):
            settlement.submit_readings(bad)  # type: ignore[arg-type]
    assert settlement.store.latest_checkpoint() == root
