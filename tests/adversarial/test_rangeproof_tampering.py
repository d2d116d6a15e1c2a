"""Every single-byte change of a serialised range proof is caught, and typed."""

from __future__ import annotations

import pytest

from zkgrid.errors import ProofFormatError, VerificationError
from zkp.pedersen import Commitment
from zkp.rangeproof import RangeProof, RangeProofStatement


def _outcome(data: bytes, commitments: list[Commitment], bits: int) -> str:
    try:
        RangeProof.from_bytes(data).verify(commitments, bits, b"ctx")
    except ProofFormatError:
        return "format"
    except VerificationError:
        return "verification"
    return "accepted"


@pytest.mark.parametrize(("values", "bits"), [([2**64 - 1], 64), ([0, 7, 200], 8)])
@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_every_single_byte_flip_is_rejected(values: list[int], bits: int, mask: int) -> None:
    bundle = RangeProof.prove(values, bits, context=b"ctx")
    data = bundle.proof.to_bytes()
    seen = {"format": 0, "verification": 0}
    for i in range(len(data)):
        tampered = bytearray(data)
        tampered[i] ^= mask
        outcome = _outcome(bytes(tampered), bundle.commitments, bits)
        assert outcome != "accepted", f"byte {i} flipped with {mask:#x} still verifies"
        seen[outcome] += 1
    # Both kinds occur: prefixes/off-curve x give format errors, the rest verification errors.
    assert seen["verification"] > 0
    if mask == 0xFF:
        assert seen["format"] > 0


def test_truncation_and_extension_are_format_errors() -> None:
    bundle = RangeProof.prove([9], 16)
    data = bundle.proof.to_bytes()
    for cut in (1, 32, 33, 65, len(data) - 1):
        with pytest.raises(ProofFormatError):
            RangeProof.from_bytes(data[:-cut])
    for extra in (b"\x00", bytes(32), bytes(33), data[:66]):
        with pytest.raises(ProofFormatError):
            RangeProof.from_bytes(data + extra)


def test_identity_and_off_curve_points_are_format_errors() -> None:
    data = bytearray(RangeProof.prove([9], 16).proof.to_bytes())
    for prefix in (0x00, 0x04, 0x05):
        bad = bytearray(data)
        bad[33] = prefix
        with pytest.raises(ProofFormatError):
            RangeProof.from_bytes(bytes(bad))
    bad = bytearray(data)
    bad[0:33] = b"\x02" + b"\xff" * 32  # x >= p
    with pytest.raises(ProofFormatError):
        RangeProof.from_bytes(bytes(bad))


def test_swapping_proof_parts_is_rejected() -> None:
    bundle = RangeProof.prove([5, 6], 32)
    data = bundle.proof.to_bytes()
    # swap A and S, then swap L_1 and R_1, then swap the scalars a and b
    swaps = [(0, 33, 33), (132, 165, 33), (len(data) - 64, len(data) - 32, 32)]
    for i, j, width in swaps:
        bad = bytearray(data)
        bad[i : i + width], bad[j : j + width] = data[j : j + width], data[i : i + width]
        with pytest.raises(VerificationError):
            RangeProof.from_bytes(bytes(bad)).verify(bundle.commitments, 32)


def test_replaying_a_proof_for_other_commitments_fails_in_a_batch() -> None:
    one = RangeProof.prove([5], 16)
    two = RangeProof.prove([5], 16)
    statements = [
        RangeProofStatement(one.proof, one.commitments, 16),
        RangeProofStatement(one.proof, two.commitments, 16),
        RangeProofStatement(two.proof, two.commitments, 16),
    ]
    with pytest.raises(VerificationError):
        RangeProof.verify_batch(statements)
    assert RangeProof.find_invalid(statements) == [1]
