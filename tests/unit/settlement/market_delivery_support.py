"""A cleared market on the pure rules, with real batches (range proofs, openings kept), real
delivery proofs and real sealed openings, for the tests of the delivery steps (M10..M13,
C8). No service, no store: each party keeps what its meter would keep (its keys, its
batches' openings, the openings of its trades' ``D_k``), and learns its counterparty's
outputs only by opening the sealed boxes on the ledger."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from settlement import rules
from settlement.market import (
    Delivery,
    DeliveryAllocation,
    DeliveryDefault,
    DeliveryStep,
    MarketDay,
    MarketEnrolment,
    Order,
    Side,
    Trade,
    clear,
)
from settlement.market_circuits import (
    ALLOCATION,
    DELIVERY,
    allocation_of,
    delivery_context,
    delivery_of,
    prove_allocation,
    prove_delivery,
)
from settlement.records import (
    RANGE_PROOF_BITS,
    ZERO_HASH,
    MeterKey,
    MeterRegistration,
    ReadingBatch,
    Tariff,
    reading_proof_context,
)
from settlement.rules import LedgerState, Ref
from settlement.sealed import EncryptionKey, Opening, open_sealed, seal
from zkgrid.errors import Reason
from zkp.rangeproof import RangeProof

P = "2025-06-10"
DAY = MarketDay.with_defaults(P, 240, 25)
T = DAY.intervals  # 6
GATE = DAY.gate_closure
BEFORE = GATE - 3_600
#: An hour after the period ended: batches are in, the steps are due.
AFTER = DAY.start + 86_400 + 3_600
SELLER_DEADLINE = DAY.seller_deadline
BUYER_DEADLINE = DAY.buyer_deadline
TARIFF = Tariff(P, 240, "EUR", 0, (300,) * T, (50,) * T)


def _scalar(label: str) -> int:
    return int.from_bytes(hashlib.sha256(label.encode()).digest()) % 2**200 + 1


@dataclass
class Party:
    """A meter as its owner knows it: its keys, its batch's openings, and the openings of
    its trades' outputs (its own, and those its counterparties sealed to it)."""

    meter_id: str
    key: MeterKey
    encryption: EncryptionKey
    batch: ReadingBatch | None = None
    values: list[int] = field(default_factory=list)
    blindings: list[int] = field(default_factory=list)
    #: (interval, trade index) -> the opening of A (as seller or, unsealed, as buyer)
    allocations: dict[tuple[int, int], Opening] = field(default_factory=dict)
    #: (interval, trade index) -> the opening of D (as buyer or, unsealed, as seller)
    deliveries: dict[tuple[int, int], Opening] = field(default_factory=dict)

    def export_of(self, t: int) -> tuple[bytes, tuple[int, int]]:
        assert self.batch is not None
        i = 2 * t + 1
        return self.batch.commitments[i], (self.values[i], self.blindings[i])

    def import_of(self, t: int) -> tuple[bytes, tuple[int, int]]:
        assert self.batch is not None
        return self.batch.commitments[2 * t], (self.values[2 * t], self.blindings[2 * t])


