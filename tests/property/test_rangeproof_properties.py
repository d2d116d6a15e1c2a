"""Property tests: random aggregated range proofs verify, and only for their statement."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from zkgrid.errors import ProofFormatError, VerificationError
from zkp.rangeproof import SUPPORTED_BITS, RangeProof, RangeProofStatement


@st.composite
def statements(draw: st.DrawFn) -> tuple[list[int], int]:
    bits = draw(st.sampled_from(SUPPORTED_BITS[:3]))
    values = draw(st.lists(st.integers(0, (1 << bits) - 1), min_size=1, max_size=6))
    return values, bits


@settings(max_examples=25, deadline=None)
@given(statements(), st.binary(max_size=16))
def test_random_aggregated_proofs_verify_and_round_trip(
    statement: tuple[list[int], int], context: bytes
) -> None:
    values, bits = statement
    bundle = RangeProof.prove(values, bits, context=context)
    parsed = RangeProof.from_bytes(bundle.proof.to_bytes())
    parsed.verify(bundle.commitments, bits, context)
    RangeProof.verify_batch([RangeProofStatement(parsed, bundle.commitments, bits, context)])


@settings(max_examples=25, deadline=None)
@given(statements(), st.integers(0, 10**6), st.integers(1, 255))
def test_a_changed_byte_never_verifies(
    statement: tuple[list[int], int], where: int, mask: int
) -> None:
    values, bits = statement
    bundle = RangeProof.prove(values, bits)
    data = bytearray(bundle.proof.to_bytes())
    data[where % len(data)] ^= mask
    try:
        RangeProof.from_bytes(bytes(data)).verify(bundle.commitments, bits)
    except (ProofFormatError, VerificationError):
        return
    raise AssertionError("a tampered proof verified")
