"""The neighbourhood market's domain in the service (docs/design/market-v1.md, "Interfaces").

No gRPC here: methods take and return :mod:`settlement.market` records and the
dataclasses below; :class:`service.servicers.MarketServicer` translates. The market
uses the settlement domain's machinery (:class:`service.settlement.Settlement`): the
one projection of the log, the rules of :mod:`settlement.rules` (M1..M9 beside R4..R6),
the two-step check (state rules at the clock's time, then again under the ledger's write
lock with the time read there), group commit and receipts.

A meter's records (enrolment, order, cancellation) pass, in this order: the caller
(``PERMISSION_DENIED`` when a meter acts for another id), the state rules (the identical
record again returns its original receipt: R5, before the other rules, so a replay is
idempotent even after gate closure), C7 (the record is signed by the meter's registered
key: ``SIGNATURE_INVALID``), then the append, whose rules run again under the write
lock. A market day is the utility's (by role) and is not signed.

**Clearing** (:meth:`Market.clear`, ``zkgrid market clear``): at or after gate closure
(by the service's clock) the utility asks the service to clear a period: it computes
:func:`settlement.market.clear` from the projection's live orders and appends the
``Clearing``; the rules recompute it under the write lock (M9), so what is appended is
exactly the recomputation from the ledger. A revocation that withdraws orders between the
two computations makes the first one stale: it is computed again (a few times at most).
A period already cleared returns its clearing and receipt. The service has no periodic
jobs, so clearing is operator-triggered: run it from the utility's scheduler (cron, a
systemd timer) after each market day's gate closure; until then orders are refused
(``GATE_CLOSED``) and nothing else waits on it.

Who sees what (design, "Who learns what"): a meter lists its own orders and its own
trades only (its counterparty's id, the quantity, the price); interval prices and
volumes are public to every participant; the utility and auditors see every order and
the clearing record.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TypeVar

from service.errors import InvalidRequest, ProofMalformed
from service.settlement import Receipt, Settlement, epoch_seconds
from settlement import rules
from settlement.errors import (
    ClearingMismatch,
    DeliveryExists,
    GateNotClosed,
    UnknownMarketDay,
    UnknownMeter,
)
from settlement.market import (
    Clearing,
    Delivery,
    DeliveryAllocation,
    DeliveryDefault,
    DeliveryStep,
    MarketDay,
    MarketEnrolment,
    Order,
    OrderCancellation,
    Side,
    clear,
    trade_id,
)
from settlement.rules import LedgerState
from zkgrid.errors import ProofFormatError

_log = logging.getLogger(__name__)

__all__ = [
    "CLEAR_ATTEMPTS",
    "Cleared",
    "DeliveryStatus",
    "Market",
    "MarketResult",
    "OrderLine",
    "OrderStatus",
    "RecordedDefault",
    "TradeLine",
    "TradeMessages",
    "TradeSteps",
    "Trades",
]

_Step = TypeVar("_Step", DeliveryAllocation, Delivery)

#: How often :meth:`Market.clear` computes the clearing again when a revocation changed
#: the live orders between its computation and the append.
CLEAR_ATTEMPTS = 3


class OrderStatus:
    """Where an order stands (the API's ``OrderStatus``)."""

    LIVE = "live"
    CANCELLED = "cancelled"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One order on the ledger: the record, its hash and ledger index, its status and,
    when cancelled, the cancellation's ledger index."""

    order: Order
    order_hash: bytes
    index: int
    status: str
    cancellation_index: int | None = None


@dataclass(frozen=True, slots=True)
class MarketResult:
    """A period's market: its day, and once cleared each interval's ``(price, volume)``;
    ``clearing`` and its ``receipt`` only for a caller who may see the trades (not a
    meter)."""

    day: MarketDay
    intervals: tuple[tuple[int, int], ...] | None
    clearing: Clearing | None = None
    receipt: Receipt | None = None

    @property
    def cleared(self) -> bool:
        return self.intervals is not None


@dataclass(frozen=True, slots=True)
class TradeLine:
    """One trade of a clearing: interval ``t``, its index ``k`` there, the parties, the
    quantity (Wh) and the interval's price. ``side`` and ``counterparty`` are those of the
    meter asked for (``None`` when every meter's trades are listed)."""

    interval: int
    index: int
    seller: str
    buyer: str
    quantity: int
    price: int
    side: Side | None = None
    counterparty: str | None = None


@dataclass(frozen=True, slots=True)
class Trades:
    """The trades of a period (of one meter, or all); empty before the clearing."""

    cleared: bool
    trades: tuple[TradeLine, ...]
    clearing_hash: bytes | None = None


class DeliveryStatus:
    """Where a trade's delivery stands (the API's ``DeliveryStatus``): the seller's
    allocation is next (``PENDING``), the buyer's delivery (``ALLOCATED``), or it is
    settled (``DELIVERED``, ``DEFAULTED``)."""

    PENDING = "pending"
    ALLOCATED = "allocated"
    DELIVERED = "delivered"
    DEFAULTED = "defaulted"


@dataclass(frozen=True, slots=True)
class TradeSteps:
    """One trade of a meter with its delivery steps on the ledger: the trade (as
    :class:`TradeLine`, with the meter's side), its id, its status, the allocation and the
    delivery records with their ledger indices (once made), the step a default missed."""

    trade: TradeLine
    trade_id: bytes
    status: str
    allocation: DeliveryAllocation | None = None
    allocation_index: int | None = None
    delivery: Delivery | None = None
    delivery_index: int | None = None
    defaulted_step: DeliveryStep | None = None


@dataclass(frozen=True, slots=True)
class TradeMessages:
    """A meter's trades of a period with their steps (``GetMessages``); empty before the
    clearing."""

    cleared: bool
    trades: tuple[TradeSteps, ...]
    clearing_hash: bytes | None = None


@dataclass(frozen=True, slots=True)
class RecordedDefault:
    """A default appended by :meth:`Market.record_defaults`, with its receipt."""

    default: DeliveryDefault
    receipt: Receipt


@dataclass(frozen=True, slots=True)
class Cleared:
    """A period's clearing, its receipt, and whether this call appended it."""

    clearing: Clearing
    receipt: Receipt
    appended: bool


class Market:
    """The market's domain over a :class:`~service.settlement.Settlement` (thread-safe:
    every state is the settlement's projection)."""

    def __init__(self, settlement: Settlement) -> None:
        self._settlement = settlement

    @property
    def settlement(self) -> Settlement:
        return self._settlement

    # ------------------------------------------------------------------ records

    def _signed(
        self,
        record: MarketEnrolment | Order | OrderCancellation,
        as_meter: str | None,
    ) -> Receipt:
        """A meter's signed record: caller, state rules (idempotent), C7, append."""
        s = self._settlement
        s.acting_as(as_meter, record.meter_id)
        payload = record.encode()
        digest, original = s.judge(record, payload)
        if original is not None:
            return original
        record.verify_signature(s.meter_public_key(record.meter_id))  # C7: SIGNATURE_INVALID
        return s.append_judged(record, payload, digest, group_key=record.meter_id)

    def enrol(self, enrolment: MarketEnrolment, *, as_meter: str | None = None) -> Receipt:
        """Append a meter's enrolment (R4, R5, R6, M6 ``ENROLMENT_EXISTS``, then C7)."""
        _record(enrolment, MarketEnrolment, "enrolment")
        return self._signed(enrolment, as_meter)

    def publish_market_day(self, day: MarketDay) -> Receipt:
        """Append a period's market day (the utility's); the identical one returns its
        receipt, another for the period is ``MARKET_DAY_EXISTS`` (M7)."""
        _record(day, MarketDay, "market day")
        s = self._settlement
        payload = day.encode()
        digest, original = s.judge(day, payload)
        if original is not None:
            return original
        return s.append_judged(day, payload, digest)

    def submit_order(self, order: Order, *, as_meter: str | None = None) -> Receipt:
        """Append an order (R4, R5, R6, M1..M4 at the clock's time, then C7); its id is
        ``order.order_hash()``."""
        _record(order, Order, "order")
        return self._signed(order, as_meter)

    def cancel_order(
        self, cancellation: OrderCancellation, *, as_meter: str | None = None
    ) -> Receipt:
        """Append a cancellation of a live order of the meter (R4, R5, R6, M5, then C7)."""
        _record(cancellation, OrderCancellation, "cancellation")
        return self._signed(cancellation, as_meter)

    # ------------------------------------------------------------------ delivery steps

    def _step(self, record: DeliveryAllocation | Delivery, as_meter: str | None) -> Receipt:
        """A delivery step: caller, state rules (R4, R5 idempotent, R6, M10..M13 at the
        clock's time), C7, C8 in the delivery steps' lane, append (the rules again under
        the write lock)."""
        s = self._settlement
        s.acting_as(as_meter, record.meter_id)
        payload = record.encode()
        digest, original = s.judge(record, payload)
        if original is not None:
            return original
        record.verify_signature(s.meter_public_key(record.meter_id))  # C7: SIGNATURE_INVALID
        # C8: the statement over the ledger (the party's batch: M13 held, so it is there;
        # nothing a later entry appends changes the statement's inputs)
        batch = s.get_batch(record.meter_id, record.period)
        with s.read_projection() as (ledger, _):
            try:
                if isinstance(record, DeliveryAllocation):
                    statement = rules.allocation_statement_for(ledger, record, batch)
                else:
                    statement = rules.delivery_statement_for(ledger, record, batch)
            except ProofFormatError as exc:
                raise ProofMalformed(f"{record.STEP.context_name} proof: {exc}") from None
        s.verifier.verify_delivery_step(statement, caller=record.meter_id)
        return s.append_judged(record, payload, digest, group_key=record.meter_id)

    def submit_allocation(
        self, allocation: DeliveryAllocation, *, as_meter: str | None = None
    ) -> Receipt:
        """Append a seller's allocation (R4, R5, R6, M10..M13, then C7 and C8)."""
        _record(allocation, DeliveryAllocation, "allocation")
        return self._step(allocation, as_meter)

    def submit_delivery(self, delivery: Delivery, *, as_meter: str | None = None) -> Receipt:
        """Append a buyer's delivery (R4, R5, R6, M10..M13, then C7 and C8)."""
        _record(delivery, Delivery, "delivery")
        return self._step(delivery, as_meter)

    def record_defaults(self, period: str) -> list[RecordedDefault]:
        """Append every default due for ``period`` at the service's clock
        (:func:`settlement.rules.due_defaults`), each in a transaction of its own where its
        rules run again; a step that lands first (``DELIVERY_EXISTS``) is skipped. Returns
        the defaults this call appended. ``UNKNOWN_MARKET_DAY`` without a market day."""
        s = self._settlement
        s.validate_period(period)
        s.catch_up()
        now = epoch_seconds(s.now())
        with s.read_projection() as (ledger, _):
            self._day(ledger, period)
            due = rules.due_defaults(ledger, period, now)
        out = []
        for default in due:
            payload = default.encode()
            try:
                receipt, appended = s.append_judged_once(
                    default, payload, hashlib.sha256(payload).digest()
                )
            except DeliveryExists:
                continue  # the step (or another default) got there first
            if appended:
                out.append(RecordedDefault(default, receipt))
        if out:
            _log.info("defaults of %s: %d appended", period, len(out))
        return out

    def messages(
        self, period: str, meter_id: str, *, as_meter: str | None = None
    ) -> TradeMessages:
        """The meter's trades of ``period`` with their delivery steps and status (a meter
        reads its own only): what its next step needs (the allocations sealed to it as
        buyer, the deliveries sealed to it as seller, the D_j of its earlier trades)."""
        if not meter_id:
            raise InvalidRequest("GetMessages needs a meter id")
        found = self.trades(period, meter_id, as_meter=as_meter)
        if not found.cleared or found.clearing_hash is None:
            return TradeMessages(False, ())
        s = self._settlement
        with s.read_projection() as (ledger, _):
            states = {
                (line.interval, line.index): ledger.market.trades.get(
                    (period, line.interval, line.index)
                )
                for line in found.trades
            }
            refs = {
                key: (
                    None if state is None or state.allocated is None else state.allocated.index,
                    None if state is None or state.delivered is None else state.delivered.index,
                    None if state is None else state.default,
                )
                for key, state in states.items()
            }
        out = []
        for line in found.trades:
            allocated, delivered, default = refs[(line.interval, line.index)]
            allocation = None if allocated is None else self._stored(allocated, DeliveryAllocation)
            delivery = None if delivered is None else self._stored(delivered, Delivery)
            if default is not None:
                status = DeliveryStatus.DEFAULTED
            elif delivery is not None:
                status = DeliveryStatus.DELIVERED
            elif allocation is not None:
                status = DeliveryStatus.ALLOCATED
            else:
                status = DeliveryStatus.PENDING
            out.append(
                TradeSteps(
                    trade=line,
                    trade_id=trade_id(found.clearing_hash, line.interval, line.index),
                    status=status,
                    allocation=allocation,
                    allocation_index=allocated,
                    delivery=delivery,
                    delivery_index=delivered,
                    defaulted_step=default,
                )
            )
        return TradeMessages(True, tuple(out), found.clearing_hash)

    def _stored(self, index: int, cls: type[_Step]) -> _Step:
        """The step record stored at ``index`` (the projection applied it there)."""
        return cls.decode(self._settlement.store.entry(index).payload)

    # ------------------------------------------------------------------ reads

    def _day(self, ledger: LedgerState, period: str) -> MarketDay:
        """(projection lock held) The period's market day; ``UNKNOWN_MARKET_DAY``."""
        found = ledger.market.days.get(period)
        if found is None:
            raise UnknownMarketDay(f"no market day is published for {period}")
        return found[0]

    def _reading(self, period: str, meter_id: str | None, as_meter: str | None) -> None:
        """Validate a read's arguments and its caller: a meter reads its own id only."""
        s = self._settlement
        s.validate_period(period)
        if meter_id is not None:
            s.validate_id(meter_id)
        if as_meter is not None and meter_id != as_meter:
            s.acting_as(as_meter, meter_id or "")  # PERMISSION_DENIED (all: not for a meter)
        s.catch_up()

    def list_orders(
        self, period: str, meter_id: str | None = None, *, as_meter: str | None = None
    ) -> list[OrderLine]:
        """The orders of ``period`` (of ``meter_id``, or every meter's), in ledger order,
        with their status. A meter may list its own only."""
        self._reading(period, meter_id, as_meter)
        with self._settlement.read_projection() as (ledger, index):
            self._day(ledger, period)
            if meter_id is not None and meter_id not in ledger.meters:
                raise UnknownMeter(f"meter {meter_id!r} is not registered")
            cleared = ledger.market.clearings.get(period)
            cleared_at = None if cleared is None else cleared[1].index
            lines = []
            for order_hash in index.period_orders.get(period, ()):
                placed = ledger.market.orders[order_hash]
                order = placed.order
                if meter_id is not None and order.meter_id != meter_id:
                    continue
                revoked = index.revoked_at.get(order.meter_id)
                if placed.cancelled is not None:
                    status, cancelled_at = OrderStatus.CANCELLED, placed.cancelled.index
                elif revoked is not None and (cleared_at is None or revoked < cleared_at):
                    status, cancelled_at = OrderStatus.WITHDRAWN, None
                else:
                    status, cancelled_at = OrderStatus.LIVE, None
                lines.append(OrderLine(order, order_hash, placed.ref.index, status, cancelled_at))
        return lines

    def result(self, period: str, *, as_meter: str | None = None) -> MarketResult:
        """The period's market day and, once cleared, each interval's price and volume; the
        clearing record and its receipt unless the caller is a meter."""
        self._reading(period, None, None)
        with self._settlement.read_projection() as (ledger, _):
            day = self._day(ledger, period)
            found = ledger.market.clearings.get(period)
        if found is None:
            return MarketResult(day, None)
        clearing, ref = found
        intervals = tuple((r.price, r.volume) for r in clearing.intervals)
        if as_meter is not None:
            return MarketResult(day, intervals)
        return MarketResult(day, intervals, clearing, self._settlement.receipt_of(ref))

    def trades(
        self, period: str, meter_id: str | None = None, *, as_meter: str | None = None
    ) -> Trades:
        """The trades of ``period``'s clearing: the meter's own (with its side and
        counterparty), or every trade. A meter may list its own only."""
        self._reading(period, meter_id, as_meter)
        with self._settlement.read_projection() as (ledger, index):
            self._day(ledger, period)
            if meter_id is not None and meter_id not in ledger.meters:
                raise UnknownMeter(f"meter {meter_id!r} is not registered")
            found = ledger.market.clearings.get(period)
            if found is None:
                return Trades(False, ())
            clearing = found[0]
            if meter_id is None:
                where = [
                    (t, k)
                    for t, result in enumerate(clearing.intervals)
                    for k in range(len(result.trades))
                ]
            else:
                where = list(index.meter_trades.get((period, meter_id), ()))
        lines = []
        for t, k in where:
            result = clearing.intervals[t]
            trade = result.trades[k]
            side: Side | None = None
            counterparty: str | None = None
            if meter_id is not None:
                sells = trade.seller == meter_id
                side = Side.OFFER if sells else Side.BID
                counterparty = trade.buyer if sells else trade.seller
            lines.append(
                TradeLine(
                    interval=t,
                    index=k,
                    seller=trade.seller,
                    buyer=trade.buyer,
                    quantity=trade.quantity,
                    price=result.price,
                    side=side,
                    counterparty=counterparty,
                )
            )
        return Trades(True, tuple(lines), clearing.clearing_hash())

    # ------------------------------------------------------------------ the clearing

    def clear(self, period: str) -> Cleared:
        """Clear ``period`` (the utility's): compute :func:`settlement.market.clear` from the
        live orders and append it; ``GATE_NOT_CLOSED`` before gate closure by the service's
        clock, ``UNKNOWN_MARKET_DAY`` without a market day. A cleared period returns its
        clearing and receipt (``appended`` false)."""
        s = self._settlement
        s.validate_period(period)
        for attempt in range(1, CLEAR_ATTEMPTS + 1):
            s.catch_up()
            with s.read_projection() as (ledger, _):
                day = self._day(ledger, period)
                existing = ledger.market.clearings.get(period)
                orders = ledger.live_orders(period) if existing is None else []
            if existing is not None:
                return Cleared(existing[0], s.receipt_of(existing[1]), False)
            now = epoch_seconds(s.now())
            if now < day.gate_closure:  # M8, checked again under the write lock
                raise GateNotClosed(
                    f"the gate of {period} closes at {day.gate_closure} (seconds since the"
                    f" epoch); the service's time is {now}"
                )
            clearing = clear(day, orders)  # a pure function of the ledger's live orders
            payload = clearing.encode()
            try:
                receipt, appended = s.append_judged_once(
                    clearing, payload, clearing.clearing_hash()
                )
            except ClearingMismatch:
                if attempt == CLEAR_ATTEMPTS:
                    raise
                _log.info("the live orders of %s changed while clearing; again", period)
                continue
            if appended:
                _log.info(
                    "cleared %s: %d orders, %d Wh matched",
                    period, len(orders), sum(r.volume for r in clearing.intervals),
                )  # fmt: skip
            return Cleared(clearing, receipt, appended)
        raise AssertionError("unreachable")  # pragma: no cover


def _record(value: object, cls: type, what: str) -> None:
    if not isinstance(value, cls):
        raise InvalidRequest(f"{what} must be a {cls.__name__}")
