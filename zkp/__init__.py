"""zkp: the proof library of zkgrid.

NIST P-256 through petlib; Pedersen commitments; Schnorr-family sigma proofs;
Bulletproofs range proofs with aggregation and batch verification.

Public API (see README.md, "The proof library"):

* :mod:`zkp.group`: points, scalars, canonical encodings, multi-scalar multiplication.
* :mod:`zkp.generators`: nothing-up-my-sleeve generators.
* :mod:`zkp.transcript`: the Fiat-Shamir transcript.
* :mod:`zkp.pedersen`: commitments.
* :mod:`zkp.sigma`: opening, linear-combination and equality proofs.
* :mod:`zkp.rangeproof`: Bulletproofs range proofs.
"""

from zkgrid.errors import (
    InvalidArgumentError,
    ProofFormatError,
    ValueOutOfRangeError,
    VerificationError,
    ZkgridError,
)

__all__ = [
    "InvalidArgumentError",
    "ProofFormatError",
    "ValueOutOfRangeError",
    "VerificationError",
    "ZkgridError",
]