class Market:
    """A log on the pure rules: appends what the rules accept (at the time given), keeps
    the accepted records by trade, and returns the refusal else."""

    def __init__(self) -> None:
        self.state = LedgerState()
        self.size = 0
        self.parties: dict[str, Party] = {}
        self.orders: list[Order] = []
        #: (interval, trade index) -> {"allocation": ..., "delivery": ..., "default": ...}
        self.steps: dict[tuple[int, int], dict[str, Any]] = {}
        #: the detail of the last refusal (:meth:`refused`)
        self.detail = ""

    # -- the log

    def append(self, record: Any, time: int | None = BEFORE) -> rules.Refusal | None:
        digest = hashlib.sha256(record.encode()).digest()
        refusal = rules.step(self.state, record, Ref(self.size, digest), time=time)
        if refusal is None:
            self.size += 1
            if isinstance(record, DeliveryAllocation | Delivery | DeliveryDefault):
                name = (
                    "allocation"
                    if isinstance(record, DeliveryAllocation)
                    else "delivery"
                    if isinstance(record, Delivery)
                    else "default"
                )
                self.steps.setdefault((record.interval, record.trade_index), {})[name] = record
        return refusal

    def ok(self, record: Any, time: int | None = BEFORE) -> Any:
        refusal = self.append(record, time)
        assert refusal is None, refusal
        return record

    def refused(self, record: Any, time: int | None = AFTER) -> tuple[str, Reason]:
        before = repr(self.state)
        refusal = self.append(record, time)
        assert refusal is not None, "accepted"
        assert repr(self.state) == before  # a refused record changes nothing
        self.detail = refusal.detail
        return refusal.rule, refusal.reason

    # -- setting up

    def meter(self, meter_id: str) -> Party:
        party = Party(
            meter_id,
            MeterKey.from_private_value(_scalar(f"sign/{meter_id}")),
            EncryptionKey.from_private_bytes(_scalar(f"ecdh/{meter_id}").to_bytes(32)),
        )
        self.parties[meter_id] = party
        self.ok(MeterRegistration.create(party.key, meter_id, 240))
        self.ok(MarketEnrolment.create(party.key, meter_id, party.encryption.public_key))
        return party

    def order(
        self, meter_id: str, side: Side, quantity: int, price: int, first: int = 0, last: int = 0
    ) -> Order:
        order = Order.create(
            self.parties[meter_id].key,
            meter_id=meter_id,
            period=P,
            side=side,
            first_interval=first,
            last_interval=last,
            quantity_wh=quantity,
            limit_price=price,
            nonce=len(self.orders),
        )
        self.orders.append(self.ok(order))
        return order

    def clear(self) -> None:
        self.ok(clear(DAY, self.state.live_orders(P)), GATE)

    def batch(
        self,
        meter_id: str,
        imports: Sequence[int],
        exports: Sequence[int],
        *,
        append: bool = True,
    ) -> ReadingBatch:
        """The meter's batch of P (real range proof), its openings kept by the party;
        appended unless ``append`` is false (made, not sent yet)."""
        party = self.parties[meter_id]
        values = [v for pair in zip(imports, exports, strict=True) for v in pair]
        bundle = RangeProof.prove(
            values, RANGE_PROOF_BITS, context=reading_proof_context(meter_id, P, 0)
        )
        batch = ReadingBatch.create(
            party.key,
            meter_id=meter_id,
            period=P,
            interval_minutes=240,
            sequence=0,
            prev_hash=ZERO_HASH,
            commitments=[c.to_bytes() for c in bundle.commitments],
            range_proof=bundle.proof.to_bytes(),
        )
        if append:
            self.ok(batch)
        party.batch, party.values, party.blindings = batch, values, list(bundle.blindings)
        return batch

    # -- the steps, as the parties' meters make them

    @property
    def clearing_hash(self) -> bytes:
        return self.state.market.clearings[P][1].digest

    def trade(self, t: int, k: int) -> Trade:
        trade = self.state.trade(P, t, k)
        assert trade is not None
        return trade

    def trade_id(self, t: int, k: int) -> bytes:
        from settlement.market import trade_id

        return trade_id(self.clearing_hash, t, k)

    def _earlier(
        self, party: Party, t: int, k: int, step: DeliveryStep
    ) -> tuple[list[bytes], list[tuple[int, int]]]:
        """The party's earlier D_j (defaults left out) with the openings it holds; an
        earlier trade not delivered yet is left out too (so that a test can make a step
        before its inputs are on the ledger)."""
        commitments, openings = [], []
        for j in self.state.earlier_trades(P, t, k, step):
            trade_state = self.state.market.trades.get((P, t, j))
            if trade_state is None or trade_state.delivery is None:
                continue
            commitments.append(trade_state.delivery)
            opening = party.deliveries[(t, j)]
            openings.append((opening.value, opening.blinding))
        return commitments, openings

    def allocation(
        self, t: int, k: int, *, signer: Party | None = None, meter_id: str | None = None
    ) -> DeliveryAllocation:
        """The seller's step of trade k of interval t: proven, sealed to the buyer, signed."""
        trade = self.trade(t, k)
        seller, buyer = self.parties[trade.seller], self.parties[trade.buyer]
        tid = self.trade_id(t, k)
        export, export_opening = seller.export_of(t)
        earlier, openings = self._earlier(seller, t, k, DeliveryStep.ALLOCATION)
        proven = prove_allocation(tid, export, export_opening, earlier, openings, trade.quantity)
        value = allocation_of(export_opening[0], [o[0] for o in openings], trade.quantity)
        seller.allocations[(t, k)] = Opening(value, proven.blinding)
        box = seal(
            value,
            proven.blinding,
            buyer.encryption.public_key,
            delivery_context(tid, ALLOCATION),
        )
        return DeliveryAllocation.create(
            (signer or seller).key,
            meter_id=meter_id or seller.meter_id,
            period=P,
            interval=t,
            trade_index=k,
            clearing_hash=self.clearing_hash,
            commitment=proven.commitment,
            proof=proven.proof,
            sealed_opening=box,
        )

    def delivery(self, t: int, k: int) -> Delivery:
        """The buyer's step: opens the seller's box (D10), proves, seals to the seller."""
        trade = self.trade(t, k)
        seller, buyer = self.parties[trade.seller], self.parties[trade.buyer]
        tid = self.trade_id(t, k)
        allocation = self.steps[(t, k)]["allocation"]
        a = open_sealed(
            allocation.sealed_opening,
            buyer.encryption,
            allocation.commitment,
            delivery_context(tid, ALLOCATION),
        )
        buyer.allocations[(t, k)] = a
        imported, import_opening = buyer.import_of(t)
        earlier, openings = self._earlier(buyer, t, k, DeliveryStep.DELIVERY)
        proven = prove_delivery(
            tid, allocation.commitment, (a.value, a.blinding), imported, import_opening,
            earlier, openings,
        )  # fmt: skip
        value = delivery_of(a.value, import_opening[0], [o[0] for o in openings])
        buyer.deliveries[(t, k)] = Opening(value, proven.blinding)
        box = seal(
            value, proven.blinding, seller.encryption.public_key, delivery_context(tid, DELIVERY)
        )
        return Delivery.create(
            buyer.key,
            meter_id=buyer.meter_id,
            period=P,
            interval=t,
            trade_index=k,
            clearing_hash=self.clearing_hash,
            commitment=proven.commitment,
            proof=proven.proof,
            sealed_opening=box,
        )

    def receive(self, t: int, k: int) -> Opening:
        """The seller opens the buyer's sealed delivery of trade k (D10) and keeps it."""
        trade = self.trade(t, k)
        seller = self.parties[trade.seller]
        delivery = self.steps[(t, k)]["delivery"]
        opening = open_sealed(
            delivery.sealed_opening,
            seller.encryption,
            delivery.commitment,
            delivery_context(self.trade_id(t, k), DELIVERY),
        )
        seller.deliveries[(t, k)] = opening
        return opening

    def default(self, t: int, k: int, step: DeliveryStep) -> DeliveryDefault:
        return DeliveryDefault(P, t, k, self.clearing_hash, step)

    def settle(self, t: int, time: int = AFTER) -> None:
        """Both steps of every trade of interval t, in trade order."""
        for k in range(len(self.state.market.clearings[P][0].intervals[t].trades)):
            self.ok(self.allocation(t, k), time)
            self.ok(self.delivery(t, k), time)
            self.receive(t, k)


