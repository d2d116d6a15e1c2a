"""bench.dos: its abusive batches are what the scenarios assume, and its targets (issue 10 §1).

The benchmark itself needs a server and minutes; this checks, in well under a second, that a
mutated batch carries a valid signature and a proof that parses but does not verify, so the
service must pay for a verification to refuse it (PROOF_INVALID, never PROOF_MALFORMED).
"""

from __future__ import annotations

import pytest

from bench.dos import (
    ABUSERS,
    TARGET_MANY_CALLERS,
    TARGET_ONE_CALLER,
    CouldNotRun,
    all_scenarios,
    check_invalid_locally,
    invalid_batches,
)
from bench.e2e import PERIOD, CachedMeter
from settlement.records import (
    RANGE_PROOF_BITS,
    ZERO_HASH,
    MeterKey,
    ReadingBatch,
    SignatureError,
    reading_proof_context,
)
from zkp.rangeproof import RangeProof


def _meter() -> CachedMeter:
    key = MeterKey.from_private_value(12345)
    values = [0, 7, 4000, 2**RANGE_PROOF_BITS - 1]
    bundle = RangeProof.prove(
        values, RANGE_PROOF_BITS, context=reading_proof_context("m-dos", PERIOD, 0)
    )
    batch = ReadingBatch.create(
        key,
        meter_id="m-dos",
        period=PERIOD,
        interval_minutes=720,
        sequence=0,
        prev_hash=ZERO_HASH,
        commitments=[c.to_bytes() for c in bundle.commitments],
        range_proof=bundle.proof.to_bytes(),
    )
    return CachedMeter("m-dos", key, batch, tuple(values), tuple(bundle.blindings))


def test_invalid_batches_are_signed_parse_and_do_not_verify() -> None:
    meter = _meter()
    bad = invalid_batches(meter, 3)
    assert len({b.encode() for b in bad}) == 3  # distinct payloads
    for b in bad:
        assert b.range_proof != meter.batch.range_proof
        assert len(b.range_proof) == len(meter.batch.range_proof)
        assert (b.meter_id, b.sequence, b.prev_hash) == ("m-dos", 0, ZERO_HASH)
        check_invalid_locally(b, meter.key.public_key)  # raises unless PROOF_INVALID
    # The unmodified batch verifies, so the local check refuses it.
    with pytest.raises(CouldNotRun, match="still verifies"):
        check_invalid_locally(meter.batch, meter.key.public_key)
    # Another key's signature is caught before the proof.
    with pytest.raises(SignatureError):
        check_invalid_locally(bad[0], MeterKey.from_private_value(99).public_key)


def test_scenarios_and_targets() -> None:
    scenarios = {s.name: s for s in all_scenarios()}
    assert scenarios["clean"].target is None
    assert all_scenarios()[0].name == "clean"
    assert len(scenarios) == 11
    for kind in ("proof", "cosig"):
        assert scenarios[f"{kind}-one-full"].target == TARGET_ONE_CALLER
        assert scenarios[f"{kind}-one-full"].fraction is None
        for pct in (1, 10):
            one = scenarios[f"{kind}-one-{pct}pct"]
            many = scenarios[f"{kind}-many-{pct}pct"]
            assert (one.callers, one.target) == (1, TARGET_ONE_CALLER)
            assert (many.callers, many.target) == (ABUSERS, TARGET_MANY_CALLERS)
            assert one.fraction == many.fraction == pct / 100
