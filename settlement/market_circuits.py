"""The two delivery steps of a market trade as circuits (docs/design/market-v1.md,
"Delivery and settlement over commitments"; equations in docs/notes/market.md, cited
here as (D1)...(D6)).

Written once: the seller and the buyer prove with :func:`prove_allocation` and
:func:`prove_delivery`, the service and the auditor verify with
:func:`allocation_statement` and :func:`delivery_statement`, so a step is judged by the
rule it was proven under. For trade ``k`` of an interval, with contracted ``q`` (public),
the seller's committed export ``E`` and the buyer's committed import ``I`` of the
interval (the ledger's batch commitments, used as they are) and the committed
deliveries ``D_j`` of the party's earlier trades of the interval (smaller ``k``, in
trade order)::

    a = min(q, E - Σ_{j ∈ S(k)} d_j)        the seller's allocation          (D2)
    d = min(a, I - Σ_{j ∈ B(k)} d_j)        the delivered energy             (D3)

each one ``minimum`` gadget with 32-bit ranges and a 32-bit range on its output (66
multipliers, padded to 128: a proof of 886 bytes), the output constrained to equal the
committed ``A`` or ``D``. The output's range makes each statement stand alone: a
negative remainder (earlier "deliveries" above the reading) cannot verify. Both are
exact (docs/notes/r1cs.md, "min / max of two"): a seller cannot allocate more than its
remaining export or more than ``q``, a buyer cannot claim less (or more) than
``min(a, its remaining import)``. The induction that keeps every remainder a
non-negative integer below 2^32 is docs/notes/market.md, "Soundness".

A defaulted earlier trade (``D_j = O``, the identity: nothing delivered) is no input:
an identity commitment in ``earlier`` is left out on both sides (it has no 33-byte
encoding and contributes 0 to the sum).

The context (D1) binds the trade (an opaque 32-byte trade id: the market's hash of the
clearing, the interval and the trade index) and the step, so a proof made for one trade
or step never verifies for another.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

from circuits.gadgets import minimum, range_check, total
from circuits.r1cs import (
    ConstraintSystem,
    LinearCombination,
    Prover,
    R1CSProof,
    R1CSStatement,
    Variable,
    Verifier,
)
from zkgrid.errors import InvalidArgumentError
from zkp.group import ORDER, Scalar, is_identity, random_scalar
from zkp.pedersen import Commitment, commit

__all__ = [
    "ALLOCATION",
    "DELIVERY",
    "DELIVERY_CONTEXT_DOMAIN",
    "MAX_QUANTITY",
    "MIN_BITS",
    "STEPS",
    "TRADE_ID_SIZE",
    "ProvenStep",
    "allocation_of",
    "allocation_statement",
    "build_allocation",
    "build_delivery",
    "delivery_context",
    "delivery_of",
    "delivery_statement",
    "prove_allocation",
    "prove_delivery",
]

#: Domain of the proofs' context (D1).
DELIVERY_CONTEXT_DOMAIN = b"zkgrid/market-delivery v1"
#: The seller's step and the buyer's step (the names the context binds).
ALLOCATION = "allocation"
DELIVERY = "delivery"
STEPS = (ALLOCATION, DELIVERY)
#: Bytes of a trade id (the market's hash of clearing, interval and trade index).
TRADE_ID_SIZE = 32
#: Width of the min gadget's gap: readings are below 2^32 (their batches' range proofs).
MIN_BITS = 32
#: A contracted quantity is at most this many Wh (below 2^32, like a reading).
MAX_QUANTITY = 2**MIN_BITS - 1

_U32 = struct.Struct(">I")

#: An opening ``(value, blinding)`` of a commitment ``value*G + blinding*H``.
OpeningLike = tuple[int, Scalar]
CommitmentLike = Commitment | bytes


class ProvenStep(NamedTuple):
    """What a party's step produces: the commitment (33 bytes) of its output, the
    output's blinding (kept by the party, sealed to the counterparty) and the proof."""

    commitment: bytes
    blinding: Scalar
    proof: bytes


