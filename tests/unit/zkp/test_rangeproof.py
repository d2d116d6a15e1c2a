"""Bulletproofs range proofs: completeness, soundness, binding to the statement, batches."""

from __future__ import annotations

import random

import pytest

from zkgrid.errors import (
    InvalidArgumentError,
    ProofFormatError,
    ValueOutOfRangeError,
    VerificationError,
)
from zkp.drbg import SeededScalars
from zkp.pedersen import commit
from zkp.rangeproof import RangeProof, RangeProofStatement, proof_size

BITS = (8, 16, 32, 64)
COUNTS = (1, 2, 3, 5, 96, 192)


def _values(bits: int, count: int, seed: int) -> list[int]:
    """Values that always include both ends of the range."""
    rnd = random.Random(seed)
    top = (1 << bits) - 1
    vals = [0, top] + [rnd.randrange(1 << bits) for _ in range(count)]
    return vals[:count] if count > 1 else [top if seed % 2 else 0]


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("count", COUNTS)
def test_completeness(bits: int, count: int) -> None:
    values = _values(bits, count, bits * 1000 + count)
    bundle = RangeProof.prove(values, bits)
    assert len(bundle.commitments) == count
    assert len(bundle.blindings) == count
    for v, gamma, c in zip(values, bundle.blindings, bundle.commitments, strict=True):
        assert commit(v, gamma) == c
    data = bundle.proof.to_bytes()
    assert len(data) == proof_size(bits, count)
    parsed = RangeProof.from_bytes(data)
    parsed.verify(bundle.commitments, bits)
    assert parsed.to_bytes() == data


def test_both_ends_of_every_range_verify() -> None:
    for bits in BITS:
        for value in (0, 1, (1 << bits) - 1):
            bundle = RangeProof.prove([value], bits)
            bundle.proof.verify(bundle.commitments, bits)


def test_size_of_a_single_64_bit_proof_is_688_bytes() -> None:
    bundle = RangeProof.prove([42], 64)
    assert len(bundle.proof.to_bytes()) == 688 == proof_size(64, 1)
    # 2*ceil(log2(n*m')) + 4 points plus 5 scalars
    for bits, count, rounds in ((8, 1, 3), (32, 192, 13), (16, 3, 6)):
        assert proof_size(bits, count) == 33 * (2 * rounds + 4) + 5 * 32


def test_caller_blindings_are_used() -> None:
    blindings = [11, 22, 33]
    bundle = RangeProof.prove([1, 2, 3], 16, blindings)
    assert bundle.blindings == blindings
    assert bundle.commitments == [commit(1, 11), commit(2, 22), commit(3, 33)]
    bundle.proof.verify(bundle.commitments, 16)


@pytest.mark.parametrize("bits", BITS)
def test_prover_refuses_values_outside_the_range(bits: int) -> None:
    for bad in (1 << bits, -1, (1 << bits) + 5):
        with pytest.raises(ValueOutOfRangeError) as info:
            RangeProof.prove([3, bad], bits)
        assert "value 1" in str(info.value)
        assert str(bad) not in str(info.value)


def test_prover_refuses_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError):
        RangeProof.prove([1], 12)
    with pytest.raises(InvalidArgumentError):
        RangeProof.prove([], 8)
    with pytest.raises(InvalidArgumentError):
        RangeProof.prove([True], 8)
    with pytest.raises(InvalidArgumentError):
        RangeProof.prove([1, 2], 8, [5])
    with pytest.raises(InvalidArgumentError):
        RangeProof.prove([1], 8, [0])


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("bad", ["two_to_n", "minus_one", "huge"])
def test_soundness_out_of_range_value_never_verifies(bits: int, bad: str) -> None:
    value = {"two_to_n": 1 << bits, "minus_one": -1, "huge": (1 << bits) * 3 + 7}[bad]
    for values in ([value], [5, value, 7]):
        bundle = RangeProof._prove_unchecked(values, bits, None, context=b"", rng=None)
        with pytest.raises(VerificationError):
            bundle.proof.verify(bundle.commitments, bits)


def test_proof_does_not_verify_against_other_statements() -> None:
    bundle = RangeProof.prove([10, 20, 30], 32, context=b"meter-1/2026-11-21")
    proof, cs = bundle.proof, bundle.commitments
    proof.verify(cs, 32, b"meter-1/2026-11-21")
    with pytest.raises(VerificationError):
        proof.verify(cs, 32)  # other context
    with pytest.raises(VerificationError):
        proof.verify(cs, 32, b"meter-2/2026-11-21")
    with pytest.raises(VerificationError):
        proof.verify([cs[1], cs[0], cs[2]], 32, b"meter-1/2026-11-21")  # reordered
    with pytest.raises(VerificationError):
        proof.verify([cs[0], cs[1], commit(30, 1)], 32, b"meter-1/2026-11-21")
    with pytest.raises(VerificationError):
        proof.verify(cs, 16, b"meter-1/2026-11-21")  # other bit width, other round count
    with pytest.raises(VerificationError):
        # 4 commitments pad to the same m' = 4 as 3: same shape, other statement
        proof.verify([*cs, commit(1, 2)], 32, b"meter-1/2026-11-21")
    with pytest.raises(VerificationError):
        proof.verify(cs[:2], 32, b"meter-1/2026-11-21")


