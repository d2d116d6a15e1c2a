"""The ledger's storage: one append-only store interface over SQLite and PostgreSQL.

The ledger's guarantee is the cryptography, not the triggers: every entry is a
leaf of an RFC 6962 Merkle tree whose roots are signed in checkpoints, so a
rewrite of history is detected by consistency proofs and by the store's
start-up self-check; the database triggers are only defence in depth.
"""

from service.storage.cosignatures import CosignatureStore, StoredCosignature
from service.storage.errors import (
    AppendOnlyViolation,
    EntryNotFound,
    LogKeyMismatch,
    StorageError,
    StoreConfigError,
    StoreIntegrityError,
    StoreUnavailable,
)
from service.storage.store import (
    Appended,
    AppendedEntry,
    AppendListener,
    LedgerStore,
    Precondition,
    StartupCheck,
    StoredEntry,
    normalize_url,
    open_store,
)

__all__ = [
    "AppendListener",
    "AppendOnlyViolation",
    "Appended",
    "AppendedEntry",
    "CosignatureStore",
    "EntryNotFound",
    "LedgerStore",
    "LogKeyMismatch",
    "Precondition",
    "StartupCheck",
    "StorageError",
    "StoreConfigError",
    "StoreIntegrityError",
    "StoreUnavailable",
    "StoredCosignature",
    "StoredEntry",
    "normalize_url",
    "open_store",
]
