"""Typed errors of the ledger package, all rooted at :class:`zkgrid.errors.ZkgridError`.

* :class:`LedgerFormatError`: bytes or text that cannot be parsed (a proof node
  that is not 32 bytes, a malformed checkpoint, an entry with trailing bytes).
* :class:`InclusionProofError` / :class:`ConsistencyProofError`: a well-formed
  proof that does not verify (wrong node, wrong length, wrong index or size).
* :class:`CheckpointSignatureError`: no valid signature from the expected key.
* :class:`NodeFetchError`: a node fetcher (the storage layer) did not return a
  stored node the proof needs, or returned a malformed one.
* :class:`LedgerArgumentError`: a caller passed an argument outside the domain
  (for example an inclusion proof for an index outside the tree).

Messages name the check that failed (with its label in docs/notes/ledger.md)
and at most public sizes and indices.
"""

from __future__ import annotations

from zkgrid.errors import (
    InvalidArgumentError,
    ProofFormatError,
    VerificationError,
    ZkgridError,
)


class LedgerError(ZkgridError):
    """Root of the errors raised by :mod:`ledger`."""

    reason = "LEDGER_ERROR"


class LedgerArgumentError(LedgerError, InvalidArgumentError):
    """A caller passed an argument outside the documented domain."""

    reason = "INVALID_ARGUMENT"


class LedgerFormatError(LedgerError, ProofFormatError):
    """Malformed proof, checkpoint, verifier key or entry bytes."""

    reason = "LEDGER_MALFORMED"


class InclusionProofError(LedgerError, VerificationError):
    """A well-formed inclusion proof that does not verify."""

    reason = "INCLUSION_PROOF_INVALID"


class ConsistencyProofError(LedgerError, VerificationError):
    """A well-formed consistency proof that does not verify."""

    reason = "CONSISTENCY_PROOF_INVALID"


class CheckpointSignatureError(LedgerError, VerificationError):
    """A checkpoint without a valid signature from the expected key."""

    reason = "CHECKPOINT_SIGNATURE_INVALID"


class NodeFetchError(LedgerError):
    """The node fetcher did not return a needed perfect node (or a malformed one).

    This is an internal inconsistency of the storage, not a client error.
    """

    reason = "LEDGER_NODE_MISSING"
