"""One caller's failed verifications cost the caller, not everyone (issue 10, §1).

A real server on 127.0.0.1:0 (insecure loopback: the caller's role and identity in the
metadata) with a failure budget of 2. A meter resending a batch whose signature is valid
and whose range proof does not verify (nothing is appended, so it could resend forever),
and an auditor sending well-formed cosignatures that do not verify, are refused with
their reason twice, then with RESOURCE_EXHAUSTED ``FAILURE_BUDGET_EXHAUSTED`` and a
``google.rpc.RetryInfo`` before any verification; other callers are served as before,
and the client library reads the delay back. Before the budgets, each such request cost
the server a verification (a bisection of a shared micro-batch, or a pairing) forever.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status
from py_ecc.optimized_bls12_381.optimized_curve import curve_order

from ledger.checkpoint import CheckpointSigner
from settlement import convert
from settlement.records import ReadingBatch
from tests.integration.test_grpc_server import Running, _serve
from tests.unit.service.settlement_support import SimMeter
from witness.keys import WitnessKey, cosign
from zkgrid._internal.rpc import remote_error
from zkgrid.settlement.v1 import readings_pb2, witness_pb2, witness_pb2_grpc

DAY = "2024-06-01"
BURST = 2


@pytest.fixture
def run(
    tmp_path: object, ledger_signer: CheckpointSigner, ledger_origin: str
) -> Iterator[Running]:
    yield from _serve("sqlite://", ledger_signer, ledger_origin, failure_burst=BURST)


def _invalid_proof(meter: SimMeter) -> ReadingBatch:
    """The meter's next batch, signed by its key, with two commitments swapped: every
    check before the range proof passes, the proof does not verify."""
    good = meter.batch(DAY, advance=False)
    commitments = list(good.commitments)
    commitments[0], commitments[1] = commitments[1], commitments[0]
    return ReadingBatch.create(
        meter.key,
        meter_id=good.meter_id,
        period=good.period,
        interval_minutes=good.interval_minutes,
        sequence=good.sequence,
        prev_hash=good.prev_hash,
        commitments=commitments,
        range_proof=good.range_proof,
    )


def _submit(run: Running, batch: ReadingBatch) -> readings_pb2.SubmitReadingsResponse:
    request = readings_pb2.SubmitReadingsRequest(batch=convert.reading_batch_to_proto(batch))
    metadata = run.md("meter", batch.meter_id)
    return run.readings.SubmitReadings(request, metadata=metadata, timeout=30)


def _refusal(call: object) -> tuple[grpc.StatusCode, str, float | None]:
    with pytest.raises(grpc.RpcError) as info:
        call()  # type: ignore[operator]
    status = rpc_status.from_call(info.value)  # type: ignore[arg-type]
    assert status is not None
    reason, delay = "", None
    for detail in status.details:
        error_info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
        if detail.Unpack(error_info):
            reason = error_info.reason
        elif detail.Unpack(retry):
            delay = retry.retry_delay.ToNanoseconds() / 1e9
    return info.value.code(), reason, delay


def test_a_meter_resending_invalid_proofs_is_cut_off_and_others_are_not(run: Running) -> None:
    mallory, alice = SimMeter("mallory"), SimMeter("alice")
    for meter in (mallory, alice):
        run.settlement.register_meter(meter.registration())
    bad = _invalid_proof(mallory)
    size = run.store.size()
    for _ in range(BURST):
        code, reason, delay = _refusal(lambda: _submit(run, bad))
        assert (code, reason, delay) == (grpc.StatusCode.INVALID_ARGUMENT, "PROOF_INVALID", None)
    code, reason, delay = _refusal(lambda: _submit(run, bad))
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "FAILURE_BUDGET_EXHAUSTED")
    assert delay is not None
    assert 0 < delay <= 60
    # refused before any work: even mallory's valid batch waits for the budget to refill
    code, reason, _ = _refusal(lambda: _submit(run, mallory.batch(DAY, advance=False)))
    assert reason == "FAILURE_BUDGET_EXHAUSTED"
    assert run.store.size() == size
    # the client library reads the delay back, and does not call it transient
    with pytest.raises(grpc.RpcError) as info:
        _submit(run, bad)
    error = remote_error(info.value, "submit")
    assert error.reason == "FAILURE_BUDGET_EXHAUSTED"
    assert error.retry_after_s is not None
    assert error.retry_after_s > 0
    assert not error.transient
    # alice is served as before, and reads are never refused by a budget
    assert _submit(run, alice.batch(DAY)).receipt.ledger_index == size
    assert run.settlement.get_meter("mallory").next_sequence == 0


def _key(name: str) -> WitnessKey:
    secret = int.from_bytes(hashlib.sha256(b"zkgrid-test-witness " + name.encode()).digest())
    return WitnessKey(name, secret % (curve_order - 1) + 1)


def test_an_auditor_sending_invalid_cosignatures_is_cut_off_and_others_are_not(
    run: Running,
) -> None:
    stub = witness_pb2_grpc.WitnessServiceStub(run.channel)
    alpha, bravo = _key("alpha"), _key("bravo")
    for key in (alpha, bravo):
        stub.RegisterWitness(
            witness_pb2.RegisterWitnessRequest(registration=key.registration().encode()),
            metadata=run.md("utility", "grid-co"),
            timeout=10,
        )
    head = run.store.latest_checkpoint()
    note = head.to_text()
    wrong = cosign(bravo, head).signature  # a real signature, by another key

    def add(identity: str, name: str, signature: bytes) -> witness_pb2.AddCosignatureResponse:
        request = witness_pb2.AddCosignatureRequest(
            checkpoint=note, witness_name=name, signature=signature
        )
        return stub.AddCosignature(request, metadata=run.md("auditor", identity), timeout=10)

    for _ in range(BURST):
        code, reason, _ = _refusal(lambda: add("mallory", "alpha", wrong))
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "COSIGNATURE_INVALID")
    code, reason, delay = _refusal(lambda: add("mallory", "alpha", wrong))
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "FAILURE_BUDGET_EXHAUSTED")
    assert delay is not None
    assert delay > 0
    # mallory spent its own budget, not alpha's: the witness's own cosignature is recorded
    added = add("alpha-operator", "alpha", cosign(alpha, head).signature)
    assert added.recorded


def test_the_utility_has_no_failure_budget(run: Running) -> None:
    """The utility runs the service: a bulk job of its own with several bad records is
    refused record by record, never cut off."""
    from dataclasses import replace

    from settlement import convert as _convert
    from zkgrid.settlement.v1 import meters_pb2, meters_pb2_grpc

    good, other = SimMeter("bulk-1").registration(), SimMeter("bulk-2").registration()
    forged = replace(good, pop_signature=other.pop_signature)  # another key's signature
    stub = meters_pb2_grpc.MeterServiceStub(run.channel)
    request = meters_pb2.RegisterMeterRequest(registration=_convert.registration_to_proto(forged))
    for _ in range(BURST + 2):
        code, reason, _ = _refusal(
            lambda: stub.RegisterMeter(request, metadata=run.md("utility", "grid-co"), timeout=10)
        )
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "SIGNATURE_INVALID")
