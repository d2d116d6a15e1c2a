"""Typed errors of the ledger store.

Every error is a :class:`zkgrid.errors.ZkgridError` with a stable ``reason``.
Messages name the check that failed and, at most, public sizes and indices.
"""

from __future__ import annotations

from zkgrid.errors import InvalidArgumentError, Reason, ZkgridError


class StorageError(ZkgridError):
    """Root of the ledger store's errors."""

    reason = Reason.STORAGE_ERROR


class StoreUnavailable(StorageError):
    """The database cannot be reached, or a lock could not be taken in time."""

    reason = Reason.STORE_UNAVAILABLE


class StoreIntegrityError(StorageError):
    """What is stored does not match what was signed: the store refuses to serve.

    Raised at start-up (and by ``verify_integrity``) when, for example, the
    recomputed root does not match the last checkpoint, a stored node hash
    disagrees with the re-hashed entries, or a checkpoint signature is wrong.
    """

    reason = Reason.STORE_INTEGRITY


class AppendOnlyViolation(StorageError):
    """The database refused a write that would rewrite history (a trigger fired),
    or the store was asked to sign a checkpoint inconsistent with the last one."""

    reason = Reason.APPEND_ONLY_VIOLATION


class StoreConfigError(StorageError, InvalidArgumentError):
    """An unsupported URL, or a store opened with another origin than it was created with."""

    reason = Reason.STORE_CONFIG


class LogKeyMismatch(StoreConfigError):
    """The ledger's checkpoints are signed by another key than the one loaded: serving it
    would sign checkpoints no client that pinned the ledger's key accepts.
    ``ledger_key_id`` is the key id (hex) that signed the ledger's latest checkpoint."""

    def __init__(self, message: str, ledger_key_id: str) -> None:
        super().__init__(message)
        self.ledger_key_id = ledger_key_id


class EntryNotFound(StorageError, InvalidArgumentError):
    """An index or tree size beyond what the ledger holds, or no checkpoint at that size."""

    reason = Reason.NOT_FOUND
