"""Every change to a serialised circuit proof is caught, and typed: ProofFormatError from
the parser or VerificationError from the verifier, never success."""

from __future__ import annotations

import pytest

from circuits import gadgets
from circuits.r1cs import ConstraintSystem, R1CSProof, R1CSStatement, Variable, Verifier
from tests.unit.circuits.circuit_support import Opening, build_verifier, openings, prove
from zkgrid.errors import ProofFormatError, VerificationError
from zkp.group import FIELD_PRIME, ORDER, POINT_BYTES, SCALAR_BYTES

CONTEXT = b"meter-7/2026-11"


def _bill(cs: ConstraintSystem, xs: list[Variable]) -> None:
    # the demand of three readings (gaps below 2^4): 15 gates, padded to 16, 4 rounds
    peak = gadgets.max_of(cs, xs, 4)
    cs.constrain(peak - 9)


def _tiny(cs: ConstraintSystem, xs: list[Variable]) -> None:
    _, _, out = cs.multiply(xs[0], xs[0])
    cs.constrain(out - 49)


INPUTS: list[Opening] = openings(3, 9, 5)
TINY_INPUTS: list[Opening] = openings(7)


@pytest.fixture(scope="module")
def bill() -> tuple[bytes, Verifier]:
    prover, proof = prove(_bill, INPUTS, CONTEXT)
    assert 4 < prover.gates <= 16  # several rounds, padded
    verifier = build_verifier(_bill, [o.commitment for o in INPUTS])
    verifier.verify(proof, CONTEXT)
    return proof.to_bytes(), verifier


@pytest.fixture(scope="module")
def tiny() -> tuple[bytes, Verifier]:
    _, proof = prove(_tiny, TINY_INPUTS, CONTEXT)
    verifier = build_verifier(_tiny, [o.commitment for o in TINY_INPUTS])
    verifier.verify(proof, CONTEXT)
    return proof.to_bytes(), verifier


def _outcome(data: bytes, verifier: Verifier) -> str:
    try:
        proof = R1CSProof.from_bytes(data)
    except ProofFormatError:
        return "format"
    try:
        verifier.verify(proof, CONTEXT)
    except VerificationError:
        return "verification"
    return "accepted"


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
@pytest.mark.parametrize("which", ["bill", "tiny"])
def test_every_single_byte_flip_is_rejected(
    which: str, mask: int, request: pytest.FixtureRequest
) -> None:
    data, verifier = request.getfixturevalue(which)
    seen = {"format": 0, "verification": 0}
    for i in range(len(data)):
        tampered = bytearray(data)
        tampered[i] ^= mask
        outcome = _outcome(bytes(tampered), verifier)
        assert outcome != "accepted", f"byte {i} flipped with {mask:#x} still verifies"
        seen[outcome] += 1
    # Both kinds occur: flipped prefixes and x-coordinates off the curve give format
    # errors, everything else (scalars, 02 <-> 03, x on the curve) verification errors.
    assert seen["verification"] > 0
    assert seen["format"] > 0


def test_flips_cover_every_point_and_scalar(bill: tuple[bytes, Verifier]) -> None:
    data, verifier = bill
    proof = R1CSProof.from_bytes(data)
    points = 8 + 2 * proof.rounds
    assert len(data) == points * POINT_BYTES + 5 * SCALAR_BYTES
    for p in range(points):  # the last byte of each point's x: still a point, or not
        tampered = bytearray(data)
        tampered[p * POINT_BYTES + POINT_BYTES - 1] ^= 0x01
        assert _outcome(bytes(tampered), verifier) != "accepted"
    for s in range(5):
        off = points * POINT_BYTES + s * SCALAR_BYTES
        for where in (off, off + SCALAR_BYTES - 1):
            tampered = bytearray(data)
            tampered[where] ^= 0x01
            assert _outcome(bytes(tampered), verifier) == "verification"