# --------------------------------------------------------------------------- context


def delivery_context(trade_id: bytes, step: str) -> bytes:
    """(D1) ``"zkgrid/market-delivery v1" || u32 len || step || trade_id (32 B)``: the
    context of a delivery step's proof, and the associated data of its sealed opening."""
    if not isinstance(trade_id, bytes) or len(trade_id) != TRADE_ID_SIZE:
        raise InvalidArgumentError(f"a trade id is {TRADE_ID_SIZE} bytes")
    if step not in STEPS:
        raise InvalidArgumentError(f"a delivery step is one of {', '.join(STEPS)}")
    name = step.encode("ascii")
    return DELIVERY_CONTEXT_DOMAIN + _U32.pack(len(name)) + name + trade_id


# --------------------------------------------------------------------------- the rule


def _quantity(quantity: object) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidArgumentError("a contracted quantity is an integer (Wh)")
    if not 0 <= quantity <= MAX_QUANTITY:
        raise InvalidArgumentError(f"a contracted quantity is in [0, {MAX_QUANTITY}] Wh")
    return quantity


def allocation_of(export: int, earlier: Sequence[int], quantity: int) -> int:
    """(D2) in plain integers: ``min(q, E - Σ d_j)``, what the seller's step proves."""
    return min(_quantity(quantity), export - sum(earlier))


def delivery_of(allocation: int, imported: int, earlier: Sequence[int]) -> int:
    """(D3) in plain integers: ``min(a, I - Σ d_j)``, what the buyer's step proves."""
    return min(allocation, imported - sum(earlier))


# --------------------------------------------------------------------------- the circuits


def build_allocation(
    cs: ConstraintSystem,
    export: Variable,
    earlier: Sequence[Variable],
    quantity: int,
    allocation: Variable,
) -> None:
    """(D2) on ``cs``: ``allocation = min(quantity, export - Σ earlier)``, one
    :func:`~circuits.gadgets.minimum` with :data:`MIN_BITS`-bit ranges, and ``allocation``
    in ``[0, 2^32)`` (D11): 66 multipliers. Exact, so ``0 <= a <= q`` and
    ``a <= E - Σ d_j`` (D6)."""
    remaining = export - total(earlier)
    cs.constrain(minimum(cs, _quantity(quantity), remaining, MIN_BITS) - allocation)
    range_check(cs, allocation, MIN_BITS)


def build_delivery(
    cs: ConstraintSystem,
    allocation: Variable,
    imported: Variable,
    earlier: Sequence[Variable],
    delivered: Variable,
) -> None:
    """(D3) on ``cs``: ``delivered = min(allocation, imported - Σ earlier)``, one
    :func:`~circuits.gadgets.minimum` with :data:`MIN_BITS`-bit ranges, and ``delivered``
    in ``[0, 2^32)`` (D11): 66 multipliers. Exact: neither less nor more than the min (D6)."""
    remaining: LinearCombination = imported - total(earlier)
    cs.constrain(minimum(cs, allocation, remaining, MIN_BITS) - delivered)
    range_check(cs, delivered, MIN_BITS)


# --------------------------------------------------------------------------- inputs


def _commitment(value: object, what: str) -> Commitment:
    if isinstance(value, Commitment):
        return value
    if isinstance(value, bytes):
        return Commitment.from_bytes(value)  # ProofFormatError when not a canonical point
    raise InvalidArgumentError(f"{what} must be a Commitment or its 33 bytes")


def _earlier(earlier: Sequence[CommitmentLike]) -> list[Commitment]:
    """The earlier deliveries that are inputs: the identity (a default) is left out."""
    if isinstance(earlier, bytes | str):
        raise InvalidArgumentError("earlier deliveries are a sequence of commitments")
    points = [_commitment(c, f"earlier[{i}]") for i, c in enumerate(earlier)]
    return [c for c in points if not is_identity(c.point)]


