"""meter.client.verify_receipt: a receipt proves *our* record is in the signed tree."""

from __future__ import annotations

import pytest

from ledger.checkpoint import Checkpoint, CheckpointSigner
from ledger.entries import EntryKind, encode_entry
from ledger.merkle import inclusion_proof_from_leaves, leaf_hash, root
from meter.client import ReceiptError, verify_receipt
from zkgrid.settlement.v1 import common_pb2

SIGNER = CheckpointSigner.from_private_bytes("zkgrid.test/log", bytes(range(32)))
OTHER = CheckpointSigner.from_private_bytes("zkgrid.test/log", bytes(range(1, 33)))


def _receipt(
    payload: bytes, index: int = 3, size: int = 7, signer: CheckpointSigner = SIGNER
) -> common_pb2.Receipt:
    leaves = [leaf_hash(encode_entry(EntryKind.BILL, b"other %d" % i)) for i in range(size)]
    leaves[index] = leaf_hash(encode_entry(EntryKind.BILL, payload))
    checkpoint = signer.sign(Checkpoint("zkgrid.test/log", size, root(leaves)))
    return common_pb2.Receipt(
        ledger_index=index,
        leaf_hash=leaves[index],
        checkpoint=checkpoint.to_text(),
        tree_size=size,
        inclusion_proof=inclusion_proof_from_leaves(index, leaves),
    )


def test_valid_receipt_with_and_without_pinned_key() -> None:
    receipt = _receipt(b"my bill")
    verified = verify_receipt(receipt, EntryKind.BILL, b"my bill", SIGNER.verifier())
    assert verified.signature_verified
    assert verified.ledger_index == 3
    assert verified.tree_size == 7
    assert not verify_receipt(receipt, EntryKind.BILL, b"my bill").signature_verified


def test_receipt_for_another_record_or_kind_is_refused() -> None:
    receipt = _receipt(b"my bill")
    with pytest.raises(ReceiptError, match="leaf hash"):
        verify_receipt(receipt, EntryKind.BILL, b"another bill")
    with pytest.raises(ReceiptError, match="leaf hash"):
        verify_receipt(receipt, EntryKind.TARIFF, b"my bill")


def test_tampered_proofs_are_refused() -> None:
    receipt = _receipt(b"my bill")
    bad = common_pb2.Receipt()
    bad.CopyFrom(receipt)
    bad.inclusion_proof[0] = bytes(32)
    with pytest.raises(ReceiptError):
        verify_receipt(bad, EntryKind.BILL, b"my bill")
    bad.CopyFrom(receipt)
    bad.ledger_index = 2
    with pytest.raises(ReceiptError):
        verify_receipt(bad, EntryKind.BILL, b"my bill")
    bad.CopyFrom(receipt)
    bad.tree_size = 8
    with pytest.raises(ReceiptError, match="size"):
        verify_receipt(bad, EntryKind.BILL, b"my bill")
    bad.CopyFrom(receipt)
    bad.checkpoint = "not a checkpoint"
    with pytest.raises(ReceiptError):
        verify_receipt(bad, EntryKind.BILL, b"my bill")


def test_checkpoint_signed_by_another_key_is_refused_when_pinned() -> None:
    receipt = _receipt(b"my bill", signer=OTHER)
    verify_receipt(receipt, EntryKind.BILL, b"my bill")  # unpinned: inclusion only
    with pytest.raises(ReceiptError):
        verify_receipt(receipt, EntryKind.BILL, b"my bill", SIGNER.verifier())
