"""The delivery circuits (settlement.market_circuits): completeness of both steps with
0, 1 and 3 earlier trades and at the edges of the min, binding to the trade, the step,
the commitments and the order of the earlier deliveries, batching with blame, and the
known-answer vectors (tests/vectors/market_delivery/delivery.json)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from circuits.r1cs import R1CSStatement, proof_size
from settlement.market_circuits import (
    ALLOCATION,
    DELIVERY,
    DELIVERY_CONTEXT_DOMAIN,
    MAX_QUANTITY,
    ProvenStep,
    allocation_of,
    allocation_statement,
    delivery_context,
    delivery_of,
    delivery_statement,
    prove_allocation,
    prove_delivery,
)
from zkgrid.errors import InvalidArgumentError, ProofFormatError, VerificationError
from zkp.group import ORDER, identity, random_scalar
from zkp.pedersen import Commitment, commit

VECTORS = json.loads(
    (Path(__file__).parents[2] / "vectors" / "market_delivery" / "delivery.json").read_text()
)["vectors"]

Opened = tuple[Commitment, tuple[int, int]]


def trade(k: int) -> bytes:
    return hashlib.sha256(b"test trade %d" % k).digest()


def committed(value: int) -> Opened:
    blinding = random_scalar()
    return commit(value, blinding), (value, blinding)


def many(values: Sequence[int]) -> list[Opened]:
    return [committed(v) for v in values]


def opens(step: ProvenStep, value: int) -> bool:
    return Commitment.from_bytes(step.commitment) == commit(value, step.blinding)


def allocate(
    tid: bytes, export: Opened, earlier: list[Opened], quantity: int
) -> tuple[ProvenStep, R1CSStatement]:
    step = prove_allocation(
        tid, export[0], export[1], [c for c, _ in earlier], [o for _, o in earlier], quantity
    )
    statement = allocation_statement(
        tid, export[0], [c for c, _ in earlier], quantity, step.commitment, step.proof
    )
    return step, statement


def deliver(
    tid: bytes, allocation: Opened, imported: Opened, earlier: list[Opened]
) -> tuple[ProvenStep, R1CSStatement]:
    step = prove_delivery(
        tid, allocation[0], allocation[1], imported[0], imported[1],
        [c for c, _ in earlier], [o for _, o in earlier],
    )  # fmt: skip
    statement = delivery_statement(
        tid, allocation[0], imported[0], [c for c, _ in earlier], step.commitment, step.proof
    )
    return step, statement


# --------------------------------------------------------------------------- context


def test_the_context_binds_the_trade_and_the_step() -> None:
    context = delivery_context(trade(0), ALLOCATION)
    assert context == DELIVERY_CONTEXT_DOMAIN + b"\x00\x00\x00\x0aallocation" + trade(0)
    assert delivery_context(trade(0), DELIVERY) != context
    assert delivery_context(trade(1), ALLOCATION) != context


@pytest.mark.parametrize(
    ("tid", "step"),
    [(b"\x00" * 31, ALLOCATION), (b"\x00" * 33, DELIVERY), ("00" * 32, ALLOCATION),
     (b"\x00" * 32, "Allocation"), (b"\x00" * 32, "settle")],
)  # fmt: skip
def test_a_bad_trade_id_or_step_is_refused(tid: Any, step: str) -> None:
    with pytest.raises(InvalidArgumentError):
        delivery_context(tid, step)


# --------------------------------------------------------------------------- completeness


@pytest.mark.parametrize(
    ("export", "earlier", "quantity"),
    [
        (5000, [], 1200),  # q below the export
        (5000, [], 5000),  # equal
        (5000, [], 9000),  # q above: the export is allocated
        (0, [], 1500),  # nothing exported
        (5000, [], 0),  # nothing contracted
        (5000, [1000], 3000),  # one earlier trade, q below what is left
        (5000, [1000], 4000),  # equal to what is left
        (5000, [1000], 4001),  # above
        (5000, [1000, 2500, 1500], 10),  # three earlier trades took it all
        (5000, [1000, 0, 1500], 2000),  # one of them delivered nothing
        (2**32 - 1, [], MAX_QUANTITY),  # the largest reading and quantity
        (2**32 - 1, [2**31, 2**30], 1),
    ],
)
def test_the_allocation_is_the_min_of_q_and_the_remaining_export(
    export: int, earlier: list[int], quantity: int
) -> None:
    step, statement = allocate(trade(0), committed(export), many(earlier), quantity)
    assert opens(step, min(quantity, export - sum(earlier)))
    assert opens(step, allocation_of(export, earlier, quantity))
    assert len(step.proof) == proof_size(66) == 886
    assert statement.circuit.gates == 66
    R1CSStatement.verify_batch([statement])


@pytest.mark.parametrize(
    ("allocation", "imported", "earlier"),
    [
        (1500, 4000, []),  # the allocation is below the import
        (1500, 1500, []),  # equal
        (1500, 900, []),  # the buyer imported less: it takes what it imported
        (1500, 0, []),  # a buyer away
        (0, 4000, []),  # nothing allocated
        (1500, 4000, [1000]),  # one earlier trade
        (1500, 2500, [1000]),  # equal to what is left
        (1500, 2400, [1000]),  # below
        (700, 4000, [1000, 2000, 1000]),  # three earlier trades took it all
        (700, 4000, [1000, 2000, 300]),  # ... all but 700
        (2**32 - 1, 2**32 - 1, []),
    ],
)
def test_the_delivery_is_the_min_of_the_allocation_and_the_remaining_import(
    allocation: int, imported: int, earlier: list[int]
) -> None:
    step, statement = deliver(trade(0), committed(allocation), committed(imported), many(earlier))
    assert opens(step, min(allocation, imported - sum(earlier)))
    assert opens(step, delivery_of(allocation, imported, earlier))
    R1CSStatement.verify_batch([statement])


def test_both_steps_chain_through_the_sealed_values() -> None:
    """The buyer proves over the seller's very commitment, with the seller's opening."""
    export, imported = committed(3000), committed(2000)
    s_earlier, b_earlier = many([1000]), many([500, 400])
    alloc, a_statement = allocate(trade(5), export, s_earlier, 2500)
    assert opens(alloc, 2000)
    a_opened = (Commitment.from_bytes(alloc.commitment), (2000, alloc.blinding))
    step, d_statement = deliver(trade(5), a_opened, imported, b_earlier)
    assert opens(step, 1100)
    R1CSStatement.verify_batch([a_statement, d_statement])


def test_commitments_may_be_given_as_bytes() -> None:
    export, earlier = committed(5000), many([100, 200])
    step = prove_allocation(
        trade(0), export[0].to_bytes(), export[1], [c.to_bytes() for c, _ in earlier],
        [o for _, o in earlier], 900, blinding=12345,
    )  # fmt: skip
    assert step.blinding == 12345
    assert opens(step, 900)
    R1CSStatement.verify_batch(
        [allocation_statement(trade(0), export[0].to_bytes(),
                              [c.to_bytes() for c, _ in earlier], 900, step.commitment,
                              step.proof)]
    )  # fmt: skip


def test_a_defaulted_earlier_trade_is_no_input_and_counts_zero() -> None:
    """``D_j = O`` (a DeliveryDefault) is left out on both sides."""
    export, earlier = committed(5000), many([1000])
    default = (Commitment(identity()), (0, 0))
    with_default = [earlier[0], default]
    step, statement = allocate(trade(0), export, with_default, 4500)
    assert opens(step, 4000)
    assert statement.circuit.inputs == 3  # E, D_0, A
    R1CSStatement.verify_batch([statement])
    # the same proof verifies without the default: it is no input
    R1CSStatement.verify_batch(
        [allocation_statement(trade(0), export[0], [earlier[0][0]], 4500, step.commitment,
                              step.proof)]
    )  # fmt: skip
    with pytest.raises(InvalidArgumentError, match="default"):
        prove_allocation(trade(0), export[0], export[1], [default[0]], [(1, 0)], 100)


# --------------------------------------------------------------------------- refusals


def test_the_prover_refuses_inputs_that_are_not_a_ledgers() -> None:
    """(D5) Earlier deliveries above the reading cannot happen on a verified ledger (each
    is proven); handed such inputs, or values outside 32 bits, the prover refuses."""
    with pytest.raises(InvalidArgumentError, match="exceed the export"):
        allocate(trade(0), committed(1000), many([800, 800]), 100)
    with pytest.raises(InvalidArgumentError, match="exceed the import"):
        deliver(trade(0), committed(100), committed(500), many([600]))
    for value in (-1, 2**32):
        with pytest.raises(InvalidArgumentError, match="not a ledger's"):
            allocate(trade(0), committed(value), [], 100)
        with pytest.raises(InvalidArgumentError, match="not a ledger's"):
            allocate(trade(0), committed(5000), many([value]), 100)
        with pytest.raises(InvalidArgumentError, match="not a ledger's"):
            deliver(trade(0), committed(value), committed(500), [])
        with pytest.raises(InvalidArgumentError, match="not a ledger's"):
            deliver(trade(0), committed(100), committed(value), [])


def test_the_widest_gap_is_complete() -> None:
    """The min gadget needs |q - R| below 2^32: at R = 0, q = 2^32 - 1 it still is."""
    step, statement = allocate(trade(0), committed(0), [], MAX_QUANTITY)
    assert opens(step, 0)
    R1CSStatement.verify_batch([statement])


def test_the_prover_refuses_an_opening_that_does_not_match() -> None:
    export, _ = committed(5000)
    with pytest.raises(InvalidArgumentError, match="opening"):
        prove_allocation(trade(0), export, (5000, random_scalar()), [], [], 100)


@pytest.mark.parametrize("quantity", [-1, MAX_QUANTITY + 1, 2**64, True, 1.5])
def test_a_quantity_outside_32_bits_is_refused(quantity: Any) -> None:
    export = committed(5000)
    with pytest.raises(InvalidArgumentError, match="quantity"):
        prove_allocation(trade(0), export[0], export[1], [], [], quantity)
    step = prove_allocation(trade(0), export[0], export[1], [], [], 10)
    with pytest.raises(InvalidArgumentError, match="quantity"):
        allocation_statement(trade(0), export[0], [], quantity, step.commitment, step.proof)


def test_argument_shapes_are_checked() -> None:
    export, earlier = committed(5000), many([10])
    with pytest.raises(InvalidArgumentError, match="one opening"):
        prove_allocation(trade(0), export[0], export[1], [earlier[0][0]], [], 100)
    with pytest.raises(InvalidArgumentError, match="opening"):
        prove_allocation(trade(0), export[0], [5000, 1], [], [], 100)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="blinding"):
        prove_allocation(trade(0), export[0], export[1], [], [], 100, blinding=ORDER)
    with pytest.raises(InvalidArgumentError, match="Commitment"):
        prove_allocation(trade(0), "E", export[1], [], [], 100)  # type: ignore[arg-type]


def test_a_malformed_proof_or_commitment_is_a_format_error() -> None:
    step, _ = allocate(trade(0), committed(5000), [], 100)
    export = committed(5000)[0]
    with pytest.raises(ProofFormatError):
        allocation_statement(trade(0), export, [], 100, step.commitment, step.proof[:-1])
    with pytest.raises(ProofFormatError):
        allocation_statement(trade(0), export, [], 100, b"\x04" + step.commitment[1:],
                             step.proof)  # fmt: skip
    with pytest.raises(ProofFormatError):
        delivery_statement(trade(0), step.commitment, export, [b"\x02" * 32], step.commitment,
                           step.proof)  # fmt: skip


# --------------------------------------------------------------------------- binding


@pytest.fixture(scope="module")
def chain() -> dict[str, Any]:
    """Seller export 5000 with earlier deliveries 1000, 500, 300; buyer import 4000 with
    earlier 200, 100, 700: trade 9 contracted 2500."""
    export, imported = committed(5000), committed(4000)
    s_earlier, b_earlier = many([1000, 500, 300]), many([200, 100, 700])
    alloc, a_statement = allocate(trade(9), export, s_earlier, 2500)
    a_opened = (Commitment.from_bytes(alloc.commitment), (2500, alloc.blinding))
    step, d_statement = deliver(trade(9), a_opened, imported, b_earlier)
    assert opens(step, 2500)
    assert opens(alloc, 2500)
    R1CSStatement.verify_batch([a_statement, d_statement])
    return {"export": export, "import": imported, "s": s_earlier, "b": b_earlier,
            "alloc": alloc, "a": a_opened, "step": step}  # fmt: skip


def _rejected(statement: R1CSStatement) -> None:
    with pytest.raises(VerificationError):
        R1CSStatement.verify_batch([statement])


def test_an_allocation_is_bound_to_its_trade_inputs_and_order(chain: dict[str, Any]) -> None:
    e, s, alloc = chain["export"][0], [c for c, _ in chain["s"]], chain["alloc"]
    a, proof = alloc.commitment, alloc.proof
    R1CSStatement.verify_batch([allocation_statement(trade(9), e, s, 2500, a, proof)])
    _rejected(allocation_statement(trade(8), e, s, 2500, a, proof))  # another trade
    _rejected(allocation_statement(trade(9), committed(5000)[0], s, 2500, a, proof))  # another E
    _rejected(allocation_statement(trade(9), e, s, 2499, a, proof))  # another q
    _rejected(allocation_statement(trade(9), e, s, 2500, committed(2500)[0], proof))  # another A
    _rejected(allocation_statement(trade(9), e, [s[1], s[0], s[2]], 2500, a, proof))  # swapped
    _rejected(allocation_statement(trade(9), e, s[:2], 2500, a, proof))  # one left out
    _rejected(allocation_statement(trade(9), e, [*s, committed(0)[0]], 2500, a, proof))  # added
    _rejected(allocation_statement(trade(9), e, [s[0], s[1], committed(300)[0]], 2500, a, proof))
    # the other step's statement over the same commitments (another context and shape)
    _rejected(delivery_statement(trade(9), e, s[0], s[1:], a, proof))


def test_a_delivery_is_bound_to_its_trade_inputs_and_order(chain: dict[str, Any]) -> None:
    a, i = chain["a"][0], chain["import"][0]
    b, step = [c for c, _ in chain["b"]], chain["step"]
    d, proof = step.commitment, step.proof
    R1CSStatement.verify_batch([delivery_statement(trade(9), a, i, b, d, proof)])
    _rejected(delivery_statement(trade(10), a, i, b, d, proof))
    _rejected(delivery_statement(trade(9), committed(2500)[0], i, b, d, proof))
    _rejected(delivery_statement(trade(9), a, committed(4000)[0], b, d, proof))
    _rejected(delivery_statement(trade(9), a, i, b, committed(2500)[0], proof))
    _rejected(delivery_statement(trade(9), i, a, b, d, proof))  # A and I swapped
    _rejected(delivery_statement(trade(9), a, i, [b[2], b[1], b[0]], d, proof))
    _rejected(delivery_statement(trade(9), a, i, b[1:], d, proof))


def test_an_allocation_proof_is_no_delivery_proof(chain: dict[str, Any]) -> None:
    """Both circuits have 66 gates; the step's name in the context keeps them apart."""
    alloc = chain["alloc"]
    e, s = chain["export"][0], [c for c, _ in chain["s"]]
    # the same inputs in the delivery's positions: A <- E, I <- D_0, earlier <- D_1, D_2
    _rejected(delivery_statement(trade(9), e, s[0], s[1:], alloc.commitment, alloc.proof))


