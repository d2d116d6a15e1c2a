"""An attacker's receipt: its own log key over a one-leaf tree holding our record (issue 10 §5).

Anyone can build a "receipt" for any record: a tree of one leaf (the record), its
root, a checkpoint signed with a key of the attacker's. With the log's key pinned it
is refused; without one it proves inclusion in *a* tree only, and nothing may call
it verified: not the SDK's result, not the meter command's statement line.
"""

from __future__ import annotations

import argparse
import io
from types import SimpleNamespace
from typing import Any

import pytest

from ledger.checkpoint import Checkpoint, CheckpointSigner
from ledger.entries import EntryKind, encode_entry
from ledger.merkle import leaf_hash
from meter import cli as meter_cli
from meter.client import ReceiptError, verify_receipt
from zkgrid.settlement.v1 import common_pb2

LOG = CheckpointSigner.from_private_bytes("zkgrid.test/log", bytes(range(32)))
ATTACKER = CheckpointSigner.from_private_bytes("zkgrid.test/log", bytes(range(7, 39)))
PAYLOAD = b"the bill the meter submitted"


def _forged() -> common_pb2.Receipt:
    leaf = leaf_hash(encode_entry(EntryKind.BILL, PAYLOAD))
    signed = ATTACKER.sign(Checkpoint("zkgrid.test/log", 1, leaf))  # a one-leaf tree: root = leaf
    return common_pb2.Receipt(
        ledger_index=0, leaf_hash=leaf, checkpoint=signed.to_text(), tree_size=1, inclusion_proof=[]
    )


def test_the_forged_receipt_is_refused_against_the_pinned_key() -> None:
    with pytest.raises(ReceiptError):
        verify_receipt(_forged(), EntryKind.BILL, PAYLOAD, LOG.verifier())
    with pytest.raises(ReceiptError):
        verify_receipt(_forged(), EntryKind.BILL, PAYLOAD, LOG.verifier_key())


def test_without_a_pinned_key_it_is_never_called_verified() -> None:
    result = verify_receipt(_forged(), EntryKind.BILL, PAYLOAD, None)
    assert result.signature_verified is False


def test_the_statement_says_so_when_nothing_is_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    """``zkgrid meter statement`` prints "verified" only for receipts the pinned key signed."""

    def line(signature_verified: bool) -> Any:
        receipt = SimpleNamespace(ledger_index=0, signature_verified=signature_verified)
        return SimpleNamespace(bill=SimpleNamespace(period="2026-11-21", total=1_000_000),
                               receipt=receipt)  # fmt: skip

    for pinned, expected in ((False, "log key not pinned"), (True, "verified")):
        statement = SimpleNamespace(lines=[line(pinned)], total=1_000_000, cycle_lines=[])
        client = SimpleNamespace(
            meter_id="meter-7",
            statement=lambda _period, s=statement: s,
            tariff=lambda _period: (SimpleNamespace(currency="EUR"), None),
        )
        monkeypatch.setattr(meter_cli, "_client", lambda _args, c=client: _Ctx(c))
        out = io.StringIO()
        assert meter_cli._statement(argparse.Namespace(period=None), out) == 0
        text = out.getvalue()
        assert expected in text
        if not pinned:
            assert " verified" not in text


class _Ctx:
    def __init__(self, value: Any) -> None:
        self.value = value

    def __enter__(self) -> Any:
        return self.value

    def __exit__(self, *_exc: object) -> None:
        return None
