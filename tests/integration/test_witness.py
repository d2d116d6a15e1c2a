"""Witness co-signing over gRPC (issue 5): registry via RegisterWitness, cosignatures, the
published aggregate and finality (k of n), refusals, and a forked log refused by the witness.

Keys are module-scoped with fixed secrets (py_ecc's curve order: the oracle's constant)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import grpc
import pytest
from py_ecc.optimized_bls12_381.optimized_curve import curve_order

from ledger.checkpoint import Checkpoint, CheckpointSigner, SignedCheckpoint
from ledger.cosignature import (
    CosignedCheckpoint,
    FinalityError,
    Quorum,
    WitnessRegistry,
    verify_finality,
)
from ledger.entries import EntryKind
from service.witnesses import Witnesses
from tests.integration.test_grpc_server import Running, _serve, refused
from tests.integration.test_grpc_server import running as running  # the fixture
from witness.cosign import CosignRefused, check_finality, cosign_after_audit
from witness.keys import WitnessKey, cosign
from witness.state import WitnessState
from zkgrid.settlement.v1 import witness_pb2, witness_pb2_grpc


def _key(name: str) -> WitnessKey:
    secret = int.from_bytes(hashlib.sha256(b"zkgrid-test-witness " + name.encode()).digest())
    return WitnessKey(name, secret % (curve_order - 1) + 1)


@pytest.fixture(scope="module")
def keys() -> dict[str, WitnessKey]:
    return {name: _key(name) for name in ("alpha", "bravo", "charlie", "outsider")}


def _witness(run: Running) -> witness_pb2_grpc.WitnessServiceStub:
    return witness_pb2_grpc.WitnessServiceStub(run.channel)


def _register(run: Running, key: WitnessKey) -> witness_pb2.RegisterWitnessResponse:
    return _witness(run).RegisterWitness(
        witness_pb2.RegisterWitnessRequest(registration=key.registration().encode()),
        metadata=run.md("utility", "grid-co"),
        timeout=10,
    )


def _add(run: Running, checkpoint: str, name: str, signature: bytes, **kw: Any) -> Any:
    request = witness_pb2.AddCosignatureRequest(
        checkpoint=checkpoint, witness_name=name, signature=signature, **kw
    )
    return _witness(run).AddCosignature(request, metadata=run.md("auditor", "aud"), timeout=10)


def _published(run: Running, size: int | None = None) -> witness_pb2.GetCosignedCheckpointResponse:
    request = witness_pb2.GetCosignedCheckpointRequest()
    if size is not None:
        request.tree_size = size
    return _witness(run).GetCosignedCheckpoint(request, metadata=run.md("meter", "m1"), timeout=10)


def test_quorum_finality_and_refusals(running: Running, keys: dict[str, WitnessKey]) -> None:
    run = running
    c = grpc.StatusCode
    for i, name in enumerate(("alpha", "bravo", "charlie")):
        assert _register(run, keys[name]).receipt.ledger_index == i
    # a registered name, or the same key again: WITNESS_EXISTS, nothing appended
    refused(run, c.ALREADY_EXISTS, "WITNESS_EXISTS", lambda: _register(run, keys["alpha"]))
    same_key = WitnessKey("alpha-again", _secret(keys["alpha"]))
    refused(run, c.ALREADY_EXISTS, "WITNESS_EXISTS", lambda: _register(run, same_key))
    refused(
        run,
        c.PERMISSION_DENIED,
        "PERMISSION_DENIED",
        lambda: _witness(run).RegisterWitness(
            witness_pb2.RegisterWitnessRequest(
                registration=keys["outsider"].registration().encode()
            ),
            metadata=run.md("auditor", "aud"),
            timeout=10,
        ),
    )
    listed = _witness(run).ListWitnesses(
        witness_pb2.ListWitnessesRequest(), metadata=run.md("meter", "m1"), timeout=5
    )
    assert [w.name for w in listed.witnesses] == ["alpha", "bravo", "charlie"]
    assert [w.ledger_index for w in listed.witnesses] == [0, 1, 2]
    assert [e.kind for e in run.store.entries(0)] == [EntryKind.WITNESS_KEY] * 3

    head = run.store.latest_checkpoint()  # size 3: all three witnesses registered in its tree
    note = head.to_text()
    assert head.checkpoint.size == 3
    before = _published(run)
    assert (before.tree_size, before.final, list(before.signers)) == (3, False, [])
    assert (before.quorum_threshold, before.quorum_total) == (2, 3)  # default: a majority

    sig_a = cosign(keys["alpha"], head).signature
    added = _add(run, note, "alpha", sig_a)
    assert (added.tree_size, added.recorded, added.cosignatures) == (3, True, 1)
    one = _published(run)
    assert list(one.signers) == ["alpha"]
    assert not one.final
    assert not _add(run, note, "alpha", sig_a).recorded  # idempotent
    with pytest.raises(FinalityError) as below:
        check_finality(run.channel, log_key=run.signer.verifier(), metadata=run.md("meter", "m1"))
    assert below.value.reason == "QUORUM_NOT_MET"

    # by size and root instead of the note
    sig_b = cosign(keys["bravo"], head).signature
    added = _add(run, "", "bravo", sig_b, tree_size=3, root_hash=head.checkpoint.root)
    assert added.cosignatures == 2
    two = _published(run)
    assert list(two.signers) == ["alpha", "bravo"]
    assert two.final  # at quorum: final
    assert two.checkpoint == note
    assert bytes(two.root_hash) == head.checkpoint.root
    report = check_finality(  # the client: registry from the ledger, one FastAggregateVerify
        run.channel, log_key=run.signer.verifier(), metadata=run.md("meter", "m1")
    )
    assert report.signers == ("alpha", "bravo")
    assert report.quorum == Quorum(2, 3)

    # swap a signer in the published aggregate: the aggregate check fails
    cosigned = CosignedCheckpoint.decode(bytes(two.cosigned_checkpoint))
    registry = WitnessRegistry(
        k.registration() for k in (keys["alpha"], keys["bravo"], keys["charlie"])
    )
    swapped = CosignedCheckpoint(
        cosigned.checkpoint, cosigned.aggregate_signature, ("alpha", "charlie")
    )
    with pytest.raises(FinalityError) as bad:
        verify_finality(registry, swapped, Quorum(2, 3))
    assert bad.value.reason == "AGGREGATE_INVALID"

    # a key not in the registry
    sig_out = cosign(keys["outsider"], head).signature
    refused(run, c.NOT_FOUND, "UNKNOWN_WITNESS", lambda: _add(run, note, "outsider", sig_out))
    # a cosignature over another root: for a checkpoint the service did not issue ...
    forged = Checkpoint(head.checkpoint.origin, 3, bytes(32))
    sig_forged = cosign(keys["charlie"], forged).signature
    refused(
        run,
        c.NOT_FOUND,
        "UNKNOWN_CHECKPOINT",
        lambda: _add(run, "", "charlie", sig_forged, tree_size=3, root_hash=bytes(32)),
    )
    refused(
        run,
        c.NOT_FOUND,
        "UNKNOWN_CHECKPOINT",
        lambda: _add(run, "", "charlie", sig_forged, tree_size=99, root_hash=bytes(32)),
    )
    # ... or sent with the real checkpoint: the signature does not verify
    refused(
        run,
        c.INVALID_ARGUMENT,
        "COSIGNATURE_INVALID",
        lambda: _add(run, note, "charlie", sig_forged),
    )
    # only auditors send cosignatures
    refused(
        run,
        c.PERMISSION_DENIED,
        "PERMISSION_DENIED",
        lambda: _witness(run).AddCosignature(
            witness_pb2.AddCosignatureRequest(checkpoint=note, witness_name="charlie"),
            metadata=run.md("utility", "grid-co"),
            timeout=5,
        ),
    )
    assert list(_published(run).signers) == ["alpha", "bravo"]
    assert list(_published(run, 3).signers) == ["alpha", "bravo"]


def _secret(key: WitnessKey) -> int:
    return int.from_bytes(key.secret_bytes(), "big")


# ----------------------------------------------------------------------------- forked log


def test_forked_log_is_refused_by_the_witness(
    tmp_path: Path,
    keys: dict[str, WitnessKey],
    ledger_signer: CheckpointSigner,
    ledger_origin: str,
) -> None:
    """The service signs checkpoints for two histories (two stores, one log key and origin):
    the witness co-signs history A at size n, then refuses history B at a size >= n."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    witness = keys["alpha"]
    state_path = tmp_path / "witness" / "alpha.json"
    served_a = _serve(f"sqlite:///{tmp_path / 'a' / 'ledger.db'}", ledger_signer, ledger_origin)
    served_b = _serve(f"sqlite:///{tmp_path / 'b' / 'ledger.db'}", ledger_signer, ledger_origin)
    a, b = next(served_a), next(served_b)
    try:
        for run, other in ((a, "bravo"), (b, "charlie")):  # same first entry, then they differ
            _register(run, witness)
            _register(run, keys[other])
        a.store.append(EntryKind.WITNESS_KEY, b"history A")
        b.store.append(EntryKind.WITNESS_KEY, b"history B")
        b.store.append(EntryKind.WITNESS_KEY, b"more of B")
        head_a, head_b = a.store.latest_checkpoint(), b.store.latest_checkpoint()
        assert (head_a.checkpoint.size, head_b.checkpoint.size) == (3, 4)
        assert head_a.checkpoint.origin == head_b.checkpoint.origin

        auditor = a.md("auditor", "aud")
        outcome = cosign_after_audit(
            a.channel,
            witness,
            state_path,
            head_a.to_text(),
            log_key=a.signer.verifier(),
            metadata=auditor,
        )
        assert (outcome.tree_size, outcome.recorded, outcome.cosignatures) == (3, True, 1)
        remembered = WitnessState.load(state_path)
        assert (remembered.size, remembered.root) == (3, head_a.checkpoint.root)

        # history B, larger, signed by the same key: its consistency proof cannot link it to A
        with pytest.raises(CosignRefused) as info:
            cosign_after_audit(
                b.channel,
                witness,
                state_path,
                head_b.to_text(),
                log_key=b.signer.verifier(),
                metadata=auditor,
            )
        assert info.value.reason == "CHECKPOINT_INCONSISTENT"
        # and B at the very size the witness co-signed: another root
        at_n = b.store.checkpoint_at(3)
        with pytest.raises(CosignRefused):
            cosign_after_audit(b.channel, witness, state_path, at_n.to_text(), metadata=auditor)
        kept = WitnessState.load(state_path)  # the memory still holds history A
        assert (kept.size, kept.root) == (3, head_a.checkpoint.root)
        assert not Witnesses(b.store).cosignatures(4)  # nothing was sent to B
        # history A grows: still consistent, co-signed
        a.store.append(EntryKind.WITNESS_KEY, b"A continues")
        grown = a.store.latest_checkpoint()
        assert (
            cosign_after_audit(
                a.channel, witness, state_path, grown.to_text(), metadata=auditor
            ).tree_size
            == 4
        )
    finally:
        for gen in (served_a, served_b):
            with pytest.raises(StopIteration):
                next(gen)


def test_the_checkpoint_named_by_the_witness_must_be_issued(
    running: Running, keys: dict[str, WitnessKey]
) -> None:
    """A signed note with the service's key but a checkpoint it never stored is refused
    (no pairing is spent on it)."""
    run = running
    _register(run, keys["alpha"])
    fake = run.signer.sign(Checkpoint(run.store.origin, 1, bytes(32)))
    assert isinstance(fake, SignedCheckpoint)
    refused(
        run,
        grpc.StatusCode.NOT_FOUND,
        "UNKNOWN_CHECKPOINT",
        lambda: _add(run, fake.to_text(), "alpha", bytes(96)),
    )
    refused(
        run,
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        lambda: _add(run, run.store.latest_checkpoint().to_text(), "alpha", bytes(96), tree_size=7),
    )