def _opening(opening: object, what: str) -> OpeningLike:
    if (
        not isinstance(opening, tuple)
        or len(opening) != 2
        or any(isinstance(x, bool) or not isinstance(x, int) for x in opening)
    ):
        raise InvalidArgumentError(f"{what}: an opening is a (value, blinding) pair of integers")
    return opening[0], opening[1]


def _commit_earlier(
    prover: Prover, earlier: Sequence[CommitmentLike], openings: Sequence[OpeningLike]
) -> tuple[list[Variable], list[int]]:
    """The prover's earlier inputs (identity ones left out, their openings must be 0)."""
    if isinstance(earlier, bytes | str) or len(earlier) != len(openings):
        raise InvalidArgumentError("one opening per earlier delivery")
    variables: list[Variable] = []
    values: list[int] = []
    for i, (c, o) in enumerate(zip(earlier, openings, strict=True)):
        point = _commitment(c, f"earlier[{i}]")
        value, blinding = _opening(o, f"earlier[{i}]")
        if is_identity(point.point):
            if value % ORDER or blinding % ORDER:
                raise InvalidArgumentError(f"earlier[{i}]: a default's opening is (0, 0)")
            continue
        variables.append(prover.commit(point, value, blinding))
        values.append(value)
    return variables, values


def _reading(value: int, what: str) -> int:
    """A prover's value that the statement takes to be below 2^32 (a reading, an
    allocation, a delivery): refused otherwise, the inputs are not a ledger's."""
    if not 0 <= value <= MAX_QUANTITY:
        raise InvalidArgumentError(f"{what} is not in [0, 2^32): the inputs are not a ledger's")
    return value


def _remaining(value: int, earlier: Sequence[int], what: str) -> None:
    """(D5) on the prover's side: the earlier deliveries never exceed the reading on a
    verified ledger; refuse inputs where they do (the statement alone would not)."""
    for i, d in enumerate(earlier):
        _reading(d, f"earlier[{i}]")
    if value - sum(earlier) < 0:
        raise InvalidArgumentError(
            f"the earlier deliveries exceed the {what}: the inputs are not a ledger's"
        )


def _blinding(blinding: Scalar | None) -> Scalar:
    if blinding is None:
        return random_scalar()
    if isinstance(blinding, bool) or not isinstance(blinding, int) or not 0 < blinding < ORDER:
        raise InvalidArgumentError("a blinding is an integer in [1, q)")
    return blinding


# --------------------------------------------------------------------------- the seller


def prove_allocation(
    trade_id: bytes,
    export: CommitmentLike,
    export_opening: OpeningLike,
    earlier: Sequence[CommitmentLike],
    earlier_openings: Sequence[OpeningLike],
    quantity: int,
    *,
    blinding: Scalar | None = None,
) -> ProvenStep:
    """The seller's step (D2): commits ``A = a*G + alpha*H`` with ``a = min(q, E - Σ d_j)``
    and proves it over its export ``E``, its earlier trades' deliveries (in trade order,
    with the openings it received) and the public ``quantity``. ``blinding`` is ``alpha``
    (random when omitted). Raises :class:`~zkgrid.errors.InvalidArgumentError` when an
    opening does not match its commitment or the values are not a ledger's (a value
    outside ``[0, 2^32)``, earlier deliveries above the export: (D5))."""
    context = delivery_context(trade_id, ALLOCATION)
    q = _quantity(quantity)
    prover = Prover()
    e_value, e_blinding = _opening(export_opening, "export")
    e = prover.commit(_commitment(export, "export"), e_value, e_blinding)
    earlier_vars, earlier_values = _commit_earlier(prover, earlier, earlier_openings)
    _remaining(_reading(e_value, "the export"), earlier_values, "export")
    value = allocation_of(e_value, earlier_values, q)
    alpha = _blinding(blinding)
    committed = commit(value, alpha)
    a = prover.commit(committed, value, alpha)
    build_allocation(prover, e, earlier_vars, q, a)
    proof = prover.prove(context)
    return ProvenStep(committed.to_bytes(), alpha, proof.to_bytes())