def test_bit_widths_with_equal_rounds_do_not_cross_verify() -> None:
    # 8 bits x 2 values and 16 bits x 1 value both have N = 16.
    bundle = RangeProof.prove([3, 4], 8)
    with pytest.raises(VerificationError):
        bundle.proof.verify(bundle.commitments[:1], 16)


def test_batch_verification_of_mixed_shapes_and_bisection() -> None:
    rnd = random.Random(7)
    statements = []
    for bits, count in ((8, 1), (16, 3), (32, 2), (64, 1), (8, 5), (32, 1), (64, 2)):
        values = [rnd.randrange(1 << bits) for _ in range(count)]
        ctx = f"ctx-{bits}-{count}".encode()
        bundle = RangeProof.prove(values, bits, context=ctx)
        statements.append(RangeProofStatement(bundle.proof, bundle.commitments, bits, ctx))
    RangeProof.verify_batch(statements)
    assert RangeProof.find_invalid(statements) == []

    bad = list(statements)
    # A valid proof moved to another context, and one with a swapped commitment.
    bad[2] = RangeProofStatement(bad[2].proof, bad[2].commitments, 32, b"elsewhere")
    bad[5] = RangeProofStatement(bad[5].proof, [commit(1, 1)], 32, bad[5].context)
    with pytest.raises(VerificationError):
        RangeProof.verify_batch(bad)
    assert RangeProof.find_invalid(bad) == [2, 5]
    # A wrongly shaped statement is reported without spoiling the others.
    bad[0] = RangeProofStatement(bad[0].proof, bad[0].commitments, 12, bad[0].context)
    assert RangeProof.find_invalid(bad) == [0, 2, 5]


def test_batch_of_one_bad_proof_among_many_fails() -> None:
    statements = []
    for i in range(12):
        bundle = RangeProof.prove([i], 8)
        statements.append(RangeProofStatement(bundle.proof, bundle.commitments, 8))
    forged = RangeProof._prove_unchecked([256], 8, None, context=b"", rng=None)
    statements[9] = RangeProofStatement(forged.proof, forged.commitments, 8)
    with pytest.raises(VerificationError):
        RangeProof.verify_batch(statements)
    assert RangeProof.find_invalid(statements) == [9]
    RangeProof.verify_batch([])


def test_seeded_prover_is_deterministic_and_random_prover_is_not() -> None:
    one = RangeProof.prove([5, 6], 16, rng=SeededScalars(b"seed"))
    two = RangeProof.prove([5, 6], 16, rng=SeededScalars(b"seed"))
    assert one.proof.to_bytes() == two.proof.to_bytes()
    three = RangeProof.prove([5, 6], 16)
    four = RangeProof.prove([5, 6], 16)
    assert three.proof.to_bytes() != four.proof.to_bytes()
    assert three.commitments != four.commitments


def test_parse_rejects_bad_lengths() -> None:
    data = RangeProof.prove([1], 8).proof.to_bytes()
    for bad in (b"", data[:-1], data + b"\x00", data[:-33], data + bytes(33), data + bytes(66)):
        with pytest.raises(ProofFormatError):
            RangeProof.from_bytes(bad)


def test_parse_rejects_scalar_not_below_order() -> None:
    data = bytearray(RangeProof.prove([1], 8).proof.to_bytes())
    data[-32:] = b"\xff" * 32
    with pytest.raises(ProofFormatError):
        RangeProof.from_bytes(bytes(data))


def test_many_from_bytes_parses_a_large_set_on_threads() -> None:
    bundles = [RangeProof.prove([i], 8) for i in range(60)]
    blobs = [b.proof.to_bytes() for b in bundles]  # 60 * 10 points > threading threshold
    parsed = RangeProof.many_from_bytes(blobs)
    assert [p.to_bytes() for p in parsed] == blobs
    RangeProof.verify_batch(
        [RangeProofStatement(p, b.commitments, 8) for p, b in zip(parsed, bundles, strict=True)]
    )


def test_batch_of_mixed_shapes_and_contexts() -> None:
    rnd = random.Random(11)
    statements = []
    for bits, count in ((8, 3), (16, 1), (32, 5), (64, 2), (8, 1)):
        values = [rnd.randrange(1 << bits) for _ in range(count)]
        ctx = b"p%d" % bits
        bundle = RangeProof.prove(values, bits, context=ctx)
        statements.append(RangeProofStatement(bundle.proof, bundle.commitments, bits, ctx))
    RangeProof.verify_batch(statements)
    moved = list(statements)
    moved[2] = RangeProofStatement(moved[2].proof, moved[2].commitments, 32, b"other")
    with pytest.raises(VerificationError):
        RangeProof.verify_batch(moved)
    misshaped = list(statements)
    misshaped[1] = RangeProofStatement(misshaped[1].proof, misshaped[1].commitments, 32)
    with pytest.raises(VerificationError):
        RangeProof.verify_batch(misshaped)
    assert RangeProof.find_invalid(moved) == [2]
