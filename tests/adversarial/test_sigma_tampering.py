"""Tampered sigma proofs: every mutation is a ProofFormatError or a VerificationError.

Never another exception type, never success.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from zkgrid.errors import ProofFormatError, VerificationError
from zkp.group import ORDER, random_scalar
from zkp.pedersen import commit
from zkp.sigma import EqualityProof, LinearCombinationClaim, LinearCombinationProof, OpeningProof

Verifier = Callable[[bytes], None]

CONTEXT = b"meter-0042/2026-11"


def _opening() -> tuple[bytes, Verifier]:
    v, r = 8_675_309, random_scalar()
    c = commit(v, r)
    proof = OpeningProof.prove(c, v, r, CONTEXT)

    def verify(data: bytes) -> None:
        OpeningProof.from_bytes(data).verify(c, CONTEXT)

    return proof.to_bytes(), verify


def _linear() -> tuple[bytes, Verifier]:
    values = [1_234, 5_678, 91_011]
    blindings = [random_scalar() for _ in values]
    commitments = [commit(v, r) for v, r in zip(values, blindings, strict=True)]
    coefficients = [17, -3, 250]
    proof, total = LinearCombinationProof.prove(
        coefficients, commitments, values, blindings, 99, CONTEXT
    )

    def verify(data: bytes) -> None:
        LinearCombinationProof.from_bytes(data).verify(
            coefficients, commitments, total, 99, CONTEXT
        )

    return proof.to_bytes(), verify


def _linear_batch() -> tuple[bytes, Verifier]:
    """The tampered proof sits in the middle of a batch of honest ones."""
    claims = []
    for i in range(3):
        values = [i + 10, i + 20]
        blindings = [random_scalar(), random_scalar()]
        commitments = [commit(v, r) for v, r in zip(values, blindings, strict=True)]
        proof, total = LinearCombinationProof.prove(
            [1, 2], commitments, values, blindings, 0, b"%d" % i
        )
        claims.append(LinearCombinationClaim(proof, [1, 2], commitments, total, 0, b"%d" % i))

    def verify(data: bytes) -> None:
        batch = list(claims)
        batch[1] = batch[1]._replace(proof=LinearCombinationProof.from_bytes(data))
        LinearCombinationProof.verify_batch(batch)

    return claims[1].proof.to_bytes(), verify


def _equality() -> tuple[bytes, Verifier]:
    r1, r2 = random_scalar(), random_scalar()
    c1, c2 = commit(424_242, r1), commit(424_242, r2)
    proof = EqualityProof.prove(c1, c2, r1, r2, CONTEXT)

    def verify(data: bytes) -> None:
        EqualityProof.from_bytes(data).verify(c1, c2, CONTEXT)

    return proof.to_bytes(), verify


CASES: dict[str, Callable[[], tuple[bytes, Verifier]]] = {
    "opening": _opening,
    "linear-combination": _linear,
    "linear-combination-batch": _linear_batch,
    "equality": _equality,
}


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> tuple[bytes, Verifier]:
    data, verify = CASES[request.param]()
    verify(data)  # the untampered proof verifies
    return data, verify


def test_every_single_byte_flip_is_rejected(case: tuple[bytes, Verifier]) -> None:
    data, verify = case
    outcomes = {ProofFormatError: 0, VerificationError: 0}
    for position in range(len(data)):
        for mask in (0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFF):
            tampered = bytearray(data)
            tampered[position] ^= mask
            try:
                verify(bytes(tampered))
            except (ProofFormatError, VerificationError) as exc:
                outcomes[type(exc)] += 1
            else:
                pytest.fail(f"tampered proof accepted (byte {position}, mask {mask:#x})")
    # both failure modes are exercised: bad prefixes/x-coordinates parse-fail,
    # most scalar flips parse and then fail the equation
    assert outcomes[ProofFormatError] > 0
    assert outcomes[VerificationError] > 0


def test_truncated_and_extended_bytes_are_format_errors(case: tuple[bytes, Verifier]) -> None:
    data, verify = case
    for length in range(len(data)):
        with pytest.raises(ProofFormatError):
            verify(data[:length])
    for extra in (b"\x00", b"\x01", b"\xff" * 32, data):
        with pytest.raises(ProofFormatError):
            verify(data + extra)
        with pytest.raises(ProofFormatError):
            verify(extra + data)


def test_non_canonical_fields_are_format_errors(case: tuple[bytes, Verifier]) -> None:
    data, verify = case
    # any response scalar >= q, even one congruent to the real response
    for offset in range(33, len(data), 32):
        z = int.from_bytes(data[offset : offset + 32], "big")
        for bad in (ORDER, (1 << 256) - 1, z + ORDER if z + ORDER < 1 << 256 else ORDER):
            tampered = data[:offset] + bad.to_bytes(32, "big") + data[offset + 32 :]
            with pytest.raises(ProofFormatError):
                verify(tampered)
    # the nonce point: identity-like all-zero bytes, uncompressed prefix, x >= p
    for prefix in (b"\x00" * 33, b"\x04" + data[1:33], b"\x02" + b"\xff" * 32):
        with pytest.raises(ProofFormatError):
            verify(prefix + data[33:])


def test_wrong_input_types_are_format_errors() -> None:
    for cls in (OpeningProof, LinearCombinationProof, EqualityProof):
        for bad in ("00" * cls.SIZE, None, 12, [0] * cls.SIZE):
            with pytest.raises(ProofFormatError):
                cls.from_bytes(bad)  # type: ignore[arg-type]


def test_parsers_accept_other_bytes_like() -> None:
    data, verify = _equality()
    EqualityProof.from_bytes(bytearray(data))  # type: ignore[arg-type]
    EqualityProof.from_bytes(memoryview(data))  # type: ignore[arg-type]
    verify(data)