# --------------------------------------------------------------------------- batching


def test_both_kinds_batch_and_the_bad_one_is_named(chain: dict[str, Any]) -> None:
    e, s = chain["export"][0], [c for c, _ in chain["s"]]
    a, i, b = chain["a"][0], chain["import"][0], [c for c, _ in chain["b"]]
    alloc, step = chain["alloc"], chain["step"]
    more = [allocate(trade(k), committed(3000), many([100] * k), 500)[1] for k in range(3)]
    statements = [
        allocation_statement(trade(9), e, s, 2500, alloc.commitment, alloc.proof),
        delivery_statement(trade(9), a, i, b, step.commitment, step.proof),
        *more,
    ]
    R1CSStatement.verify_batch(statements)
    assert R1CSStatement.find_invalid(statements) == []
    statements[1] = delivery_statement(trade(9), a, i, b[:2], step.commitment, step.proof)
    with pytest.raises(VerificationError):
        R1CSStatement.verify_batch(statements)
    assert R1CSStatement.find_invalid(statements) == [1]
    statements[4] = allocation_statement(trade(9), e, s, 2501, alloc.commitment, alloc.proof)
    assert R1CSStatement.find_invalid(statements) == [1, 4]


# --------------------------------------------------------------------------- vectors


def _opening(o: dict[str, Any]) -> tuple[int, int]:
    return o["value"], int(o["blinding"], 16)