def allocation_statement(
    trade_id: bytes,
    export: CommitmentLike,
    earlier: Sequence[CommitmentLike],
    quantity: int,
    allocation: CommitmentLike,
    proof: bytes,
) -> R1CSStatement:
    """The statement that ``allocation`` commits to ``min(quantity, E - Σ D_j)`` (D2),
    for :meth:`~circuits.r1cs.R1CSStatement.verify_batch` and ``find_invalid``.

    Inputs (D4): ``E``, the non-identity ``D_j`` in the order given, ``A``. The caller
    (the rules) picks ``export`` and ``earlier`` from the ledger: the seller's batch
    commitment of the interval and the deliveries of its earlier trades in it, in trade
    order. Raises :class:`~zkgrid.errors.ProofFormatError` for a proof or commitment that
    does not parse."""
    context = delivery_context(trade_id, ALLOCATION)
    parsed = R1CSProof.from_bytes(proof)
    verifier = Verifier()
    e = verifier.commit(_commitment(export, "export"))
    earlier_vars = verifier.commit_many(_earlier(earlier))
    a = verifier.commit(_commitment(allocation, "allocation"))
    build_allocation(verifier, e, earlier_vars, quantity, a)
    return verifier.statement(parsed, context)


# --------------------------------------------------------------------------- the buyer


def prove_delivery(
    trade_id: bytes,
    allocation: CommitmentLike,
    allocation_opening: OpeningLike,
    imported: CommitmentLike,
    import_opening: OpeningLike,
    earlier: Sequence[CommitmentLike],
    earlier_openings: Sequence[OpeningLike],
    *,
    blinding: Scalar | None = None,
) -> ProvenStep:
    """The buyer's step (D3): commits ``D = d*G + delta*H`` with ``d = min(a, I - Σ d_j)``
    and proves it over the seller's ``A`` (whose opening it decrypted and checked), its
    import ``I`` and its earlier trades' deliveries (in trade order). ``blinding`` is
    ``delta`` (random when omitted). Raises as :func:`prove_allocation`."""
    context = delivery_context(trade_id, DELIVERY)
    prover = Prover()
    a_value, a_blinding = _opening(allocation_opening, "allocation")
    a = prover.commit(_commitment(allocation, "allocation"), a_value, a_blinding)
    i_value, i_blinding = _opening(import_opening, "import")
    i = prover.commit(_commitment(imported, "import"), i_value, i_blinding)
    earlier_vars, earlier_values = _commit_earlier(prover, earlier, earlier_openings)
    _reading(a_value, "the allocation")
    _remaining(_reading(i_value, "the import"), earlier_values, "import")
    value = delivery_of(a_value, i_value, earlier_values)
    delta = _blinding(blinding)
    committed = commit(value, delta)
    d = prover.commit(committed, value, delta)
    build_delivery(prover, a, i, earlier_vars, d)
    proof = prover.prove(context)
    return ProvenStep(committed.to_bytes(), delta, proof.to_bytes())


def delivery_statement(
    trade_id: bytes,
    allocation: CommitmentLike,
    imported: CommitmentLike,
    earlier: Sequence[CommitmentLike],
    delivered: CommitmentLike,
    proof: bytes,
) -> R1CSStatement:
    """The statement that ``delivered`` commits to ``min(a, I - Σ D_j)`` (D3), where ``a``
    opens the seller's ``allocation``; inputs (D4): ``A``, ``I``, the non-identity
    ``D_j`` in the order given, ``D``. As :func:`allocation_statement`."""
    context = delivery_context(trade_id, DELIVERY)
    parsed = R1CSProof.from_bytes(proof)
    verifier = Verifier()
    a = verifier.commit(_commitment(allocation, "allocation"))
    i = verifier.commit(_commitment(imported, "import"))
    earlier_vars = verifier.commit_many(_earlier(earlier))
    d = verifier.commit(_commitment(delivered, "delivered"))
    build_delivery(verifier, a, i, earlier_vars, d)
    return verifier.statement(parsed, context)
