"""Property tests of batch verification with blame (zkp.batch, batch-verification.md B3):
for any subset of bad statements, ``find_invalid`` names exactly that subset.

Bad statements are real proofs of false statements, made through the provers' internals
(the public provers refuse false witnesses): a range proof of a value >= 2^n, a bill
proof of a wrong total, and pairs of bill forgeries whose residuals cancel without the
batch's random weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkgrid.errors import InvalidArgumentError, VerificationError
from zkp import batch, sigma
from zkp.generators import G, pedersen_h
from zkp.group import ORDER, Point, mul, random_scalar
from zkp.pedersen import Commitment, commit
from zkp.rangeproof import RangeProof, RangeProofStatement
from zkp.sigma import LinearCombinationClaim, LinearCombinationProof

POOL = 10

# ----------------------------------------------------------------------------- the generic core


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 64).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.sets(st.integers(0, max(n - 1, 0)), max_size=n),
            st.sets(st.integers(0, max(n - 1, 0)), max_size=n),
        )
    )
)
def test_generic_bisection_names_exactly_the_bad_ones(
    case: tuple[int, set[int], set[int]],
) -> None:
    n, wrong, unpreparable = case
    wrong = {i for i in wrong if i < n}
    unpreparable = {i for i in unpreparable if i < n}
    checks: list[int] = []

    def prepare(i: int) -> int:
        if i in unpreparable:
            raise (VerificationError if i % 2 else InvalidArgumentError)(f"statement {i}")
        return i

    def holds(part: Sequence[int]) -> bool:
        checks.append(len(part))
        return not any(i in wrong for i in part)

    assert batch.find_invalid(list(range(n)), prepare, holds) == sorted(wrong | unpreparable)
    # (B3) cost: one check when all hold, at most 1 + 2*b*ceil(log2 B) otherwise
    b = len(wrong - unpreparable)
    size = n - len(unpreparable)
    assert len(checks) <= (1 if size else 0) + 2 * b * max(1, math.ceil(math.log2(max(size, 1))))


def test_other_exceptions_are_not_blamed_on_the_statement() -> None:
    def prepare(i: int) -> int:
        raise RuntimeError("a bug, not a bad statement")

    try:
        batch.find_invalid([1], prepare, lambda part: True)
    except RuntimeError:
        return
    raise AssertionError("the exception was swallowed")


# ----------------------------------------------------------------------------- bill proofs


def _honest_bill(i: int) -> LinearCombinationClaim:
    values = [100 + i, 7 * i, 3]
    blindings = [random_scalar() for _ in values]
    commitments = [commit(v, r) for v, r in zip(values, blindings, strict=True)]
    coefficients = [5, -2, 11 + i]
    context = b"bill-%d" % i
    proof, total = LinearCombinationProof.prove(
        coefficients, commitments, values, blindings, i, context
    )
    return LinearCombinationClaim(proof, coefficients, commitments, total, i, context)


def _challenge(claim: LinearCombinationClaim, nonce_point: Point) -> int:
    transcript = sigma._linear_transcript(
        [p % ORDER for p in claim.coefficients],
        [c.to_bytes() for c in claim.commitments],
        claim.constant % ORDER,
        claim.total,
        claim.context,
    )
    transcript.append_point(b"A", nonce_point)
    return transcript.challenge_scalar(b"c")


def _forged_bill(i: int, shift: int, hidden: Point | None = None) -> LinearCombinationClaim:
    """The prover's steps for a total that is off by ``shift`` (the openings do not match):
    what ``prove`` would output if it did not check the openings first. ``hidden`` is added
    to the nonce point (the cancelling forgery of sigma.md, S4)."""
    values = [40 + i, 2]
    blindings = [random_scalar() for _ in values]
    commitments: list[Commitment] = [commit(v, r) for v, r in zip(values, blindings, strict=True)]
    coefficients = [3, 9]
    total = 3 * values[0] + 9 * values[1] + shift
    big_r = (3 * blindings[0] + 9 * blindings[1]) % ORDER
    claim = LinearCombinationClaim(
        LinearCombinationProof(pedersen_h(), 1), coefficients, commitments, total, 0, b"f%d" % i
    )
    a = random_scalar()
    nonce = mul(a, pedersen_h()) if hidden is None else mul(a, pedersen_h()) + hidden
    c = _challenge(claim, nonce)
    return claim._replace(proof=LinearCombinationProof(nonce, (a + c * big_r) % ORDER))


HONEST_BILLS = [_honest_bill(i) for i in range(POOL)]
FORGED_BILLS = [_forged_bill(i, 1 + i) for i in range(POOL)]


def _cancelling_pair(i: int) -> tuple[LinearCombinationClaim, LinearCombinationClaim]:
    """Two false claims whose (S2) residuals cancel in an unweighted sum."""
    first = _forged_bill(100 + i, 1)
    nonce = first.proof.nonce_point
    c1 = _challenge(first, nonce)
    second = _forged_bill(200 + i, 0, hidden=mul(c1, G))  # residual -c1*G cancels c1*G
    return first, second


def test_forgeries_are_real_false_claims() -> None:
    for claim in FORGED_BILLS:
        try:
            claim.proof.verify(
                claim.coefficients, claim.commitments, claim.total, claim.constant, claim.context
            )
        except VerificationError:
            continue
        raise AssertionError("a forged bill verified")
    first, second = _cancelling_pair(0)
    LinearCombinationProof.verify_batch([first, second], rng=lambda: 1)  # unweighted: cancels
    assert LinearCombinationProof.find_invalid([first, second]) == [0, 1]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["good", "forged", "domain", "pair"]), min_size=0, max_size=12))
def test_bill_find_invalid_names_exactly_the_bad_claims(kinds: list[str]) -> None:
    claims: list[LinearCombinationClaim] = []
    bad: list[int] = []
    for position, kind in enumerate(kinds):
        if kind == "good":
            claims.append(HONEST_BILLS[position % POOL])
        elif kind == "forged":
            bad.append(len(claims))
            claims.append(FORGED_BILLS[position % POOL])
        elif kind == "domain":  # |B - k| > (q-1)/2: refused before any group operation
            bad.append(len(claims))
            honest = HONEST_BILLS[position % POOL]
            claims.append(honest._replace(total=honest.total + ORDER))
        else:
            bad += [len(claims), len(claims) + 1]
            claims += _cancelling_pair(position)
    assert LinearCombinationProof.find_invalid(claims) == bad
    if bad:
        try:
            LinearCombinationProof.verify_batch(claims)
        except (VerificationError, InvalidArgumentError):
            pass
        else:
            raise AssertionError("a batch with a bad claim verified")
    else:
        LinearCombinationProof.verify_batch(claims)


# ----------------------------------------------------------------------------- range proofs


def _honest_range(i: int) -> RangeProofStatement:
    bundle = RangeProof.prove([i, 255 - i], 8, context=b"r%d" % i)
    return RangeProofStatement(bundle.proof, bundle.commitments, 8, b"r%d" % i)


def _forged_range(i: int) -> RangeProofStatement:
    """A proof of 256 + i in [0, 2^8): the prover's internals without its range check."""
    bundle = RangeProof._prove_unchecked([256 + i, i], 8, None, context=b"x%d" % i, rng=None)
    return RangeProofStatement(bundle.proof, bundle.commitments, 8, b"x%d" % i)


