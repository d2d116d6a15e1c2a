"""Known-answer vectors: proofs made by version 1 keep verifying in every later version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from zkgrid.errors import VerificationError
from zkp.drbg import SeededScalars
from zkp.pedersen import Commitment
from zkp.rangeproof import RangeProof, RangeProofStatement

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "rangeproof_v1.json").read_text()
)["vectors"]


def _statement(vector: dict[str, Any]) -> RangeProofStatement:
    proof = RangeProof.from_bytes(bytes.fromhex(vector["proof_hex"]))
    commitments = [Commitment.from_bytes(bytes.fromhex(c)) for c in vector["commitments_hex"]]
    context = bytes.fromhex(vector["context_hex"])
    return RangeProofStatement(proof, commitments, vector["bits"], context)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_verifies(vector: dict[str, Any]) -> None:
    s = _statement(vector)
    s.proof.verify(s.commitments, s.bits, s.context)
    assert s.proof.to_bytes().hex() == vector["proof_hex"]


def test_vectors_verify_as_one_batch() -> None:
    RangeProof.verify_batch([_statement(v) for v in VECTORS])


def test_vectors_do_not_verify_under_another_context() -> None:
    for vector in VECTORS:
        s = _statement(vector)
        with pytest.raises(VerificationError):
            s.proof.verify(s.commitments, s.bits, s.context + b"!")


def test_seeded_single_64_vector_is_reproduced_byte_for_byte() -> None:
    # Pins the prover too: the seeded prover must still produce the stored proof.
    vector = next(v for v in VECTORS if v["name"] == "single-64")
    bundle = RangeProof.prove([123456789012345], 64, rng=SeededScalars(b"single-64"))
    assert bundle.proof.to_bytes().hex() == vector["proof_hex"]
