"""circuits.r1cs: completeness, sizes, encodings, what a proof is bound to, batches, limits."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from circuits import r1cs
from circuits.r1cs import (
    MAX_GATES,
    MAX_INPUTS,
    ConstraintSystem,
    Prover,
    R1CSProof,
    R1CSStatement,
    UnsatisfiedConstraintError,
    Variable,
    Verifier,
    proof_size,
)
from tests.unit.circuits.circuit_support import (
    Build,
    Opening,
    build_prover,
    build_verifier,
    chain,
    openings,
    prove,
    prove_and_verify,
    statement,
)
from zkgrid.errors import InvalidArgumentError, ProofFormatError, VerificationError
from zkp.drbg import SeededScalars
from zkp.generators import BLOCK_PAIRS, PINNED_BLOCK_DIGESTS
from zkp.group import POINT_BYTES, SCALAR_BYTES, random_scalar
from zkp.pedersen import commit

# --------------------------------------------------------------------------- completeness


def test_multiplications_of_committed_inputs() -> None:
    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        x, y, z = xs
        _, _, xy = cs.multiply(x, y)
        cs.constrain(xy - z)  # x * y = z
        _, _, square = cs.multiply(x + y, x - y)
        cs.constrain(square - 13)  # (x + y)(x - y) = 7^2 - 6^2

    prover, _, proof = prove_and_verify(build, openings(7, 6, 42), b"mul")
    assert (prover.gates, prover.inputs, prover.constraints) == (2, 3, 6)
    assert proof.rounds == 1


def test_allocated_pairs_share_a_gate() -> None:
    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        (x,) = xs
        a = cs.allocate(cs.value(x + 1))
        b = cs.allocate(cs.value(x * 3))
        assert a.index == b.index  # one gate, left and right wire
        cs.constrain(a - x - 1)
        cs.constrain(b - 3 * x)
        v = cs.value(x)
        lone = cs.allocate(None if v is None else v * v)  # half a gate: its right wire is free
        _, _, xx = cs.multiply(x, x)
        cs.constrain(lone - xx)
        left, right, out = cs.allocate_multiplier(None if cs.value(x) is None else (4, 5))
        cs.constrain(left - 4)
        cs.constrain(right - 5)
        cs.constrain(out - 20)

    prover, verifier, _ = prove_and_verify(build, openings(11))
    assert prover.gates == verifier.gates == 4


def test_linear_constraints_on_inputs_and_constants_without_gates() -> None:
    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        x, y, z = xs
        cs.constrain(x + 2 * y - 3 * z + 5)
        cs.constrain(-x + 4)

    # 4 + 2*10 - 3 z + 5 = 0: z = 29/3, not an integer but a field element.
    third = pow(3, -1, r1cs.q) * 29 % r1cs.q
    prover, _, proof = prove_and_verify(build, [Opening(4, 1), Opening(10, 2), Opening(third, 3)])
    assert prover.gates == 0
    assert proof.rounds == 0
    assert len(proof.to_bytes()) == proof_size(0) == 424


def test_gates_on_constants_only() -> None:
    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        _, _, out = cs.multiply(3, 4)
        cs.constrain(out - 12)
        _, _, neg = cs.multiply(-3, 4)
        cs.constrain(neg + 12)

    prover, _, _ = prove_and_verify(build)
    assert prover.gates == 2


def test_the_empty_circuit() -> None:
    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        pass

    prover, _, proof = prove_and_verify(build, [], b"nothing")
    assert (prover.gates, prover.constraints, prover.inputs) == (0, 0, 0)
    assert proof.rounds == 0


@pytest.mark.parametrize("gates", [0, 1, 2, 3, 5, 8, 13])
def test_chains_of_any_gate_count_verify(gates: int) -> None:
    prover, _, proof = prove_and_verify(chain(gates), openings(12345), b"chain")
    assert prover.gates == gates
    rounds = math.ceil(math.log2(gates)) if gates > 1 else 0
    assert proof.rounds == rounds


# --------------------------------------------------------------------------- sizes and bytes


@pytest.mark.parametrize("gates", [0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 16])
def test_proof_size(gates: int) -> None:
    _, proof = prove(chain(gates), openings(3))
    k = math.ceil(math.log2(gates)) if gates > 1 else 0
    data = proof.to_bytes()
    assert len(data) == proof_size(gates) == 33 * (8 + 2 * k) + 5 * 32
    elements = (len(data) - 5 * SCALAR_BYTES) // POINT_BYTES + 5
    assert elements == 2 * k + 13
    assert len(proof.L) == len(proof.R) == proof.rounds == k


def test_proof_size_formula_up_to_the_limit() -> None:
    assert proof_size(MAX_GATES) == 33 * (8 + 2 * 17) + 160
    assert proof_size(MAX_GATES // 2 + 1) == proof_size(MAX_GATES)
    assert proof_size(MAX_GATES // 2) == 33 * (8 + 2 * 16) + 160


def test_round_trip() -> None:
    _, proof = prove(chain(5), openings(9), b"rt")
    data = proof.to_bytes()
    parsed = R1CSProof.from_bytes(data)
    assert parsed.to_bytes() == data
    assert R1CSProof.from_bytes(bytearray(data)).to_bytes() == data  # type: ignore[arg-type]
    assert R1CSProof.from_bytes(memoryview(data)).to_bytes() == data  # type: ignore[arg-type]
    for name in ("A_I", "A_O", "S", "T1", "T3", "T4", "T5", "T6"):
        assert getattr(parsed, name) == getattr(proof, name)
    assert parsed.L == proof.L
    assert parsed.R == proof.R
    assert (parsed.tau_x, parsed.mu, parsed.t_hat, parsed.a, parsed.b) == (
        proof.tau_x, proof.mu, proof.t_hat, proof.a, proof.b,
    )  # fmt: skip


def test_round_trip_verifies() -> None:
    inputs = openings(9)
    _, proof = prove(chain(5), inputs, b"rt")
    parsed = R1CSProof.from_bytes(proof.to_bytes())
    build_verifier(chain(5), [inputs[0].commitment]).verify(parsed, b"rt")


def test_from_bytes_refuses_what_is_not_bytes() -> None:
    with pytest.raises(ProofFormatError):
        R1CSProof.from_bytes("00" * 424)  # type: ignore[arg-type]


def test_a_length_beyond_the_largest_circuit_is_a_format_error() -> None:
    _, proof = prove(chain(1), openings(1))
    data = proof.to_bytes()
    points, scalars = data[: 8 * POINT_BYTES], data[8 * POINT_BYTES :]
    for rounds in (18, 19):
        # valid points, 2*rounds of them: only the length is wrong
        extra = (data[:POINT_BYTES] + data[POINT_BYTES : 2 * POINT_BYTES]) * rounds
        with pytest.raises(ProofFormatError):
            R1CSProof.from_bytes(points + extra + scalars)
    extra = (data[:POINT_BYTES] + data[POINT_BYTES : 2 * POINT_BYTES]) * 17
    assert R1CSProof.from_bytes(points + extra + scalars).rounds == 17


def test_proofs_are_randomised_unless_seeded() -> None:
    inputs = openings(5)
    prover = build_prover(chain(3), inputs)
    one, two = prover.prove(b"c"), prover.prove(b"c")
    assert one.to_bytes() != two.to_bytes()
    seeded = [prover.prove(b"c", rng=SeededScalars(b"seed")).to_bytes() for _ in range(2)]
    assert seeded[0] == seeded[1]
    assert prover.prove(b"c", rng=SeededScalars(b"other")).to_bytes() != seeded[0]


# --------------------------------------------------------------------------- binding


def _base(cs: ConstraintSystem, xs: list[Variable]) -> None:
    x, y = xs
    _, _, xy = cs.multiply(x, y)
    cs.constrain(xy - 42)
    _, _, double = cs.multiply(x + y, 2)
    cs.constrain(double - 26)
    _, _, cube = cs.multiply(xy, x)
    cs.constrain(cube - 252)


BASE_INPUTS = openings(6, 7)
BASE_COMMITMENTS = [o.commitment for o in BASE_INPUTS]


@pytest.fixture(scope="module")
def base_proof() -> R1CSProof:
    _, _, proof = prove_and_verify(_base, BASE_INPUTS, b"base")
    return proof


def test_another_context_fails(base_proof: R1CSProof) -> None:
    verifier = build_verifier(_base, BASE_COMMITMENTS)
    verifier.verify(base_proof, b"base")
    for context in (b"", b"base\x00", b"Base", b"bas", b"base" * 2):
        with pytest.raises(VerificationError):
            verifier.verify(base_proof, context)


def _equivalent(cs: ConstraintSystem, xs: list[Variable]) -> None:
    # the same statement as _base, with one constraint scaled by 2: another circuit
    x, y = xs
    _, _, xy = cs.multiply(x, y)
    cs.constrain(2 * xy - 84)
    _, _, double = cs.multiply(x + y, 2)
    cs.constrain(double - 26)
    _, _, cube = cs.multiply(xy, x)
    cs.constrain(cube - 252)


def _changed_coefficient(cs: ConstraintSystem, xs: list[Variable]) -> None:
    x, y = xs
    _, _, xy = cs.multiply(x, y)
    cs.constrain(xy - 42)
    _, _, double = cs.multiply(x + 3 * y, 2)  # 3 y instead of y
    cs.constrain(double - 26)
    _, _, cube = cs.multiply(xy, x)
    cs.constrain(cube - 252)


def _one_more_constraint(cs: ConstraintSystem, xs: list[Variable]) -> None:
    _base(cs, xs)
    cs.constrain(xs[0] - 6)  # true of the witness, still another circuit


def _one_more_gate_same_padding(cs: ConstraintSystem, xs: list[Variable]) -> None:
    _base(cs, xs)
    cs.multiply(xs[0], 1)  # 4 gates: still padded to 4


def _one_more_gate_more_padding(cs: ConstraintSystem, xs: list[Variable]) -> None:
    _one_more_gate_same_padding(cs, xs)
    cs.multiply(xs[1], 1)  # 5 gates: padded to 8


def _one_gate_less(cs: ConstraintSystem, xs: list[Variable]) -> None:
    x, y = xs
    _, _, xy = cs.multiply(x, y)
    cs.constrain(xy - 42)
    _, _, double = cs.multiply(x + y, 2)
    cs.constrain(double - 26)


@pytest.mark.parametrize(
    "other",
    [
        _equivalent,
        _changed_coefficient,
        _one_more_constraint,
        _one_more_gate_same_padding,
        _one_more_gate_more_padding,
        _one_gate_less,
    ],
)
def test_another_circuit_fails(base_proof: R1CSProof, other: Build) -> None:
    verifier = build_verifier(other, BASE_COMMITMENTS)
    assert verifier.digest() != build_verifier(_base, BASE_COMMITMENTS).digest()
    with pytest.raises(VerificationError):
        verifier.verify(base_proof, b"base")


def test_swapped_inputs_fail(base_proof: R1CSProof) -> None:
    verifier = build_verifier(_base, BASE_COMMITMENTS[::-1])
    with pytest.raises(VerificationError):
        verifier.verify(base_proof, b"base")


def test_swapped_inputs_fail_for_a_symmetric_circuit() -> None:
    def symmetric(cs: ConstraintSystem, xs: list[Variable]) -> None:
        x, y = xs
        _, _, xy = cs.multiply(x, y)
        cs.constrain(xy - 42)

    inputs = openings(6, 7)
    _, _, proof = prove_and_verify(symmetric, inputs)
    swapped = build_verifier(symmetric, [inputs[1].commitment, inputs[0].commitment])
    assert swapped.digest() == build_verifier(symmetric, [o.commitment for o in inputs]).digest()
    with pytest.raises(VerificationError):
        swapped.verify(proof)


def test_another_commitment_fails(base_proof: R1CSProof) -> None:
    others = [
        [commit(6, BASE_INPUTS[0].blinding + 1), BASE_COMMITMENTS[1]],  # same value
        [commit(7, BASE_INPUTS[0].blinding), BASE_COMMITMENTS[1]],  # another value
        [BASE_COMMITMENTS[0], BASE_COMMITMENTS[1] + commit(0, 1)],
    ]
    for commitments in others:
        with pytest.raises(VerificationError):
            build_verifier(_base, commitments).verify(base_proof, b"base")


def test_one_input_more_fails(base_proof: R1CSProof) -> None:
    def with_extra(cs: ConstraintSystem, xs: list[Variable]) -> None:
        _base(cs, xs[:2])

    extra = [*BASE_COMMITMENTS, commit(1, 1)]
    with pytest.raises(VerificationError):
        build_verifier(with_extra, extra).verify(base_proof, b"base")


def test_a_proof_of_another_gate_count_fails_on_its_rounds() -> None:
    _, proof = prove(chain(9), openings(1))
    verifier = build_verifier(chain(3), [openings(1)[0].commitment])
    with pytest.raises(VerificationError, match="rounds"):
        verifier.verify(proof)


# --------------------------------------------------------------------------- refusals


def test_unsatisfied_constraint_is_named_without_values() -> None:
    secret = 123_456_789

    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        (x,) = xs
        _, _, square = cs.multiply(x, x)
        cs.constrain(square - 49)

    prover = build_prover(build, [Opening(secret, 987_654_321)])
    with pytest.raises(UnsatisfiedConstraintError) as caught:
        prover.prove(b"ctx")
    message = str(caught.value)
    assert "constraint 2 of 3" in message
    for leak in (secret, secret * secret, secret * secret - 49, 987_654_321):
        assert str(leak) not in message
        assert f"{leak:x}" not in message
    assert isinstance(caught.value, InvalidArgumentError)
    with pytest.raises(UnsatisfiedConstraintError):
        prover.check()


@pytest.mark.parametrize(
    ("wires", "broken"),
    [((2, -1, -2), 3), ((2, 1, 0), 4)],  # b_1 = 2: o = 0 fails; l + r - 1 = 0 fails
)
def test_broken_bit_constraints_are_numbered_after_the_others(
    wires: tuple[int, int, int], broken: int
) -> None:
    prover = Prover()
    first = prover.bits(5, 3)  # 1, 0, 1
    prover.constrain(Variable(r1cs.Kind.LEFT, first) - 1)
    prover.check()
    # constraint 0 is the explicit one, then (o = 0, l + r - 1 = 0) per bit gate
    prover._a_L[first + 1], prover._a_R[first + 1], prover._a_O[first + 1] = (
        w % r1cs.q for w in wires
    )
    with pytest.raises(UnsatisfiedConstraintError, match=f"constraint {broken} of 7"):
        prover.check()


# Variables are plain (kind, index) pairs that gadget code may build by hand
# (gadgets.bit, gadgets.range_check do). One that names no wire or input of the circuit
# is a bug in the gadget code; it should be refused with a typed error, as every other
# misuse is, not surface as IndexError or struct.error from deep inside prove/verify.
_NOT_IN_THE_CIRCUIT = [
    ("the next gate's left wire", Variable(r1cs.Kind.LEFT, 1), 0),
    ("an output wire far away", Variable(r1cs.Kind.OUTPUT, 1000), 0),
    ("a second input", Variable(r1cs.Kind.COMMITTED, 1), 0),
    ("a negative gate index", Variable(r1cs.Kind.LEFT, -1), 2),  # aliases gate 0's left
    ("a constant with index 1", Variable(r1cs.Kind.ONE, 1), 1),  # the prover reads 1
]


def test_a_variable_not_in_the_circuit_is_a_typed_error() -> None:
    inputs = openings(5)
    _, proof = prove(chain(1), inputs)
    untyped = []
    for name, variable, value in _NOT_IN_THE_CIRCUIT:

        def build(cs: ConstraintSystem, xs: list[Variable], v: Variable = variable,
                  c: int = value) -> None:  # fmt: skip
            cs.multiply(2, 3)  # gate 0: l = 2, r = 3, o = 6
            cs.constrain(v - c)  # holds where the index is silently aliased

        for side in ("prover", "verifier"):
            try:
                if side == "prover":
                    build_prover(build, inputs).prove()
                else:
                    build_verifier(build, [inputs[0].commitment]).verify(proof)
            except UnsatisfiedConstraintError:
                untyped.append(f"{side}, {name}: UnsatisfiedConstraintError")
            except InvalidArgumentError:
                continue
            except Exception as exc:  # the finding: what escapes instead
                untyped.append(f"{side}, {name}: {type(exc).__module__}.{type(exc).__name__}")
            else:
                untyped.append(f"{side}, {name}: accepted")
    assert untyped == [], "not refused with InvalidArgumentError: " + "; ".join(untyped)


@pytest.mark.parametrize("wrong", ["value", "blinding"])
def test_an_opening_that_does_not_match_is_refused(wrong: str) -> None:
    good = openings(6)[0]
    lie = Opening(7, good.blinding) if wrong == "value" else Opening(6, good.blinding + 1)
    prover = Prover()
    x = prover.commit(good.commitment, lie.value, lie.blinding)
    prover.constrain(x - lie.value)
    prover.check()  # the constraints hold for the claimed value
    with pytest.raises(InvalidArgumentError, match="opening") as caught:
        prover.prove()
    assert not isinstance(caught.value, UnsatisfiedConstraintError)
    assert str(good.blinding) not in str(caught.value)


def test_the_opening_of_every_input_is_checked() -> None:
    inputs = openings(1, 2, 3, 4)
    prover = Prover()
    for i, o in enumerate(inputs):
        value = o.value + (1 if i == 3 else 0)
        prover.commit(o.commitment, value, o.blinding)
    with pytest.raises(InvalidArgumentError, match="opening"):
        prover.prove()


def test_a_prover_missing_a_value_is_refused() -> None:
    calls: list[Callable[[Prover], object]] = [
        lambda p: p.allocate(None),
        lambda p: p.allocate_multiplier(None),
        lambda p: p.bits(None, 4),
        lambda p: (p.allocate(1), p.allocate(None)),
    ]
    for call in calls:
        prover = Prover()
        with pytest.raises(InvalidArgumentError, match="value"):
            call(prover)


@pytest.mark.parametrize("bad", ["5", 5.0, True, None])
def test_commit_takes_integers_only(bad: object) -> None:
    prover = Prover()
    with pytest.raises(InvalidArgumentError):
        prover.commit(commit(5, 1), bad, 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        prover.commit(commit(5, 1), 5, bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        Verifier().commit(b"\x02" * 33)  # type: ignore[arg-type]


def test_bits_needs_a_positive_count() -> None:
    for count in (0, -1, True):
        with pytest.raises(InvalidArgumentError):
            Prover().bits(0, count)
        with pytest.raises(InvalidArgumentError):
            Verifier().bits(None, count)


def test_linear_combinations_of_other_things_are_refused() -> None:
    prover = Prover()
    for bad in (1.5, "1", True, None):
        with pytest.raises(InvalidArgumentError):
            prover.constrain(bad)  # type: ignore[arg-type]
    x = prover.allocate(1)
    with pytest.raises(TypeError):
        x * 1.5  # type: ignore[operator]


def test_context_must_be_bytes() -> None:
    prover = build_prover(chain(1), openings(1))
    with pytest.raises(InvalidArgumentError):
        prover.prove("ctx")  # type: ignore[arg-type]
    proof = prover.prove(b"ctx")
    verifier = build_verifier(chain(1), [Opening(1, 0).commitment])
    with pytest.raises(InvalidArgumentError):
        verifier.verify(proof, "ctx")  # type: ignore[arg-type]


def test_a_statement_needs_a_verifier() -> None:
    inputs = openings(1)
    prover, proof = prove(chain(1), inputs)
    with pytest.raises(InvalidArgumentError):
        R1CSStatement.verify_batch([R1CSStatement(prover, proof)])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- batches


def _mixed_statements() -> list[R1CSStatement]:
    return [
        statement(chain(0), openings(1), b"a"),
        statement(chain(1), openings(2), b"b"),
        statement(chain(3), openings(3), b"c"),
        statement(chain(8), openings(4), b""),
        statement(chain(13), openings(5), b"e"),
        statement(_base, BASE_INPUTS, b"base"),
    ]


@pytest.fixture(scope="module")
def mixed() -> list[R1CSStatement]:
    return _mixed_statements()


def _with_wrong_context(s: R1CSStatement) -> R1CSStatement:
    return R1CSStatement(s.circuit, s.proof, s.context + b"!")


def test_batch_of_mixed_shapes_verifies(mixed: list[R1CSStatement]) -> None:
    R1CSStatement.verify_batch(mixed)
    R1CSStatement.verify_batch([])
    R1CSStatement.verify_batch(mixed[:1])
    assert R1CSStatement.find_invalid(mixed) == []


def test_batch_with_one_bad_fails(mixed: list[R1CSStatement]) -> None:
    batch = list(mixed)
    batch[2] = _with_wrong_context(batch[2])
    with pytest.raises(VerificationError, match="batch"):
        R1CSStatement.verify_batch(batch)
    assert R1CSStatement.find_invalid(batch) == [2]


def test_a_valid_and_an_invalid_proof_fail_as_a_batch(mixed: list[R1CSStatement]) -> None:
    pair = [mixed[1], _with_wrong_context(mixed[3])]
    with pytest.raises(VerificationError):
        R1CSStatement.verify_batch(pair)
    assert R1CSStatement.find_invalid(pair) == [1]
    assert R1CSStatement.find_invalid(pair[::-1]) == [0]


def test_find_invalid_names_two_bad(mixed: list[R1CSStatement]) -> None:
    batch = list(mixed)
    batch[0] = _with_wrong_context(batch[0])
    batch[4] = _with_wrong_context(batch[4])
    assert R1CSStatement.find_invalid(batch) == [0, 4]


def test_find_invalid_names_a_proof_of_the_wrong_shape(mixed: list[R1CSStatement]) -> None:
    batch = list(mixed)
    batch[1] = R1CSStatement(mixed[1].circuit, mixed[4].proof, mixed[4].context)  # rounds
    batch[5] = R1CSStatement(mixed[5].circuit, mixed[2].proof, mixed[5].context)  # same rounds
    with pytest.raises(VerificationError):
        R1CSStatement.verify_batch(batch)
    assert R1CSStatement.find_invalid(batch) == [1, 5]


def test_find_invalid_all_bad(mixed: list[R1CSStatement]) -> None:
    batch = [_with_wrong_context(s) for s in mixed]
    assert R1CSStatement.find_invalid(batch) == list(range(len(batch)))


def test_the_same_proof_twice_in_a_batch_is_fine(mixed: list[R1CSStatement]) -> None:
    R1CSStatement.verify_batch([mixed[2], mixed[2], mixed[3]])


# --------------------------------------------------------------------------- limits


def test_limits_fit_the_pinned_generators() -> None:
    assert MAX_GATES == 1 << 17
    assert len(PINNED_BLOCK_DIGESTS) * BLOCK_PAIRS >= MAX_GATES
    assert MAX_INPUTS == 1 << 15


@pytest.mark.parametrize("cls", [Prover, Verifier])
def test_max_gates(monkeypatch: pytest.MonkeyPatch, cls: type[ConstraintSystem]) -> None:
    monkeypatch.setattr(r1cs, "MAX_GATES", 6)
    cs = cls()
    for _ in range(4):
        cs.multiply(2, 3)
    cs.allocate(1 if cs.is_prover else None)  # gate 4's left wire
    cs.allocate(1 if cs.is_prover else None)  # gate 4's right wire: no new gate
    cs.allocate(1 if cs.is_prover else None)  # gate 5
    assert cs.gates == 6
    with pytest.raises(InvalidArgumentError, match="gates"):
        cs.multiply(2, 3)
    with pytest.raises(InvalidArgumentError, match="gates"):
        cs.allocate_multiplier((1, 1) if cs.is_prover else None)
    with pytest.raises(InvalidArgumentError, match="gates"):
        cs.bits(0 if cs.is_prover else None, 1)
    assert cs.gates == 6


@pytest.mark.parametrize("cls", [Prover, Verifier])
def test_max_gates_for_bits(monkeypatch: pytest.MonkeyPatch, cls: type[ConstraintSystem]) -> None:
    monkeypatch.setattr(r1cs, "MAX_GATES", 8)
    cs = cls()
    cs.multiply(1, 1)
    with pytest.raises(InvalidArgumentError, match="gates"):
        cs.bits(0 if cs.is_prover else None, 8)
    assert cs.gates == 1  # nothing half-built
    cs.bits(0 if cs.is_prover else None, 7)
    assert cs.gates == 8


def test_a_circuit_at_the_gate_limit_proves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(r1cs, "MAX_GATES", 8)
    prover, _, proof = prove_and_verify(chain(8), openings(3))
    assert prover.gates == 8
    assert proof.rounds == 3


@pytest.mark.parametrize("cls", [Prover, Verifier])
def test_max_inputs(monkeypatch: pytest.MonkeyPatch, cls: type[ConstraintSystem]) -> None:
    monkeypatch.setattr(r1cs, "MAX_INPUTS", 3)
    inputs = openings(1, 2, 3, 4)
    cs = cls()

    def add(o: Opening) -> Variable:
        if isinstance(cs, Prover):
            return cs.commit(o.commitment, o.value, o.blinding)
        assert isinstance(cs, Verifier)
        return cs.commit(o.commitment)

    for o in inputs[:3]:
        add(o)
    with pytest.raises(InvalidArgumentError, match="inputs"):
        add(inputs[3])
    assert cs.inputs == 3


def test_a_verifiers_circuit_is_fixed_once_a_statement_is_made() -> None:
    gamma = random_scalar()
    V = commit(3, gamma)
    prover = Prover()
    px = prover.commit(V, 3, gamma)
    prover.constrain(px - 3)
    proof = prover.prove(b"fixed")
    verifier = Verifier()
    x = verifier.commit(V)
    verifier.constrain(x - 3)
    verifier.verify(proof, b"fixed")  # makes a statement: the circuit is fixed
    for add in (
        lambda: verifier.constrain(x - 4),
        lambda: verifier.multiply(x, x),
        lambda: verifier.commit(commit(1, gamma)),
        lambda: verifier.bits(None, 4),
    ):
        with pytest.raises(InvalidArgumentError, match="fixed"):
            add()
    verifier.verify(proof, b"fixed")  # and it still verifies what it verified