HONEST_RANGES = [_honest_range(i) for i in range(POOL)]
FORGED_RANGES = [_forged_range(i) for i in range(POOL)]


@settings(max_examples=20, deadline=None)
@given(st.lists(st.booleans(), min_size=0, max_size=10))
def test_range_find_invalid_names_exactly_the_bad_proofs(forged: list[bool]) -> None:
    statements = [
        FORGED_RANGES[i % POOL] if bad else HONEST_RANGES[i % POOL]
        for i, bad in enumerate(forged)
    ]
    assert RangeProof.find_invalid(statements) == [i for i, bad in enumerate(forged) if bad]


# ----------------------------------------------------------------------------- (B3') one culprit


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 40).flatmap(
        lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1), max_size=4))
    )
)
def test_one_wrong_statement_is_named_from_two_weightings(case: tuple[int, set[int]]) -> None:
    """Statements as points E_p (O when they hold), a wrong one a random non-zero point,
    two of them possibly related (E_k = 2 E_j): exactly the wrong ones are named; one
    alone costs two weighted sums and no bisection."""
    n, wrong = case
    errors = {p: mul(random_scalar(), G) for p in wrong}
    if len(wrong) >= 2:  # a prover choosing related errors gains nothing
        first, second = sorted(wrong)[:2]
        errors[second] = errors[first] + errors[first]
    sums: list[int] = []
    checks: list[int] = []

    def summer(part: Sequence[int], _c: Sequence[int]) -> Callable[[Sequence[int]], Point]:
        def weighted_sum(weights: Sequence[int]) -> Point:
            sums.append(len(part))
            total = mul(0, G)
            for p, w in zip(part, weights, strict=True):
                if p in errors:
                    total = total + mul(w, errors[p])
            return total

        return weighted_sum

    def holds(part: Sequence[int]) -> bool:
        checks.append(len(part))
        return not any(p in wrong for p in part)

    found = batch.find_invalid(list(range(n)), lambda p: p, holds, summer=summer)
    assert found == sorted(wrong)
    if len(wrong) <= 1:
        assert checks == []  # no bisection
        assert len(sums) == (1 if not wrong else 2)


def test_a_range_batch_with_one_forged_proof_costs_two_sums(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from zkp import rangeproof

    calls: list[tuple[int, bool]] = []
    real = rangeproof._split_sum

    def counting(prepared: Sequence[object], *args: Sequence[int], own_parts: bool) -> object:
        calls.append((len(prepared), own_parts))
        return real(prepared, *args, own_parts=own_parts)  # type: ignore[arg-type]

    monkeypatch.setattr(rangeproof, "_split_sum", counting)
    statements = [*HONEST_RANGES[:7], FORGED_RANGES[3], *HONEST_RANGES[7:]]
    assert RangeProof.find_invalid(statements) == [7]
    n = len(statements)
    # (B3'): one whole sum, then the generators' part alone; no bisection
    assert calls == [(n, True), (n, False)]
