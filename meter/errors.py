"""The meter's own error types (no heavy imports: the command line names them at start-up)."""

from __future__ import annotations

from zkgrid.errors import VerificationError

__all__ = ["ReceiptError"]


class ReceiptError(VerificationError):
    """A receipt does not prove that our record is in the ledger."""

    reason = "RECEIPT_INVALID"
