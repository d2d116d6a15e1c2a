"""The one root of every error zkgrid raises on purpose.

Parse failures and wrong proofs are different things and stay different types:

* :class:`ProofFormatError`: bytes that cannot be parsed (wrong length, a point
  off the curve, a scalar not below the group order, trailing bytes, ...).
* :class:`VerificationError`: well-formed input whose proof or signature is wrong.

Messages never carry secrets (values, blindings, nonces): they name the check
that failed and, at most, public sizes and indices.
"""

from __future__ import annotations


class ZkgridError(Exception):
    """Root of all zkgrid errors."""

    #: Stable machine-readable reason, used by the service's error mapping.
    reason: str = "INTERNAL"


class InvalidArgumentError(ZkgridError, ValueError):
    """A caller passed an argument outside the documented domain."""

    reason = "INVALID_ARGUMENT"


class ValueOutOfRangeError(InvalidArgumentError):
    """A prover was asked to prove a value outside [0, 2^n)."""

    reason = "VALUE_OUT_OF_RANGE"


class ProofFormatError(ZkgridError):
    """Bytes that cannot be parsed as the expected canonical encoding."""

    reason = "PROOF_MALFORMED"


class VerificationError(ZkgridError):
    """Well-formed input that does not verify."""

    reason = "PROOF_INVALID"
