"""The meter's own error types (no heavy imports: the command line names them at start-up)."""

from __future__ import annotations

from ledger.errors import ReceiptError

__all__ = ["ReceiptError"]
