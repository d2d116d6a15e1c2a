"""Random intervals of a market: every trade's two steps are proven and verified in trade
order, each proven delivery equals the plain min chain computed here independently
(d_k = min(q_k, what the seller's export still covers, what the buyer's import still
takes)), and no seller's deliveries exceed its export nor any buyer's its import."""

from __future__ import annotations

import hashlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circuits.r1cs import R1CSStatement
from settlement.market_circuits import (
    allocation_statement,
    delivery_statement,
    prove_allocation,
    prove_delivery,
)
from zkp.group import random_scalar
from zkp.pedersen import Commitment, commit

readings = st.one_of(st.integers(0, 6_000), st.sampled_from([0, 2**32 - 1]))
quantities = st.one_of(st.integers(0, 4_000), st.just(2**32 - 1))


@st.composite
def intervals(draw: Any) -> dict[str, Any]:
    """Two sellers, three buyers, 1..6 trades between them (any pairs, in trade order)."""
    exports = draw(st.lists(readings, min_size=2, max_size=2))
    imports = draw(st.lists(readings, min_size=3, max_size=3))
    count = draw(st.integers(1, 6))
    trades = draw(
        st.lists(
            st.tuples(st.integers(0, 1), st.integers(0, 2), quantities),
            min_size=count,
            max_size=count,
        )
    )
    return {"exports": exports, "imports": imports, "trades": trades}


def plain_chain(interval: dict[str, Any]) -> list[int]:
    """The rule of docs/design/market-v1.md in plain integers, written here again."""
    left_export = list(interval["exports"])
    left_import = list(interval["imports"])
    out = []
    for seller, buyer, quantity in interval["trades"]:
        d = min(quantity, left_export[seller], left_import[buyer])
        left_export[seller] -= d
        left_import[buyer] -= d
        out.append(d)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(interval=intervals())
def test_proven_deliveries_are_the_plain_min_chain(interval: dict[str, Any]) -> None:
    exports = [(v, random_scalar()) for v in interval["exports"]]
    imports = [(v, random_scalar()) for v in interval["imports"]]
    e_com = [commit(*o) for o in exports]
    i_com = [commit(*o) for o in imports]
    sold: list[list[tuple[bytes, tuple[int, int]]]] = [[], []]
    bought: list[list[tuple[bytes, tuple[int, int]]]] = [[], [], []]
    statements: list[R1CSStatement] = []
    expected = plain_chain(interval)
    for k, (seller, buyer, quantity) in enumerate(interval["trades"]):
        tid = hashlib.sha256(b"property trade %d" % k).digest()
        s_earlier = sold[seller]
        alloc = prove_allocation(
            tid, e_com[seller], exports[seller], [c for c, _ in s_earlier],
            [o for _, o in s_earlier], quantity,
        )  # fmt: skip
        statements.append(
            allocation_statement(tid, e_com[seller], [c for c, _ in s_earlier], quantity,
                                 alloc.commitment, alloc.proof)
        )  # fmt: skip
        # the seller's allocation: min(q, what its export still covers)
        a_value = min(quantity, exports[seller][0] - sum(o[0] for _, o in s_earlier))
        assert Commitment.from_bytes(alloc.commitment) == commit(a_value, alloc.blinding)
        b_earlier = bought[buyer]
        step = prove_delivery(
            tid, alloc.commitment, (a_value, alloc.blinding), i_com[buyer], imports[buyer],
            [c for c, _ in b_earlier], [o for _, o in b_earlier],
        )  # fmt: skip
        statements.append(
            delivery_statement(tid, alloc.commitment, i_com[buyer], [c for c, _ in b_earlier],
                               step.commitment, step.proof)
        )  # fmt: skip
        # the proven delivery is the plain chain's
        assert Commitment.from_bytes(step.commitment) == commit(expected[k], step.blinding)
        sold[seller].append((step.commitment, (expected[k], step.blinding)))
        bought[buyer].append((step.commitment, (expected[k], step.blinding)))
    R1CSStatement.verify_batch(statements)
    for s, (export, _) in enumerate(exports):
        assert 0 <= sum(o[0] for _, o in sold[s]) <= export
    for b, (imported, _) in enumerate(imports):
        assert 0 <= sum(o[0] for _, o in bought[b]) <= imported
    # per interval, energy out of sellers equals energy into buyers, also as commitments
    out = [Commitment.from_bytes(c) for party in sold for c, _ in party]
    into = [Commitment.from_bytes(c) for party in bought for c, _ in party]
    total_out = sum(out[1:], out[0])
    total_in = sum(into[1:], into[0])
    assert total_out == total_in


@settings(max_examples=25, deadline=None)
@given(
    export=readings,
    earlier=st.lists(st.integers(0, 3_000), max_size=4),
    quantity=quantities,
)
def test_an_allocation_never_exceeds_the_export_left_or_q(
    export: int, earlier: list[int], quantity: int
) -> None:
    """Whatever the seller's earlier deliveries (as long as a ledger could hold them), the
    proven allocation is the min, so a - (E - Σ d) <= 0 and a <= q."""
    if sum(earlier) > export:
        earlier = []
    export_o = (export, random_scalar())
    openings = [(d, random_scalar()) for d in earlier]
    commitments = [commit(*o) for o in openings]
    tid = hashlib.sha256(b"property allocation").digest()
    step = prove_allocation(tid, commit(*export_o), export_o, commitments, openings, quantity)
    R1CSStatement.verify_batch(
        [allocation_statement(tid, commit(*export_o), commitments, quantity, step.commitment,
                              step.proof)]
    )  # fmt: skip
    a = min(quantity, export - sum(earlier))
    assert Commitment.from_bytes(step.commitment) == commit(a, step.blinding)
    assert 0 <= a <= quantity
    assert a + sum(earlier) <= export
