"""zkp.sigma: completeness, soundness-ish checks, batching, privacy of error messages."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pytest

from zkgrid.errors import InvalidArgumentError, VerificationError
from zkp import group, sigma
from zkp.generators import G, pedersen_h
from zkp.group import ORDER, Point, Scalar, mul, random_scalar
from zkp.pedersen import Commitment, commit
from zkp.sigma import (
    EqualityProof,
    LinearCombinationClaim,
    LinearCombinationProof,
    OpeningProof,
)


def counter_rng(start: int = 1) -> Callable[[], int]:
    """Deterministic nonces for test vectors (never in production)."""
    counter: Iterator[int] = itertools.count(start)
    return lambda: 0x5EED_0000_0000 + next(counter)


@dataclass
class Bill:
    coefficients: list[int]
    values: list[int]
    blindings: list[Scalar]
    commitments: list[Commitment]
    constant: int
    context: bytes


def make_bill(
    coefficients: Sequence[int], constant: int = 0, context: bytes = b"meter-1/2026-11"
) -> Bill:
    values = [secrets.randbelow(1 << 32) for _ in coefficients]
    blindings = [random_scalar() for _ in coefficients]
    commitments = [commit(v, r) for v, r in zip(values, blindings, strict=True)]
    return Bill(list(coefficients), values, blindings, commitments, constant, context)


def prove_bill(bill: Bill) -> tuple[LinearCombinationProof, int]:
    return LinearCombinationProof.prove(
        bill.coefficients,
        bill.commitments,
        bill.values,
        bill.blindings,
        bill.constant,
        bill.context,
    )


def claim(bill: Bill) -> LinearCombinationClaim:
    proof, total = prove_bill(bill)
    return LinearCombinationClaim(
        proof, bill.coefficients, bill.commitments, total, bill.constant, bill.context
    )


# --- opening --------------------------------------------------------------------------


@pytest.mark.parametrize("context", [b"", b"meter-17/2026-11"])
def test_opening_completeness_and_encoding(context: bytes) -> None:
    v, r = 123_456, random_scalar()
    c = commit(v, r)
    proof = OpeningProof.prove(c, v, r, context)
    proof.verify(c, context)
    data = proof.to_bytes()
    assert len(data) == OpeningProof.SIZE == 97
    again = OpeningProof.from_bytes(data)
    assert again == proof
    again.verify(c, context)


def test_opening_negative_value() -> None:
    r = random_scalar()
    c = commit(-42, r)
    OpeningProof.prove(c, -42, r).verify(c)


def test_opening_rejects_wrong_statement() -> None:
    v, r = 99, random_scalar()
    c = commit(v, r)
    other = commit(v, random_scalar())
    proof = OpeningProof.prove(c, v, r, b"ctx")
    with pytest.raises(VerificationError, match=r"\(sigma.md S1\)"):
        proof.verify(other, b"ctx")
    with pytest.raises(VerificationError):
        proof.verify(c, b"ctx2")
    with pytest.raises(VerificationError):
        proof.verify(c)


def test_opening_prover_rejects_wrong_opening() -> None:
    r = random_scalar()
    c = commit(5, r)
    with pytest.raises(InvalidArgumentError):
        OpeningProof.prove(c, 6, r)
    with pytest.raises(InvalidArgumentError):
        OpeningProof.prove(c, 5, r + 1)


def test_opening_deterministic_with_test_rng() -> None:
    c = commit(7, 11)
    p1 = OpeningProof.prove(c, 7, 11, rng=counter_rng())
    p2 = OpeningProof.prove(c, 7, 11, rng=counter_rng())
    p3 = OpeningProof.prove(c, 7, 11, b"x", rng=counter_rng())
    assert p1.to_bytes() == p2.to_bytes()
    assert p1.to_bytes() != p3.to_bytes()
    # without rng the nonces are fresh
    assert OpeningProof.prove(c, 7, 11).to_bytes() != OpeningProof.prove(c, 7, 11).to_bytes()


# --- linear combination -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("coefficients", "constant"),
    [
        ([1], 0),
        ([3, 5, 7], 0),
        ([-4, 2, 0, 1], 1_000),
        ([10**50, -(10**50) + 1, -(2**180)], -17),
        ([25] * 24, 9_999),
    ],
)
def test_linear_combination_completeness(coefficients: list[int], constant: int) -> None:
    bill = make_bill(coefficients, constant)
    proof, total = prove_bill(bill)
    expected = sum(p * v for p, v in zip(coefficients, bill.values, strict=True)) + constant
    assert total == expected
    proof.verify(bill.coefficients, bill.commitments, total, bill.constant, bill.context)
    data = proof.to_bytes()
    assert len(data) == LinearCombinationProof.SIZE == 65
    again = LinearCombinationProof.from_bytes(data)
    assert again == proof
    again.verify(bill.coefficients, bill.commitments, total, bill.constant, bill.context)


def test_linear_combination_verifier_keywords() -> None:
    bill = make_bill([2, 3], constant=5)
    proof, total = LinearCombinationProof.prove(
        coefficients=bill.coefficients,
        commitments=bill.commitments,
        values=bill.values,
        blindings=bill.blindings,
        constant=5,
        context=bill.context,
    )
    proof.verify(
        coefficients=bill.coefficients,
        commitments=bill.commitments,
        total=total,
        constant=5,
        context=bill.context,
    )


def _bad_statements(
    bill: Bill, total: int
) -> list[tuple[str, list[int], list[Commitment], int, int, bytes]]:
    cs = bill.commitments
    ps = bill.coefficients
    foreign = commit(bill.values[0], random_scalar())
    return [
        ("total+1", ps, cs, total + 1, bill.constant, bill.context),
        ("total-1", ps, cs, total - 1, bill.constant, bill.context),
        ("total+q", ps, cs, total + ORDER, bill.constant, bill.context),
        ("negated total", ps, cs, -total, bill.constant, bill.context),
        ("coefficient", [ps[0] + 1, *ps[1:]], cs, total, bill.constant, bill.context),
        ("commitment", ps, [foreign, *cs[1:]], total, bill.constant, bill.context),
        ("swapped", ps, [cs[1], cs[0], *cs[2:]], total, bill.constant, bill.context),
        ("constant", ps, cs, total, bill.constant + 1, bill.context),
        ("context", ps, cs, total, bill.constant, bill.context + b"!"),
        ("no context", ps, cs, total, bill.constant, b""),
        ("dropped", ps[:-1], cs[:-1], total, bill.constant, bill.context),
    ]


def test_linear_combination_rejects_wrong_statements() -> None:
    bill = make_bill([3, -7, 11], constant=50)
    proof, total = prove_bill(bill)
    for _name, ps, cs, b, k, ctx in _bad_statements(bill, total):
        with pytest.raises(VerificationError, match=r"\(sigma.md S2'?\)"):
            proof.verify(ps, cs, b, k, ctx)


def test_swapped_commitments_fail_even_when_the_sum_is_unchanged() -> None:
    bill = make_bill([4, 4])
    proof, total = prove_bill(bill)
    swapped = [bill.commitments[1], bill.commitments[0]]
    with pytest.raises(VerificationError):
        proof.verify(bill.coefficients, swapped, total, 0, bill.context)


def test_linear_combination_proof_for_one_commitment_used_on_another() -> None:
    v, r1, r2 = 55_555, random_scalar(), random_scalar()
    c1, c2 = commit(v, r1), commit(v, r2)
    proof, total = LinearCombinationProof.prove([1], [c1], [v], [r1])
    proof.verify([1], [c1], total)
    with pytest.raises(VerificationError):
        proof.verify([1], [c2], total)


def test_coefficients_are_taken_mod_order() -> None:
    bill = make_bill([3, 5])
    proof, total = prove_bill(bill)
    proof.verify([3 + ORDER, 5 - ORDER], bill.commitments, total, 0, bill.context)


def test_total_may_be_negative() -> None:
    bill = make_bill([-(2**180), 1], constant=-3)
    proof, total = prove_bill(bill)
    assert total == -(2**180) * bill.values[0] + bill.values[1] - 3
    assert total < 0
    proof.verify(bill.coefficients, bill.commitments, total, -3, bill.context)


def test_total_is_the_centred_representative() -> None:
    # Coefficients are taken mod q, so ORDER + 3 is 3 and 10**90 is 10**90 mod q; the
    # total is the centred representative of sum p_i*v_i mod q, plus k.
    bill = make_bill([ORDER + 3, 10**90], constant=10**100)
    proof, total = prove_bill(bill)
    d = total - bill.constant
    assert -sigma.HALF_ORDER <= d <= sigma.HALF_ORDER
    assert (d - 3 * bill.values[0] - 10**90 * bill.values[1]) % ORDER == 0
    proof.verify(bill.coefficients, bill.commitments, total, bill.constant, bill.context)
    small = make_bill([ORDER + 3])
    _, small_total = prove_bill(small)
    assert small_total == 3 * small.values[0]


@pytest.mark.parametrize("shift", [ORDER, -ORDER, 5 * ORDER])
def test_total_shifted_by_multiples_of_the_order_is_rejected(shift: int) -> None:
    # B + q claims the same residue; the centred-range rule (S2') makes B unique.
    bill = make_bill([3, 4], constant=7)
    item = claim(bill)
    with pytest.raises(VerificationError, match=r"\(sigma.md S2'\)"):
        item.proof.verify(bill.coefficients, bill.commitments, item.total + shift, 7, bill.context)
    with pytest.raises(VerificationError, match=r"\(sigma.md S2'\)"):
        LinearCombinationProof.verify_batch([item._replace(total=item.total + shift)])
    # shifting the constant along keeps B - k centred but the transcript binds B exactly
    with pytest.raises(VerificationError, match=r"\(sigma.md S2\)"):
        item.proof.verify(
            bill.coefficients, bill.commitments, item.total + shift, 7 + shift, bill.context
        )


def test_centred_range_boundaries() -> None:
    half = sigma.HALF_ORDER
    r = random_scalar()
    for v in (half, -half):
        c = commit(v, r)
        proof, total = LinearCombinationProof.prove([1], [c], [v], [r])
        assert total == v
        proof.verify([1], [c], total)
    # half + 1 is -half mod q
    c = commit(half + 1, r)
    proof, total = LinearCombinationProof.prove([1], [c], [half + 1], [r])
    assert total == -half
    proof.verify([1], [c], total)


def test_linear_combination_prover_rejects_wrong_openings() -> None:
    bill = make_bill([2, 3])
    with pytest.raises(InvalidArgumentError):
        LinearCombinationProof.prove(
            bill.coefficients,
            bill.commitments,
            [bill.values[0] + 1, bill.values[1]],
            bill.blindings,
        )
    with pytest.raises(InvalidArgumentError):
        LinearCombinationProof.prove(
            bill.coefficients, bill.commitments, bill.values, [bill.blindings[0], 1]
        )


def test_linear_combination_invalid_arguments() -> None:
    bill = make_bill([2, 3])
    proof, total = prove_bill(bill)
    with pytest.raises(InvalidArgumentError):
        proof.verify([2], bill.commitments, total)
    with pytest.raises(InvalidArgumentError):
        proof.verify([], [], total)
    with pytest.raises(InvalidArgumentError):
        proof.verify([2, 3], [bill.commitments[0], commit(0, 0)], total)
    with pytest.raises(InvalidArgumentError):
        proof.verify(bill.coefficients, bill.commitments, total, 0, "text")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        LinearCombinationProof.prove([2, 3], bill.commitments, bill.values[:1], bill.blindings)
    with pytest.raises(InvalidArgumentError):
        LinearCombinationProof.prove(
            bill.coefficients, bill.commitments, bill.values, bill.blindings, rng=lambda: ORDER
        )


def test_constructor_validates_fields() -> None:
    h = pedersen_h()
    with pytest.raises(InvalidArgumentError):
        LinearCombinationProof(h, ORDER)
    with pytest.raises(InvalidArgumentError):
        LinearCombinationProof(h, -1)
    with pytest.raises(InvalidArgumentError):
        EqualityProof(mul(0, h), 1)
    with pytest.raises(InvalidArgumentError):
        OpeningProof(h, 1, ORDER)


# --- batch ------------------------------------------------------------------------------


def _batch() -> list[LinearCombinationClaim]:
    shapes = [[1], [3, -2], [5, 5, 5], [10**40, 7, -1, 2], [1] * 9]
    return [
        claim(make_bill(ps, constant=i * 13, context=b"meter-%d" % i))
        for i, ps in enumerate(shapes)
    ]


def test_batch_good_passes() -> None:
    items = _batch()
    LinearCombinationProof.verify_batch(items)
    LinearCombinationProof.verify_batch(items[:1])
    LinearCombinationProof.verify_batch([])
    LinearCombinationProof.verify_batch(iter(items))  # any iterable
    LinearCombinationProof.verify_batch([tuple(item) for item in items])  # type: ignore[misc]
    plain = claim(make_bill([2, 3], context=b""))
    LinearCombinationProof.verify_batch([plain[:4]])  # type: ignore[list-item]
    LinearCombinationProof.verify_batch(items, rng=counter_rng())


@pytest.mark.parametrize("position", [0, 2, 4])
def test_batch_with_one_bad_proof_fails(position: int) -> None:
    items = _batch()
    bad = list(items)
    bad[position] = items[position]._replace(total=items[position].total + 1)
    with pytest.raises(VerificationError, match=r"\(sigma.md S4\)"):
        LinearCombinationProof.verify_batch(bad)
    bad = list(items)
    bad[position] = items[position]._replace(context=b"other meter")
    with pytest.raises(VerificationError):
        LinearCombinationProof.verify_batch(bad)
    bad = list(items)
    other = (position + 1) % len(items)
    bad[position] = items[position]._replace(proof=items[other].proof)
    with pytest.raises(VerificationError):
        LinearCombinationProof.verify_batch(bad)


def _challenge(
    coefficients: list[int], commitments: list[Commitment], total: int, nonce_point: Point
) -> int:
    """The verifier's challenge, recomputed through the module's transcript (sigma.md T2)."""
    transcript = sigma._linear_transcript(
        [p % ORDER for p in coefficients], [c.to_bytes() for c in commitments], 0, total, b""
    )
    transcript.append_point(b"A", nonce_point)
    return transcript.challenge_scalar(b"c")


def test_batch_weights_stop_cancelling_forgeries() -> None:
    # Bill 1 claims a wrong total v1 + 1: its (S2) residual is c1*G. Bill 2 is honest
    # but hides -c1*G in its nonce point. Without random weights the residuals cancel.
    h = pedersen_h()
    v1, r1, v2, r2 = 1_000, random_scalar(), 2_000, random_scalar()
    c1, c2 = [commit(v1, r1)], [commit(v2, r2)]
    a1, a2 = random_scalar(), random_scalar()
    nonce1 = mul(a1, h)
    ch1 = _challenge([1], c1, v1 + 1, nonce1)
    forged1 = LinearCombinationProof(nonce1, (a1 + ch1 * r1) % ORDER)
    nonce2 = mul(a2, h) + mul(ch1, G)
    ch2 = _challenge([1], c2, v2, nonce2)
    forged2 = LinearCombinationProof(nonce2, (a2 + ch2 * r2) % ORDER)
    items = [
        LinearCombinationClaim(forged1, [1], c1, v1 + 1),
        LinearCombinationClaim(forged2, [1], c2, v2),
    ]
    with pytest.raises(VerificationError):
        forged1.verify([1], c1, v1 + 1)
    with pytest.raises(VerificationError):
        forged2.verify([1], c2, v2)
    # the construction is right: with all weights 1 the batch would accept
    LinearCombinationProof.verify_batch(items, rng=lambda: 1)
    with pytest.raises(VerificationError):
        LinearCombinationProof.verify_batch(items)


def test_batch_invalid_items() -> None:
    items = _batch()
    with pytest.raises(InvalidArgumentError):
        LinearCombinationProof.verify_batch([items[1]._replace(coefficients=[1])])
    with pytest.raises(InvalidArgumentError):
        LinearCombinationProof.verify_batch([items[1]._replace(proof=object())])  # type: ignore[arg-type]


def test_each_verification_is_one_msm(monkeypatch: pytest.MonkeyPatch) -> None:
    items = _batch()
    v, r = 5, random_scalar()
    r2 = random_scalar()
    c1, c2 = commit(v, r), commit(v, r2)
    equality = EqualityProof.prove(c1, c2, r, r2)
    opening = OpeningProof.prove(c1, v, r)
    calls: list[int] = []
    real_msm = group.msm

    def counting_msm(scalars: Sequence[int], points: Sequence[Point]) -> Point:
        calls.append(len(points))
        return real_msm(scalars, points)

    monkeypatch.setattr("zkp.sigma.msm", counting_msm)
    opening.verify(c1)
    assert calls == [4]  # G, H, A, C
    calls.clear()
    equality.verify(c1, c2)
    assert calls == [4]  # H, A, C1, C2
    calls.clear()
    item = items[3]
    item.proof.verify(item.coefficients, item.commitments, item.total, item.constant, item.context)
    assert calls == [len(item.commitments) + 3]  # C_i, G, H, A
    calls.clear()
    LinearCombinationProof.verify_batch(items)
    assert calls == [2 + sum(len(i.commitments) + 1 for i in items)]


# --- equality ---------------------------------------------------------------------------


def _equal_pair(value: int = 987_654) -> tuple[Commitment, Commitment, Scalar, Scalar]:
    r1, r2 = random_scalar(), random_scalar()
    return commit(value, r1), commit(value, r2), r1, r2


@pytest.mark.parametrize("context", [b"", b"period 2026-11"])
def test_equality_completeness_and_encoding(context: bytes) -> None:
    c1, c2, r1, r2 = _equal_pair()
    proof = EqualityProof.prove(c1, c2, r1, r2, context)
    proof.verify(c1, c2, context)
    data = proof.to_bytes()
    assert len(data) == EqualityProof.SIZE == 65
    again = EqualityProof.from_bytes(data)
    assert again == proof
    again.verify(c1, c2, context)


def test_equality_rejects_wrong_statements() -> None:
    c1, c2, r1, r2 = _equal_pair()
    c3 = commit(987_654, random_scalar())
    proof = EqualityProof.prove(c1, c2, r1, r2, b"ctx")
    for a, b, ctx in [(c2, c1, b"ctx"), (c1, c3, b"ctx"), (c3, c2, b"ctx"), (c1, c2, b"")]:
        with pytest.raises(VerificationError, match=r"\(sigma.md S3\)"):
            proof.verify(a, b, ctx)


def test_equality_prover_rejects_different_values() -> None:
    r1, r2 = random_scalar(), random_scalar()
    with pytest.raises(InvalidArgumentError):
        EqualityProof.prove(commit(1, r1), commit(2, r2), r1, r2)


def test_equality_proof_for_another_pair_fails_on_different_values() -> None:
    c1, c2, r1, r2 = _equal_pair(10)
    proof = EqualityProof.prove(c1, c2, r1, r2)
    d1, d2 = commit(10, r1), commit(11, r2)
    with pytest.raises(VerificationError):
        proof.verify(d1, d2)


def test_domain_separation_between_equality_and_linear_combination() -> None:
    # "C1 - C2 commits to 0" is the same relation for both protocols; the proofs
    # must not be interchangeable.
    c1, c2, r1, r2 = _equal_pair(4_444)
    eq = EqualityProof.prove(c1, c2, r1, r2)
    lin, total = LinearCombinationProof.prove([1, -1], [c1, c2], [4_444, 4_444], [r1, r2])
    assert total == 0
    lin.verify([1, -1], [c1, c2], 0)
    with pytest.raises(VerificationError):
        LinearCombinationProof.from_bytes(eq.to_bytes()).verify([1, -1], [c1, c2], 0)
    with pytest.raises(VerificationError):
        EqualityProof.from_bytes(lin.to_bytes()).verify(c1, c2)


# --- privacy of error messages -------------------------------------------------------------


def _secret_strings(secrets_used: Sequence[int]) -> list[str]:
    out = []
    for x in secrets_used:
        for y in {x % ORDER, (-x) % ORDER, abs(x)}:
            out += [str(y), hex(y)[2:], f"{y:064x}", f"{y:x}".upper()]
    return out


def test_error_messages_carry_no_secrets() -> None:
    nonce_start = 0x5EED_0000_0000
    values = [314_159_265, 271_828_182, 141_421_356]
    blindings = [random_scalar() for _ in values]
    commitments = [commit(v, r) for v, r in zip(values, blindings, strict=True)]
    coefficients = [2, -3, 5]
    nonces = [nonce_start + i for i in range(1, 20)]
    messages: list[str] = []

    def collect(fn: Callable[[], object]) -> None:
        try:
            fn()
        except (VerificationError, InvalidArgumentError) as exc:
            messages.extend([str(exc), repr(exc)])
        else:
            pytest.fail("expected a failure")

    lin, total = LinearCombinationProof.prove(
        coefficients, commitments, values, blindings, rng=counter_rng()
    )
    collect(lambda: lin.verify(coefficients, commitments, total + 1))
    bad_item = (lin, coefficients, commitments, total - 1)
    collect(lambda: LinearCombinationProof.verify_batch([bad_item]))  # type: ignore[list-item]
    collect(
        lambda: LinearCombinationProof.prove(
            coefficients, commitments, [values[0] + 1, *values[1:]], blindings
        )
    )
    opening = OpeningProof.prove(commitments[0], values[0], blindings[0], rng=counter_rng())
    collect(lambda: opening.verify(commitments[1]))
    collect(lambda: OpeningProof.prove(commitments[0], values[1], blindings[0]))
    c2 = commit(values[0], blindings[1])
    eq = EqualityProof.prove(commitments[0], c2, blindings[0], blindings[1], rng=counter_rng())
    collect(lambda: eq.verify(c2, commitments[0]))
    collect(lambda: EqualityProof.prove(commitments[0], commitments[1], blindings[0], blindings[1]))

    forbidden = _secret_strings([*values, *blindings, *nonces])
    sums = [sum(p * r for p, r in zip(coefficients, blindings, strict=True))]
    forbidden += _secret_strings(sums)
    for message in messages:
        assert "sigma.md" in message or "match" in message or "same value" in message
        for secret in forbidden:
            assert secret not in message, message
