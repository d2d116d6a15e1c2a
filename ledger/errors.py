"""Typed errors of the ledger package, all rooted at :class:`zkgrid.errors.ZkgridError`.

* :class:`LedgerFormatError`: bytes or text that cannot be parsed (a proof node
  that is not 32 bytes, a malformed checkpoint, an entry with trailing bytes).
* :class:`InclusionProofError` / :class:`ConsistencyProofError`: a well-formed
  proof that does not verify (wrong node, wrong length, wrong index or size).
* :class:`CheckpointSignatureError`: no valid signature from the expected key.
* :class:`NodeFetchError`: a node fetcher (the storage layer) did not return a
  stored node the proof needs, or returned a malformed one.
* :class:`ReceiptError`: a receipt (an entry's inclusion proof under a signed
  checkpoint) that does not prove the entry is in the log.
* :class:`LedgerArgumentError`: a caller passed an argument outside the domain
  (for example an inclusion proof for an index outside the tree).

Messages name the check that failed (with its label in docs/notes/ledger.md)
and at most public sizes and indices.
"""

from __future__ import annotations

from zkgrid.errors import (
    InvalidArgumentError,
    ProofFormatError,
    Reason,
    VerificationError,
    ZkgridError,
)


class LedgerError(ZkgridError):
    """Root of the errors raised by :mod:`ledger`."""

    reason = Reason.LEDGER_ERROR


class LedgerArgumentError(LedgerError, InvalidArgumentError):
    """A caller passed an argument outside the documented domain."""

    reason = Reason.INVALID_ARGUMENT


class LedgerFormatError(LedgerError, ProofFormatError):
    """Malformed proof, checkpoint, verifier key or entry bytes."""

    reason = Reason.LEDGER_MALFORMED


class InclusionProofError(LedgerError, VerificationError):
    """A well-formed inclusion proof that does not verify."""

    reason = Reason.INCLUSION_PROOF_INVALID


class ConsistencyProofError(LedgerError, VerificationError):
    """A well-formed consistency proof that does not verify."""

    reason = Reason.CONSISTENCY_PROOF_INVALID


class CheckpointSignatureError(LedgerError, VerificationError):
    """A checkpoint without a valid signature from the expected key."""

    reason = Reason.CHECKPOINT_SIGNATURE_INVALID


class NodeFetchError(LedgerError):
    """The node fetcher did not return a needed perfect node (or a malformed one).

    This is an internal inconsistency of the storage, not a client error.
    """

    reason = Reason.LEDGER_NODE_MISSING


class ReceiptError(LedgerError, VerificationError):
    """A receipt that does not prove its entry is in the log (wrong entry, leaf hash,
    inclusion proof or checkpoint): the one class of ``RECEIPT_INVALID``."""

    reason = Reason.RECEIPT_INVALID
