"""Field checks shared by the record modules (``records``, ``market``): each returns the
value or raises :class:`~settlement.periods.RecordFormatError` naming the field."""

from __future__ import annotations

from settlement.periods import RecordFormatError

__all__ = ["check_bytes", "check_int"]


def check_int(value: object, what: str, lo: int, hi: int) -> int:
    """An ``int`` (not a ``bool``) in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordFormatError(f"{what} must be an integer")
    if not lo <= value <= hi:
        raise RecordFormatError(f"{what} is outside [{lo}, {hi}]")
    return value


def check_bytes(value: object, what: str, *, size: int | None = None, max_size: int = 0) -> bytes:
    """``bytes`` of exactly ``size``, or at most ``max_size`` when given."""
    if not isinstance(value, bytes):
        raise RecordFormatError(f"{what} must be bytes")
    if size is not None and len(value) != size:
        raise RecordFormatError(f"{what} must be {size} bytes, got {len(value)}")
    if max_size and len(value) > max_size:
        raise RecordFormatError(f"{what} is longer than {max_size} bytes")
    return value
