"""ledger: the log only: RFC 6962 Merkle maths, entry encoding, signed checkpoints.

No I/O: the storage layer persists perfect nodes and hands them back through a
:data:`~ledger.merkle.NodeFetcher`; the verifier uses the same functions.
See docs/notes/ledger.md for the equations.
"""

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
from ledger.entries import Entry, EntryKind, decode_entry, encode_entry
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
