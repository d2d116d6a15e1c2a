"""Service-only proto mapping: the domain's :class:`~service.settlement.Receipt`.

The record ⇄ message conversions (registration, reading batch, tariff, bill) are
shared with the meter SDK and live in :mod:`settlement.convert`.
"""

from __future__ import annotations

from service.settlement import Receipt
from zkgrid.settlement.v1 import common_pb2

__all__ = ["receipt_to_proto"]


def receipt_to_proto(receipt: Receipt) -> common_pb2.Receipt:
    """The domain's receipt: ledger index, leaf hash, signed checkpoint, inclusion proof."""
    return common_pb2.Receipt(
        ledger_index=receipt.index,
        leaf_hash=receipt.leaf_hash,
        checkpoint=receipt.checkpoint,
        tree_size=receipt.tree_size,
        inclusion_proof=list(receipt.inclusion_proof),
    )
