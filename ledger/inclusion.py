"""Entry inclusion: does a receipt prove that an entry is in the signed log? Written once.

A receipt (docs/design/settlement-v1.md, "A receipt is"; docs/notes/ledger.md) names an entry's
index and leaf hash, the signed checkpoint note of a tree that holds it, that
tree's size and the inclusion proof of the leaf in it. :func:`verify_entry_inclusion`
checks, in this order:

1. (L1, L12) given the entry, the receipt's leaf hash is ``leaf_hash(encode_entry(kind,
   payload))`` of that very entry;
2. (L13, L14) the note parses as a signed checkpoint and, with a pinned log key, carries
   a valid Ed25519 signature of that key (without a key the signature is *not* checked:
   the result says so);
3. the receipt's tree size is the checkpoint's size;
4. (L8) the inclusion proof of leaf ``index`` verifies against the checkpoint's root.

Pure: no I/O, no state. Every failure is a :class:`~ledger.errors.LedgerError`:
:class:`ReceiptMismatchError` (steps 1 and 3), :class:`~ledger.errors.LedgerFormatError`
(a malformed note, key or hash), :class:`~ledger.errors.CheckpointSignatureError`
(step 2) and :class:`~ledger.errors.InclusionProofError` (step 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledger.checkpoint import (
    Checkpoint,
    CheckpointVerifier,
    SignedCheckpoint,
    verify_checkpoint,
)
from ledger.entries import Entry
from ledger.errors import ReceiptError
from ledger.merkle import verify_inclusion

__all__ = ["EntryInclusion", "ReceiptMismatchError", "verify_entry_inclusion"]


class ReceiptMismatchError(ReceiptError):
    """A receipt that names another entry (leaf hash) or another tree (size) than its own."""


@dataclass(frozen=True, slots=True)
class EntryInclusion:
    """What a verified receipt establishes: leaf ``index`` with ``leaf_hash`` is in the tree
    of ``checkpoint``; ``signature_verified`` tells whether a pinned log key signed it."""

    index: int
    leaf_hash: bytes
    checkpoint: Checkpoint
    signature_verified: bool


def verify_entry_inclusion(
    *,
    index: int,
    leaf_hash: bytes,
    checkpoint: str | bytes | SignedCheckpoint,
    tree_size: int,
    inclusion_proof: Sequence[bytes],
    log_key: CheckpointVerifier | str | None,
    entry: Entry | None = None,
) -> EntryInclusion:
    """Check that leaf ``index`` (``leaf_hash``, and ``entry`` when given) is in the tree of
    the signed ``checkpoint`` of size ``tree_size`` (see the module docstring for the
    steps). ``log_key`` is required: pass ``None`` explicitly to check inclusion without
    the log's signature."""
    leaf = bytes(leaf_hash)
    # (L1, L12) the receipt names this entry.
    if entry is not None and entry.leaf_hash() != leaf:
        raise ReceiptMismatchError(
            f"receipt leaf hash is not the hash of the {entry.kind.name} entry"
        )
    # (L13, L14) the checkpoint note, signed by the pinned key.
    if isinstance(checkpoint, SignedCheckpoint):
        signed = checkpoint
    else:
        signed = SignedCheckpoint.from_text(checkpoint)
    tree = signed.checkpoint if log_key is None else verify_checkpoint(signed, log_key)
    if isinstance(tree_size, bool) or not isinstance(tree_size, int):
        raise ReceiptMismatchError("receipt tree size must be an integer")
    if tree.size != tree_size:
        raise ReceiptMismatchError(
            f"receipt tree size {tree_size} differs from its checkpoint's size {tree.size}"
        )
    # (L8) the inclusion proof against the signed root.
    verify_inclusion(leaf, index, tree.size, [bytes(h) for h in inclusion_proof], tree.root)
    return EntryInclusion(index, leaf, tree, log_key is not None)