def market(
    orders: Sequence[tuple[str, Side, int, int]],
    readings: dict[str, tuple[Sequence[int], Sequence[int]]],
) -> Market:
    """Meters, the tariff and the market day; ``orders`` (meter, side, Wh, price) for
    interval 0, cleared at gate closure; then each meter's batch (imports, exports)."""
    m = Market()
    for meter_id in dict.fromkeys(o[0] for o in orders):
        m.meter(meter_id)
    m.ok(TARIFF)
    m.ok(DAY)
    for meter_id, side, quantity, price in orders:
        m.order(meter_id, side, quantity, price)
    m.clear()
    for meter_id, (imports, exports) in readings.items():
        m.batch(meter_id, imports, exports)
    return m


def plain_deliveries(
    trades: Sequence[Trade], exports: dict[str, int], imports: dict[str, int]
) -> list[int]:
    """The design's rule in plain integers: ``d_k = min(q_k, E - Σ, I - Σ)`` in trade order."""
    sold: dict[str, int] = {}
    bought: dict[str, int] = {}
    out = []
    for trade in trades:
        d = min(
            trade.quantity,
            exports[trade.seller] - sold.get(trade.seller, 0),
            imports[trade.buyer] - bought.get(trade.buyer, 0),
        )
        sold[trade.seller] = sold.get(trade.seller, 0) + d
        bought[trade.buyer] = bought.get(trade.buyer, 0) + d
        out.append(d)
    return out