def test_a_flipped_proof_fails_in_a_batch_and_is_named(bill: tuple[bytes, Verifier]) -> None:
    data, verifier = bill
    good = verifier.statement(R1CSProof.from_bytes(data), CONTEXT)
    for i in (0, 5 * POINT_BYTES, 9 * POINT_BYTES, len(data) - 40, len(data) - 1):
        tampered = bytearray(data)
        tampered[i] ^= 0x01  # a prefix (the point's negation) or a scalar's bit: parses
        bad = verifier.statement(R1CSProof.from_bytes(bytes(tampered)), CONTEXT)
        with pytest.raises(VerificationError):
            R1CSStatement.verify_batch([good, bad, good])
        assert R1CSStatement.find_invalid([good, bad, good]) == [1]


def _valid_length(n: int) -> bool:
    body = n - 5 * SCALAR_BYTES
    return body > 0 and body % POINT_BYTES == 0 and (body // POINT_BYTES - 8) in range(0, 35, 2)


def test_the_parser_takes_exactly_the_valid_lengths(bill: tuple[bytes, Verifier]) -> None:
    data, _ = bill
    point, scalars = data[:POINT_BYTES], data[-5 * SCALAR_BYTES :]
    accepted = []
    for n in range(0, 1700):
        blob = (point * 52)[: max(0, n - len(scalars))] + scalars[: min(n, len(scalars))]
        assert len(blob) == n
        try:
            R1CSProof.from_bytes(blob)
        except ProofFormatError:
            continue
        accepted.append(n)
    assert accepted == [424 + 66 * k for k in range(18)]  # 0..17 rounds
    assert accepted == [n for n in range(1700) if _valid_length(n)]


def test_truncation_and_extension_are_format_errors(bill: tuple[bytes, Verifier]) -> None:
    data, _ = bill
    changed = [data[:-cut] for cut in (1, 31, 32, 33, 65, 67, 100, len(data) - 1, len(data))]
    changed += [data + extra for extra in (b"\x00", bytes(32), bytes(33), data[:33], data[-32:],
                                           data[:65], data[:67])]  # fmt: skip
    for tampered in changed:
        assert not _valid_length(len(tampered))
        with pytest.raises(ProofFormatError):
            R1CSProof.from_bytes(tampered)
    with pytest.raises(ProofFormatError):
        R1CSProof.from_bytes(b"")


def test_truncation_and_extension_to_another_valid_length_never_verify(
    bill: tuple[bytes, Verifier],
) -> None:
    # 66 bytes fewer or more is the length of a proof with one round fewer or more: the
    # bytes then parse or not (scalars read as points), but never verify.
    data, verifier = bill
    for tampered in (data[:-66], data[:-132], data + data[:66], data + bytes(66)):
        assert _valid_length(len(tampered))
        assert _outcome(tampered, verifier) in ("format", "verification")


def test_dropping_a_round_is_a_verification_error(bill: tuple[bytes, Verifier]) -> None:
    data, verifier = bill
    # Without the last (L, R) pair the bytes parse (one round fewer) but do not verify.
    end = (8 + 2 * R1CSProof.from_bytes(data).rounds) * POINT_BYTES
    shorter = data[: end - 2 * POINT_BYTES] + data[end:]
    assert _outcome(shorter, verifier) == "verification"
    # With an extra (L, R) pair (a copy of the first) likewise.
    longer = data[:end] + data[8 * POINT_BYTES : 10 * POINT_BYTES] + data[end:]
    assert _outcome(longer, verifier) == "verification"


@pytest.mark.parametrize("index", range(5))
def test_a_scalar_not_below_the_order_is_a_format_error(
    bill: tuple[bytes, Verifier], index: int
) -> None:
    data, verifier = bill
    off = len(data) - (5 - index) * SCALAR_BYTES
    value = int.from_bytes(data[off : off + SCALAR_BYTES], "big")
    for bad in (ORDER, ORDER + 1, 2**256 - 1, value + ORDER if value + ORDER < 2**256 else ORDER):
        tampered = data[:off] + bad.to_bytes(SCALAR_BYTES, "big") + data[off + SCALAR_BYTES :]
        with pytest.raises(ProofFormatError):
            R1CSProof.from_bytes(tampered)
    for fine in (0, 1, ORDER - 1):  # in range: parses, does not verify
        tampered = data[:off] + fine.to_bytes(SCALAR_BYTES, "big") + data[off + SCALAR_BYTES :]
        assert _outcome(tampered, verifier) == "verification"


def test_points_that_are_not_points_are_format_errors(bill: tuple[bytes, Verifier]) -> None:
    data, _ = bill
    points = 8 + 2 * R1CSProof.from_bytes(data).rounds
    for p in (0, 7, 8, points - 1):
        off = p * POINT_BYTES
        for prefix in (0x00, 0x01, 0x04, 0x05, 0xFF):
            bad = bytearray(data)
            bad[off] = prefix
            with pytest.raises(ProofFormatError):
                R1CSProof.from_bytes(bytes(bad))
        for x in (FIELD_PRIME, 2**256 - 1):  # x not below the field prime
            bad = bytearray(data)
            bad[off : off + POINT_BYTES] = b"\x02" + x.to_bytes(32, "big")
            with pytest.raises(ProofFormatError):
                R1CSProof.from_bytes(bytes(bad))
        bad = bytearray(data)
        bad[off : off + POINT_BYTES] = bytes(POINT_BYTES)  # all zero: no identity encoding
        with pytest.raises(ProofFormatError):
            R1CSProof.from_bytes(bytes(bad))


def _swap(data: bytes, i: int, j: int, width: int) -> bytes:
    out = bytearray(data)
    out[i : i + width], out[j : j + width] = data[j : j + width], data[i : i + width]
    return bytes(out)


def test_swapping_proof_parts_is_rejected(bill: tuple[bytes, Verifier]) -> None:
    data, verifier = bill
    rounds = R1CSProof.from_bytes(data).rounds
    assert rounds >= 2
    P, S = POINT_BYTES, SCALAR_BYTES
    scalars = (8 + 2 * rounds) * P
    swaps = {
        "A_I <-> A_O": (0, P, P),
        "A_I <-> S": (0, 2 * P, P),
        "T1 <-> T3": (3 * P, 4 * P, P),
        "T4 <-> T6": (5 * P, 7 * P, P),
        "L_1 <-> R_1": (8 * P, 9 * P, P),
        "L_1 <-> L_2": (8 * P, 10 * P, P),
        "(L_1, R_1) <-> (L_2, R_2)": (8 * P, 10 * P, 2 * P),
        "tau_x <-> mu": (scalars, scalars + S, S),
        "a <-> b": (scalars + 3 * S, scalars + 4 * S, S),
    }
    for name, (i, j, width) in swaps.items():
        swapped = _swap(data, i, j, width)
        assert swapped != data
        assert _outcome(swapped, verifier) == "verification", name


def test_negated_points_are_rejected(bill: tuple[bytes, Verifier]) -> None:
    # 02 <-> 03 is the point's negation: parses, never verifies.
    data, verifier = bill
    points = 8 + 2 * R1CSProof.from_bytes(data).rounds
    for p in range(points):
        bad = bytearray(data)
        bad[p * POINT_BYTES] ^= 0x01
        assert _outcome(bytes(bad), verifier) == "verification", p


def test_a_proof_for_one_statement_is_not_one_for_its_neighbour(
    bill: tuple[bytes, Verifier], tiny: tuple[bytes, Verifier]
) -> None:
    data, _ = bill
    tiny_data, tiny_verifier = tiny
    # the tiny circuit (1 gate, 0 rounds) given the bill's proof: the wrong number of rounds
    assert _outcome(data, tiny_verifier) == "verification"
    # the tiny proof's prefix of the bill's proof (same length) does not verify either
    assert _outcome(data[: len(tiny_data) - 5 * SCALAR_BYTES] + tiny_data[-5 * SCALAR_BYTES :],
                    tiny_verifier) == "verification"  # fmt: skip
