"""ledger.inclusion.verify_entry_inclusion: a receipt proves *this* entry is in the signed tree."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.checkpoint import Checkpoint, CheckpointSigner, SignedCheckpoint
from ledger.entries import Entry, EntryKind
from ledger.errors import (
    CheckpointSignatureError,
    InclusionProofError,
    LedgerError,
    LedgerFormatError,
)
from ledger.inclusion import EntryInclusion, ReceiptMismatchError, verify_entry_inclusion
from ledger.merkle import inclusion_proof_from_leaves, root
from zkgrid.errors import VerificationError

ORIGIN = "zkgrid.test/log"
SIGNER = CheckpointSigner.from_private_bytes(ORIGIN, bytes(range(32)))
#: Same name, another key: only the key pins the log.
IMPOSTOR = CheckpointSigner.from_private_bytes(ORIGIN, bytes(range(1, 33)))
ENTRY = Entry(EntryKind.BILL, b"my bill")


def _receipt(
    entry: Entry = ENTRY, index: int = 3, size: int = 7, signer: CheckpointSigner = SIGNER
) -> dict[str, Any]:
    leaves = [Entry(EntryKind.BILL, b"other %d" % i).leaf_hash() for i in range(size)]
    leaves[index] = entry.leaf_hash()
    signed = signer.sign(Checkpoint(ORIGIN, size, root(leaves)))
    return {
        "index": index,
        "leaf_hash": leaves[index],
        "checkpoint": signed.to_text(),
        "tree_size": size,
        "inclusion_proof": inclusion_proof_from_leaves(index, leaves),
    }


def test_good_receipt() -> None:
    receipt = _receipt()
    result = verify_entry_inclusion(**receipt, log_key=SIGNER.verifier(), entry=ENTRY)
    assert isinstance(result, EntryInclusion)
    assert result.signature_verified
    assert (result.index, result.leaf_hash) == (3, ENTRY.leaf_hash())
    assert result.checkpoint.size == 7
    # The key as its text form, the note already parsed, and without the entry: the same.
    parsed = dict(receipt, checkpoint=SignedCheckpoint.from_text(receipt["checkpoint"]))
    assert verify_entry_inclusion(**parsed, log_key=SIGNER.verifier_key()) == result
    # Every index of a tree of every shape.
    for size in (1, 2, 5, 8, 9):
        for index in range(size):
            verify_entry_inclusion(
                **_receipt(index=index, size=size), log_key=SIGNER.verifier(), entry=ENTRY
            )


def test_wrong_leaf() -> None:
    receipt = _receipt()
    for other in (Entry(EntryKind.BILL, b"another bill"), Entry(EntryKind.TARIFF, b"my bill")):
        with pytest.raises(ReceiptMismatchError, match="leaf hash") as info:
            verify_entry_inclusion(**receipt, log_key=SIGNER.verifier(), entry=other)
        assert info.value.reason == "RECEIPT_INVALID"
    # A leaf hash that is not the proven one fails the proof itself.
    bad = dict(receipt, leaf_hash=Entry(EntryKind.BILL, b"x").leaf_hash())
    with pytest.raises(InclusionProofError):
        verify_entry_inclusion(**bad, log_key=SIGNER.verifier())


def test_wrong_size() -> None:
    receipt = _receipt()
    for size in (6, 8, 0):
        with pytest.raises(ReceiptMismatchError, match="size"):
            verify_entry_inclusion(
                **dict(receipt, tree_size=size), log_key=SIGNER.verifier(), entry=ENTRY
            )
    with pytest.raises(ReceiptMismatchError, match="integer"):
        verify_entry_inclusion(
            **dict(receipt, tree_size=True), log_key=SIGNER.verifier(), entry=ENTRY
        )


def test_wrong_proof() -> None:
    receipt = _receipt()
    proof = list(receipt["inclusion_proof"])
    tampered = [bytes(32), *proof[1:]]
    cases: list[dict[str, Any]] = [
        dict(receipt, inclusion_proof=tampered),
        dict(receipt, inclusion_proof=proof[:-1]),
        dict(receipt, inclusion_proof=[*proof, bytes(32)]),
        dict(receipt, inclusion_proof=list(reversed(proof))),
        dict(receipt, index=2),
        dict(receipt, index=7),
    ]
    for case in cases:
        with pytest.raises(InclusionProofError):
            verify_entry_inclusion(**case, log_key=SIGNER.verifier(), entry=ENTRY)
    with pytest.raises(LedgerFormatError):
        verify_entry_inclusion(
            **dict(receipt, inclusion_proof=[b"short"]), log_key=SIGNER.verifier(), entry=ENTRY
        )


def test_bad_signature() -> None:
    receipt = _receipt()
    text = receipt["checkpoint"]
    body, _, signature_line = text.rpartition("\n\n")
    # Flip one base64 character of the signature (same key name and ID).
    name, encoded = signature_line.rstrip("\n").rsplit(" ", 1)
    flipped = encoded[:20] + ("A" if encoded[20] != "A" else "B") + encoded[21:]
    forged = f"{body}\n\n{name} {flipped}\n"
    with pytest.raises(CheckpointSignatureError):
        verify_entry_inclusion(
            **dict(receipt, checkpoint=forged), log_key=SIGNER.verifier(), entry=ENTRY
        )
    with pytest.raises(LedgerFormatError):
        verify_entry_inclusion(
            **dict(receipt, checkpoint="not a checkpoint"), log_key=SIGNER.verifier(), entry=ENTRY
        )


def test_unpinned_key() -> None:
    # Signed by another key under the log's name: refused when the key is pinned...
    receipt = _receipt(signer=IMPOSTOR)
    with pytest.raises(CheckpointSignatureError) as info:
        verify_entry_inclusion(**receipt, log_key=SIGNER.verifier(), entry=ENTRY)
    assert isinstance(info.value, VerificationError)
    # ... and without a pinned key only inclusion is checked, and the result says so.
    result = verify_entry_inclusion(**receipt, log_key=None, entry=ENTRY)
    assert not result.signature_verified
    # Without a key the proof still has to hold.
    with pytest.raises(InclusionProofError):
        verify_entry_inclusion(**dict(receipt, index=4), log_key=None, entry=ENTRY)


def test_every_failure_is_a_ledger_error() -> None:
    for cls in (ReceiptMismatchError, InclusionProofError, CheckpointSignatureError):
        assert issubclass(cls, LedgerError)
        assert issubclass(cls, VerificationError)
    assert issubclass(LedgerFormatError, LedgerError)
