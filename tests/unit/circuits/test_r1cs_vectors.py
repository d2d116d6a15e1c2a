"""Known-answer vectors: circuit proofs made by version 1 keep verifying in every later
version, for circuits rebuilt from their stored description (tests/vectors/r1cs_v1.json,
made by tests/vectors/make_r1cs_vectors.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from circuits.r1cs import R1CSProof, R1CSStatement, proof_size
from tests.vectors.make_r1cs_vectors import FORMAT, prover_for, verifier_for
from zkgrid.errors import VerificationError
from zkp.drbg import SeededScalars
from zkp.pedersen import commit

DATA: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "r1cs_v1.json").read_text()
)
VECTORS: list[dict[str, Any]] = DATA["vectors"]
IDS = [v["name"] for v in VECTORS]


def _statement(vector: dict[str, Any], context: bytes | None = None) -> R1CSStatement:
    verifier = verifier_for(vector["circuit"], vector["commitments_hex"])
    proof = R1CSProof.from_bytes(bytes.fromhex(vector["proof_hex"]))
    return verifier.statement(
        proof, bytes.fromhex(vector["context_hex"]) if context is None else context
    )


def test_the_file() -> None:
    assert DATA["format"] == FORMAT == "zkgrid/r1cs v1"
    assert len(VECTORS) >= 3
    assert len({v["name"] for v in VECTORS}) == len(VECTORS)
    rounds = {R1CSProof.from_bytes(bytes.fromhex(v["proof_hex"])).rounds for v in VECTORS}
    assert min(rounds) == 0  # one gate
    assert max(rounds) >= 5  # and many


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_vector_verifies(vector: dict[str, Any]) -> None:
    s = _statement(vector)
    s.circuit.verify(s.proof, s.context)
    assert s.proof.to_bytes().hex() == vector["proof_hex"]
    assert len(s.proof.to_bytes()) == proof_size(vector["gates"])


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_the_rebuilt_circuit_is_the_stored_one(vector: dict[str, Any]) -> None:
    verifier = verifier_for(vector["circuit"], vector["commitments_hex"])
    assert verifier.gates == vector["gates"]
    assert verifier.constraints == vector["constraints"]
    assert verifier.inputs == len(vector["commitments_hex"])
    assert verifier.digest().hex() == vector["digest_hex"]


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_the_openings_match_the_commitments(vector: dict[str, Any]) -> None:
    for opening, stored in zip(vector["inputs"], vector["commitments_hex"], strict=True):
        blinding = int(opening["blinding_hex"], 16)
        assert commit(opening["value"], blinding).to_bytes().hex() == stored


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_the_seeded_prover_reproduces_the_vector_byte_for_byte(vector: dict[str, Any]) -> None:
    # Pins the prover too: the seeded prover must still produce the stored proof.
    seed = vector["seed"].encode()
    values = [o["value"] for o in vector["inputs"]]
    prover = prover_for(vector["circuit"], values, seed)
    assert prover.digest().hex() == vector["digest_hex"]
    proof = prover.prove(bytes.fromhex(vector["context_hex"]), rng=SeededScalars(seed))
    assert proof.to_bytes().hex() == vector["proof_hex"]


def test_vectors_verify_as_one_batch() -> None:
    statements = [_statement(v) for v in VECTORS]
    R1CSStatement.verify_batch(statements)
    assert R1CSStatement.find_invalid(statements) == []


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_vectors_do_not_verify_under_another_context(vector: dict[str, Any]) -> None:
    s = _statement(vector, bytes.fromhex(vector["context_hex"]) + b"!")
    with pytest.raises(VerificationError):
        s.circuit.verify(s.proof, s.context)


def test_a_vector_with_another_context_is_named_in_a_batch() -> None:
    statements = [_statement(v) for v in VECTORS]
    statements[1] = _statement(VECTORS[1], b"another")
    with pytest.raises(VerificationError):
        R1CSStatement.verify_batch(statements)
    assert R1CSStatement.find_invalid(statements) == [1]
