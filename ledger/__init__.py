"""ledger: the log only: RFC 6962 Merkle maths, entry encoding, signed checkpoints.

No I/O: the storage layer persists perfect nodes and hands them back through a
:data:`~ledger.merkle.NodeFetcher`; the verifier uses the same functions.
See docs/notes/ledger.md for the equations.

The names below are imported on first use (PEP 562): importing one module of the
package (``ledger.errors``, ``ledger.merkle``) does not load the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zkgrid._internal.lazy import lazy_exports

if TYPE_CHECKING:  # pragma: no cover
    from ledger.checkpoint import (
        Checkpoint,
        CheckpointSigner,
        CheckpointVerifier,
        NoteSignature,
        SignedCheckpoint,
        key_id,
        parse_verifier_key,
        verify_checkpoint,
    )
    from ledger.entries import (
        Entry,
        EntryKind,
        decode_entry,
        encode_entry,
    )
    from ledger.errors import (
        CheckpointSignatureError,
        ConsistencyProofError,
        InclusionProofError,
        LedgerArgumentError,
        LedgerError,
        LedgerFormatError,
        NodeFetchError,
    )
    from ledger.merkle import (
        EMPTY_ROOT,
        HASH_SIZE,
        CompactRange,
        NodeFetcher,
        NodeId,
        consistency_proof,
        consistency_proof_from_leaves,
        inclusion_proof,
        inclusion_proof_from_leaves,
        leaf_hash,
        node_hash,
        root,
        root_at,
        verify_consistency,
        verify_inclusion,
    )

#: exported name -> module defining it
_EXPORTS = {
    "Checkpoint": "ledger.checkpoint",
    "CheckpointSignatureError": "ledger.errors",
    "CheckpointSigner": "ledger.checkpoint",
    "CheckpointVerifier": "ledger.checkpoint",
    "CompactRange": "ledger.merkle",
    "ConsistencyProofError": "ledger.errors",
    "EMPTY_ROOT": "ledger.merkle",
    "Entry": "ledger.entries",
    "EntryKind": "ledger.entries",
    "HASH_SIZE": "ledger.merkle",
    "InclusionProofError": "ledger.errors",
    "LedgerArgumentError": "ledger.errors",
    "LedgerError": "ledger.errors",
    "LedgerFormatError": "ledger.errors",
    "NodeFetchError": "ledger.errors",
    "NodeFetcher": "ledger.merkle",
    "NodeId": "ledger.merkle",
    "NoteSignature": "ledger.checkpoint",
    "SignedCheckpoint": "ledger.checkpoint",
    "consistency_proof": "ledger.merkle",
    "consistency_proof_from_leaves": "ledger.merkle",
    "decode_entry": "ledger.entries",
    "encode_entry": "ledger.entries",
    "inclusion_proof": "ledger.merkle",
    "inclusion_proof_from_leaves": "ledger.merkle",
    "key_id": "ledger.checkpoint",
    "leaf_hash": "ledger.merkle",
    "node_hash": "ledger.merkle",
    "parse_verifier_key": "ledger.checkpoint",
    "root": "ledger.merkle",
    "root_at": "ledger.merkle",
    "verify_checkpoint": "ledger.checkpoint",
    "verify_consistency": "ledger.merkle",
    "verify_inclusion": "ledger.merkle",
}

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Checkpoint",
    "CheckpointSignatureError",
    "CheckpointSigner",
    "CheckpointVerifier",
    "CompactRange",
    "ConsistencyProofError",
    "Entry",
    "EntryKind",
    "InclusionProofError",
    "LedgerArgumentError",
    "LedgerError",
    "LedgerFormatError",
    "NodeFetchError",
    "NodeFetcher",
    "NodeId",
    "NoteSignature",
    "SignedCheckpoint",
    "consistency_proof",
    "consistency_proof_from_leaves",
    "decode_entry",
    "encode_entry",
    "inclusion_proof",
    "inclusion_proof_from_leaves",
    "key_id",
    "leaf_hash",
    "node_hash",
    "parse_verifier_key",
    "root",
    "root_at",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