def _statement(v: dict[str, Any]) -> R1CSStatement:
    tid, earlier = bytes.fromhex(v["trade_id"]), [bytes.fromhex(c) for c in v["earlier"]]
    output, proof = bytes.fromhex(v["output"]), bytes.fromhex(v["proof"])
    if v["step"] == ALLOCATION:
        return allocation_statement(
            tid, bytes.fromhex(v["export"]), earlier, v["quantity"], output, proof
        )
    return delivery_statement(
        tid, bytes.fromhex(v["allocation"]), bytes.fromhex(v["import"]), earlier, output, proof
    )


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_a_stored_step_still_verifies_and_opens_to_the_rule(vector: dict[str, Any]) -> None:
    R1CSStatement.verify_batch([_statement(vector)])
    earlier = [_opening(o) for o in vector["earlier_openings"]]
    for c, o in zip(vector["earlier"], earlier, strict=True):
        assert Commitment.from_bytes(bytes.fromhex(c)) == commit(*o)
    if vector["step"] == ALLOCATION:
        export = _opening(vector["export_opening"])
        assert Commitment.from_bytes(bytes.fromhex(vector["export"])) == commit(*export)
        expected = allocation_of(export[0], [o[0] for o in earlier], vector["quantity"])
    else:
        alloc, imported = _opening(vector["allocation_opening"]), _opening(vector["import_opening"])
        assert Commitment.from_bytes(bytes.fromhex(vector["allocation"])) == commit(*alloc)
        assert Commitment.from_bytes(bytes.fromhex(vector["import"])) == commit(*imported)
        expected = delivery_of(alloc[0], imported[0], [o[0] for o in earlier])
    output = _opening(vector["output_opening"])
    assert output[0] == expected
    assert Commitment.from_bytes(bytes.fromhex(vector["output"])) == commit(*output)


def test_the_stored_steps_batch_and_an_edited_one_is_named() -> None:
    assert {len(v["earlier"]) for v in VECTORS if v["step"] == ALLOCATION} >= {0, 1, 3}
    statements = [_statement(v) for v in VECTORS]
    R1CSStatement.verify_batch(statements)
    edited = dict(VECTORS[6], quantity=VECTORS[6]["quantity"] + 1)
    statements[6] = _statement(edited)
    assert R1CSStatement.find_invalid(statements) == [6]
