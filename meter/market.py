"""The meter's side of the neighbourhood market (docs/design/market-v1.md): enrolment, orders,
cancellations, the market's results and the meter's own trades; and the utility's and
auditors' calls (publish a market day, clear, list every order and trade).

The enrolment publishes an ECDH P-256 key (:class:`settlement.sealed.EncryptionKey`) to
which counterparties will seal the openings of common trades; it is distinct from the
meter's signing key and kept beside it in the meter home::

    market.key          the encryption key, PKCS#8 PEM, mode 0600 (back it up with meter.key:
                        without it no sealed opening can be read)
    market.enrolment    the signed enrolment record, mode 0600 (sent again, byte for byte,
                        on a retry: the identical record is idempotent, a re-signed one
                        would be ENROLMENT_EXISTS)

Orders and cancellations are signed with the meter's key. An ECDSA signature is
randomised, so an order is one set of bytes for good: a retry after a lost answer (the
transport's retries do this) resends the same bytes and gets the original receipt; placing
it again would be a second order (``orders`` lists what the ledger holds).

Every receipt is verified against the record this client sent (and the pinned log key),
and every answer is checked against what was asked: the orders are the meter's own and of
the period, their hashes are their records', the trades name the meter, the result's
market day is the period's.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from ledger.checkpoint import CheckpointVerifier
from ledger.entries import EntryKind
from meter.client import MeterClient, VerifiedReceipt, _appended_receipt, _Rpc, _stub
from meter.errors import ReceiptError
from meter.home import MeterHome, MeterHomeError
from settlement import convert
from settlement.market import (
    HASH_SIZE,
    Clearing,
    Delivery,
    DeliveryAllocation,
    MarketDay,
    MarketEnrolment,
    Order,
    OrderCancellation,
    Side,
)
from settlement.market import trade_id as market_trade_id
from settlement.sealed import EncryptionKey
from zkgrid._internal.files import read_private, write_new_private
from zkgrid.errors import InvalidArgumentError
from zkgrid.settlement.v1 import market_pb2, market_pb2_grpc

__all__ = [
    "ENROLMENT_FILE",
    "MARKET_KEY_FILE",
    "DeliveryReport",
    "MarketClient",
    "MarketResult",
    "PlacedOrder",
    "Trade",
    "Trades",
    "clear_market",
    "encryption_key",
    "list_orders",
    "list_trades",
    "market_result",
    "parse_order_hash",
    "peer_enrolment",
    "publish_market_day",
]

MARKET_KEY_FILE = "market.key"
ENROLMENT_FILE = "market.enrolment"
_MAX_FILE_BYTES = 64 * 1024
_STATUS = {
    market_pb2.ORDER_STATUS_LIVE: "live",
    market_pb2.ORDER_STATUS_CANCELLED: "cancelled",
    market_pb2.ORDER_STATUS_WITHDRAWN: "withdrawn",
}
_SIDES = {market_pb2.SIDE_OFFER: Side.OFFER, market_pb2.SIDE_BID: Side.BID}


@dataclass(frozen=True)
class DeliveryReport:
    """What :meth:`MarketClient.deliver` did for a period: one outcome per trade of the
    meter, in trade order (``meter.delivery.StepOutcome``)."""

    period: str
    cleared: bool
    outcomes: tuple[Any, ...]

    @property
    def refused(self) -> bool:
        return any(o.status == "refused" for o in self.outcomes)

    @property
    def done(self) -> bool:
        """Every trade settled (delivered or defaulted)."""
        return all(o.status == "settled" or (o.status == "made" and o.delivered_wh is not None)
                   for o in self.outcomes)  # fmt: skip


_R = TypeVar("_R")


# --------------------------------------------------------------------------- the key


def encryption_key(home: MeterHome, *, create: bool = False) -> EncryptionKey:
    """The meter's market encryption key from ``home`` (checked private); ``create``: make
    one first (mode 0600) when the home has none."""
    path = home.path / MARKET_KEY_FILE
    if not path.exists():
        if not create:
            raise MeterHomeError(f"{home.path} holds no market key: run 'zkgrid market enrol'")
        write_new_private(path, EncryptionKey.generate().to_pem())
    return EncryptionKey.from_pem(read_private(path, max_bytes=_MAX_FILE_BYTES))


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class PlacedOrder:
    """An order as the ledger holds it: the record, its hash, its ledger index, its status
    (``live``, ``cancelled``, ``withdrawn``) and, when cancelled, the cancellation's index."""

    order: Order
    order_hash: bytes
    ledger_index: int
    status: str
    cancellation_index: int | None


@dataclass(frozen=True)
class MarketResult:
    """A period's market: its day, and once cleared each interval's ``(price, volume)``;
    the clearing record and its verified receipt for a utility or auditor caller."""

    day: MarketDay
    intervals: tuple[tuple[int, int], ...] | None
    clearing: Clearing | None = None
    receipt: VerifiedReceipt | None = None

    @property
    def cleared(self) -> bool:
        return self.intervals is not None


@dataclass(frozen=True)
class Trade:
    """One trade: interval, index in the interval, the parties, Wh and the price
    (micro-currency per Wh); ``side`` and ``counterparty`` of the meter asked for."""

    interval: int
    index: int
    seller: str
    buyer: str
    quantity_wh: int
    price: int
    side: Side | None = None
    counterparty: str | None = None


@dataclass(frozen=True)
class Trades:
    """A period's trades (of one meter, or all) and the hash of their clearing."""

    cleared: bool
    trades: tuple[Trade, ...]
    clearing_hash: bytes | None


def _checked_orders(
    response: market_pb2.ListOrdersResponse, period: str, meter_id: str | None
) -> list[PlacedOrder]:
    out = []
    for item in response.orders:
        order = convert.order_from_bytes(bytes(item.order))
        if order.period != period:
            raise ReceiptError(f"the service listed an order of {order.period}, not {period}")
        if meter_id is not None and order.meter_id != meter_id:
            raise ReceiptError("the service listed another meter's order")
        if bytes(item.order_hash) != hashlib.sha256(bytes(item.order)).digest():
            raise ReceiptError("an order's hash is not the hash of its record")
        status = _STATUS.get(item.status)
        if status is None:
            raise ReceiptError("the service listed an order without a status")
        cancelled = item.cancellation_index if status == "cancelled" else None
        out.append(PlacedOrder(order, bytes(item.order_hash), item.ledger_index, status, cancelled))
    return out


def _checked_result(
    response: market_pb2.GetMarketResultResponse,
    period: str,
    log_key: str | CheckpointVerifier | None,
) -> MarketResult:
    day = convert.market_day_from_bytes(bytes(response.market_day))
    if day.period != period:
        raise ReceiptError(f"the service answered with the market day of {day.period}")
    if not response.cleared:
        if response.intervals or response.clearing:
            raise ReceiptError("an uncleared market with results")
        return MarketResult(day, None)
    intervals = tuple((r.price, r.volume) for r in response.intervals)
    if [r.interval for r in response.intervals] != list(range(day.intervals)):
        raise ReceiptError(f"the result does not list the day's {day.intervals} intervals once")
    if any(volume == 0 and price != 0 for price, volume in intervals):
        raise ReceiptError("an interval without volume has a price")
    if not response.clearing:
        return MarketResult(day, intervals)
    clearing = convert.clearing_from_bytes(bytes(response.clearing))
    if clearing.period != period:
        raise ReceiptError(f"the service answered with the clearing of {clearing.period}")
    if tuple((r.price, r.volume) for r in clearing.intervals) != intervals:
        raise ReceiptError("the listed prices and volumes are not the clearing's")
    receipt = _appended_receipt(
        response.receipt, EntryKind.CLEARING, clearing.encode(), log_key, "clearing",
        "market result",
    )  # fmt: skip
    return MarketResult(day, intervals, clearing, receipt)


def _checked_trades(response: market_pb2.ListTradesResponse, meter_id: str | None) -> Trades:
    trades = []
    for item in response.trades:
        side = _SIDES.get(item.side)
        if meter_id is not None:
            sells = item.seller == meter_id
            if not sells and item.buyer != meter_id:
                raise ReceiptError("the service listed a trade of other meters")
            if side is not (Side.OFFER if sells else Side.BID):
                raise ReceiptError("a trade's side is not the meter's")
            if item.counterparty != (item.buyer if sells else item.seller):
                raise ReceiptError("a trade's counterparty is not the other party")
        trades.append(
            Trade(
                interval=item.interval,
                index=item.index,
                seller=item.seller,
                buyer=item.buyer,
                quantity_wh=item.quantity_wh,
                price=item.price,
                side=side if meter_id is not None else None,
                counterparty=item.counterparty or None,
            )
        )
    if not response.cleared and trades:
        raise ReceiptError("trades of an uncleared market")
    digest = bytes(response.clearing_hash) or None
    if response.cleared and (digest is None or len(digest) != HASH_SIZE):
        raise ReceiptError("the trades name no clearing")
    return Trades(response.cleared, tuple(trades), digest)


# --------------------------------------------------------------------------- calls


def _rpc(channel: grpc.Channel, metadata: Sequence[tuple[str, str]], timeout: float) -> _Rpc:
    return _Rpc(channel, metadata, timeout=timeout, max_attempts=6, initial_backoff=0.1)


def publish_market_day(
    channel: grpc.Channel,
    day: MarketDay,
    *,
    metadata: Sequence[tuple[str, str]] = (),
    log_key: str | CheckpointVerifier | None = None,
    timeout: float = 30.0,
) -> VerifiedReceipt:
    """The utility opens the market of a period (the identical day again: its receipt)."""
    payload = convert.market_day_to_bytes(day)
    response = _rpc(channel, metadata, timeout)(
        _stub(market_pb2_grpc.MarketServiceStub, channel).PublishMarketDay,
        market_pb2.PublishMarketDayRequest(market_day=payload),
        market_pb2.PublishMarketDayResponse,
        "PublishMarketDay",
    )
    return _appended_receipt(
        response.receipt, EntryKind.MARKET_DAY, payload, log_key, "market day",
        "market day publish",
    )  # fmt: skip


def clear_market(
    channel: grpc.Channel,
    period: str,
    *,
    metadata: Sequence[tuple[str, str]] = (),
    log_key: str | CheckpointVerifier | None = None,
    timeout: float = 60.0,
) -> tuple[Clearing, VerifiedReceipt, bool]:
    """The utility clears a period after its gate closure: the clearing, its verified
    receipt, and whether this call appended it (a cleared period: its clearing)."""
    response = _rpc(channel, metadata, timeout)(
        _stub(market_pb2_grpc.MarketServiceStub, channel).Clear,
        market_pb2.ClearRequest(period=period),
        market_pb2.ClearResponse,
        "Clear",
    )
    clearing = convert.clearing_from_bytes(bytes(response.clearing))
    if clearing.period != period:
        raise ReceiptError(f"the service answered with the clearing of {clearing.period}")
    receipt = _appended_receipt(
        response.receipt, EntryKind.CLEARING, clearing.encode(), log_key, "clearing",
        "market clear",
    )  # fmt: skip
    return clearing, receipt, response.appended


def list_orders(
    channel: grpc.Channel,
    period: str,
    meter_id: str | None = None,
    *,
    metadata: Sequence[tuple[str, str]] = (),
    timeout: float = 30.0,
) -> list[PlacedOrder]:
    """A period's orders (one meter's, or every meter's: utility and auditor), checked."""
    response = _rpc(channel, metadata, timeout)(
        _stub(market_pb2_grpc.MarketServiceStub, channel).ListOrders,
        market_pb2.ListOrdersRequest(meter_id=meter_id or "", period=period),
        market_pb2.ListOrdersResponse,
        "ListOrders",
    )
    return _checked_orders(response, period, meter_id)


def market_result(
    channel: grpc.Channel,
    period: str,
    *,
    metadata: Sequence[tuple[str, str]] = (),
    log_key: str | CheckpointVerifier | None = None,
    timeout: float = 30.0,
) -> MarketResult:
    """A period's market day and, once cleared, its prices and volumes (and, for the
    utility and auditors, the clearing record with its receipt), checked."""
    response = _rpc(channel, metadata, timeout)(
        _stub(market_pb2_grpc.MarketServiceStub, channel).GetMarketResult,
        market_pb2.GetMarketResultRequest(period=period),
        market_pb2.GetMarketResultResponse,
        "GetMarketResult",
    )
    return _checked_result(response, period, log_key)


def list_trades(
    channel: grpc.Channel,
    period: str,
    meter_id: str | None = None,
    *,
    metadata: Sequence[tuple[str, str]] = (),
    timeout: float = 30.0,
) -> Trades:
    """A period's trades (one meter's, or all: utility and auditor), checked."""
    response = _rpc(channel, metadata, timeout)(
        _stub(market_pb2_grpc.MarketServiceStub, channel).ListTrades,
        market_pb2.ListTradesRequest(meter_id=meter_id or "", period=period),
        market_pb2.ListTradesResponse,
        "ListTrades",
    )
    return _checked_trades(response, meter_id)


# --------------------------------------------------------------------------- the meter


class MarketClient:
    """One meter in the market, over its :class:`~meter.client.MeterClient` (home, key,
    channel, pinned log key)."""

    def __init__(self, client: MeterClient) -> None:
        self.client = client
        self.meter_id = client.meter_id

    @property
    def home(self) -> MeterHome:
        return self.client.home

    def _call(self, name: str, request: object, response_type: type[_R], what: str) -> _R:
        stub = _stub(market_pb2_grpc.MarketServiceStub, self.client.channel)
        return self.client.rpc(getattr(stub, name), request, response_type, what)

    # --- enrolment --------------------------------------------------------------------

    def enrolment(self) -> MarketEnrolment:
        """The meter's enrolment: the one stored in the home, else a new one (a new
        encryption key, 0600, and the record signed with the meter's key, stored before it
        is returned, so a retry sends the same bytes)."""
        path = self.home.path / ENROLMENT_FILE
        if path.exists():
            enrolment = MarketEnrolment.decode(read_private(path, max_bytes=_MAX_FILE_BYTES))
            if enrolment.meter_id != self.meter_id:
                raise MeterHomeError(f"{path} enrols another meter")
            if enrolment.encryption_key != encryption_key(self.home).public_key:
                raise MeterHomeError(f"{path} does not enrol the key in {MARKET_KEY_FILE}")
            return enrolment
        key = encryption_key(self.home, create=True)
        enrolment = MarketEnrolment.create(self.home.key(), self.meter_id, key.public_key)
        write_new_private(path, enrolment.encode())
        return enrolment

    def enrol(self) -> tuple[MarketEnrolment, VerifiedReceipt]:
        """Enrol in the market (idempotent: the stored enrolment again returns its
        receipt); the receipt verified."""
        enrolment = self.enrolment()
        payload = enrolment.encode()
        response = self._call(
            "Enrol", market_pb2.EnrolRequest(enrolment=payload), market_pb2.EnrolResponse, "Enrol"
        )
        receipt = _appended_receipt(
            response.receipt, EntryKind.MARKET_ENROLMENT, payload, self.client.log_key,
            "enrolment", "market enrol",
        )  # fmt: skip
        return enrolment, receipt

    # --- orders -----------------------------------------------------------------------

    def order(
        self,
        side: Side,
        period: str,
        first_interval: int,
        last_interval: int,
        quantity_wh: int,
        limit_price: int,
        *,
        nonce: int | None = None,
    ) -> Order:
        """A signed order (offline): ``quantity_wh`` Wh in each interval
        ``first_interval..last_interval`` (0-based, both included) of ``period`` at
        ``limit_price`` micro-currency per Wh; a random 64-bit nonce unless given."""
        if not isinstance(side, Side):
            raise InvalidArgumentError("side must be Side.OFFER or Side.BID")
        return Order.create(
            self.home.key(),
            meter_id=self.meter_id,
            period=period,
            side=side,
            first_interval=first_interval,
            last_interval=last_interval,
            quantity_wh=quantity_wh,
            limit_price=limit_price,
            nonce=secrets.randbits(64) if nonce is None else nonce,
        )

    def submit_order(self, order: Order) -> VerifiedReceipt:
        """Submit a signed order (the identical bytes again: its original receipt); the
        receipt and the order hash the service names are checked."""
        if order.meter_id != self.meter_id:
            raise InvalidArgumentError("the order belongs to another meter")
        payload = order.encode()
        response = self._call(
            "SubmitOrder",
            market_pb2.SubmitOrderRequest(order=payload),
            market_pb2.SubmitOrderResponse,
            "SubmitOrder",
        )
        if bytes(response.order_hash) != order.order_hash():
            raise ReceiptError("the service names another order hash than the order's")
        return _appended_receipt(
            response.receipt, EntryKind.ORDER, payload, self.client.log_key, "order",
            "market orders",
        )  # fmt: skip

    def place(
        self,
        side: Side,
        period: str,
        first_interval: int,
        last_interval: int,
        quantity_wh: int,
        limit_price: int,
    ) -> tuple[Order, VerifiedReceipt]:
        """:meth:`order` then :meth:`submit_order`."""
        order = self.order(side, period, first_interval, last_interval, quantity_wh, limit_price)
        return order, self.submit_order(order)

    def cancel(self, order_hash: bytes) -> tuple[OrderCancellation, VerifiedReceipt]:
        """Cancel one of the meter's live orders (named by its hash) before gate closure."""
        if not isinstance(order_hash, bytes) or len(order_hash) != HASH_SIZE:
            raise InvalidArgumentError("an order hash is 32 bytes (64 hex digits)")
        cancellation = OrderCancellation.create(self.home.key(), self.meter_id, order_hash)
        payload = cancellation.encode()
        response = self._call(
            "CancelOrder",
            market_pb2.CancelOrderRequest(cancellation=payload),
            market_pb2.CancelOrderResponse,
            "CancelOrder",
        )
        receipt = _appended_receipt(
            response.receipt, EntryKind.ORDER_CANCELLATION, payload, self.client.log_key,
            "cancellation", "market orders",
        )  # fmt: skip
        return cancellation, receipt

    # --- reads ------------------------------------------------------------------------

    def orders(self, period: str) -> list[PlacedOrder]:
        """The meter's orders of ``period`` as the ledger holds them, checked."""
        response = self._call(
            "ListOrders",
            market_pb2.ListOrdersRequest(meter_id=self.meter_id, period=period),
            market_pb2.ListOrdersResponse,
            "ListOrders",
        )
        return _checked_orders(response, period, self.meter_id)

    def result(self, period: str) -> MarketResult:
        """The period's market day and, once cleared, each interval's price and volume."""
        response = self._call(
            "GetMarketResult",
            market_pb2.GetMarketResultRequest(period=period),
            market_pb2.GetMarketResultResponse,
            "GetMarketResult",
        )
        return _checked_result(response, period, self.client.log_key)

    def trades(self, period: str) -> Trades:
        """The meter's own trades of ``period`` (empty before the clearing), checked."""
        response = self._call(
            "ListTrades",
            market_pb2.ListTradesRequest(meter_id=self.meter_id, period=period),
            market_pb2.ListTradesResponse,
            "ListTrades",
        )
        return _checked_trades(response, self.meter_id)

    # --- delivery ---------------------------------------------------------------------

    def messages(self, period: str) -> market_pb2.GetMessagesResponse:
        """The meter's trades of ``period`` with their delivery steps (GetMessages)."""
        return self._call(
            "GetMessages",
            market_pb2.GetMessagesRequest(meter_id=self.meter_id, period=period),
            market_pb2.GetMessagesResponse,
            "GetMessages",
        )

    def deliver(
        self,
        period: str,
        *,
        peer_keys: Mapping[str, bytes] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> DeliveryReport:
        """Make every delivery step of the meter's trades of ``period`` that is possible
        now (``meter.delivery``): allocations as seller, deliveries as buyer, the
        counterparties' openings opened and kept in the opening store. Each counterparty's
        enrolment (encryption) key comes with the messages (``counterparty_encryption_key``);
        ``peer_keys`` (by meter id) takes precedence, for a meter that holds its
        counterparties' enrolment records itself. Steps not possible yet are ``waiting`` in
        the report, not errors."""
        from meter.delivery import TradeRef, TradeSteps, run_steps

        response = self.messages(period)
        if not response.cleared:
            if response.trades:
                raise ReceiptError("trades of an uncleared market")
            return DeliveryReport(period, False, ())
        clearing_hash = bytes(response.clearing_hash)
        if len(clearing_hash) != HASH_SIZE:
            raise ReceiptError("the messages name no clearing")
        keys = dict(peer_keys or {})
        trades: list[TradeRef] = []
        steps: dict[tuple[int, int], TradeSteps] = {}
        for item in response.trades:
            side = _SIDES.get(item.side)
            if side is None:
                raise ReceiptError("a trade's side is not the meter's")
            if bytes(item.trade_id) and bytes(item.trade_id) != market_trade_id(
                clearing_hash, item.interval, item.index
            ):
                raise ReceiptError("a trade's id is not its clearing's, interval's and index's")
            ref = TradeRef(
                item.interval, item.index, "seller" if side is Side.OFFER else "buyer",
                item.counterparty, item.quantity_wh,
            )  # fmt: skip
            state, allocation, delivery = _trade_steps(item)
            trades.append(ref)
            peer_key = keys.get(item.counterparty) or bytes(item.counterparty_encryption_key)
            steps[(item.interval, item.index)] = TradeSteps(
                state, allocation, delivery, peer_key or None
            )
        store = self.client.store
        outcomes = run_steps(
            meter_id=self.meter_id,
            key=self.home.key(),
            market_key=encryption_key(self.home),
            store=store,
            period=period,
            clearing_hash=clearing_hash,
            trades=trades,
            steps=steps,
            batch=store.batch(period),
            submitter=_Submitter(self),
            progress=progress,
        )
        return DeliveryReport(period, True, tuple(outcomes))


def _trade_steps(item: market_pb2.TradeMessages) -> Any:
    from meter.delivery import TradeState

    status = item.status
    if status == market_pb2.DELIVERY_STATUS_PENDING:
        state = TradeState.OPEN
    elif status == market_pb2.DELIVERY_STATUS_ALLOCATED:
        state = TradeState.ALLOCATED
    elif status == market_pb2.DELIVERY_STATUS_DELIVERED:
        state = TradeState.DELIVERED
    elif status == market_pb2.DELIVERY_STATUS_DEFAULTED:
        if item.defaulted_step == market_pb2.DELIVERY_STEP_ALLOCATION:
            state = TradeState.ALLOCATION_DEFAULTED
        elif item.defaulted_step == market_pb2.DELIVERY_STEP_DELIVERY:
            state = TradeState.DELIVERY_DEFAULTED
        else:
            raise ReceiptError("a defaulted trade names no step")
    else:
        raise ReceiptError("the service listed a trade without a delivery status")
    return state, bytes(item.allocation) or None, bytes(item.delivery) or None


class _Submitter:
    """Sends the steps through ``MarketService`` and verifies their receipts."""

    def __init__(self, market: MarketClient) -> None:
        self.market = market

    def submit_allocation(self, record: DeliveryAllocation) -> None:
        payload = record.encode()
        response = self.market._call(
            "SubmitAllocation",
            market_pb2.SubmitAllocationRequest(allocation=payload),
            market_pb2.SubmitAllocationResponse,
            "SubmitAllocation",
        )
        _appended_receipt(
            response.receipt, EntryKind.DELIVERY_ALLOCATION, payload,
            self.market.client.log_key, "allocation", "market deliver",
        )  # fmt: skip

    def submit_delivery(self, record: Delivery) -> None:
        payload = record.encode()
        response = self.market._call(
            "SubmitDelivery",
            market_pb2.SubmitDeliveryRequest(delivery=payload),
            market_pb2.SubmitDeliveryResponse,
            "SubmitDelivery",
        )
        _appended_receipt(
            response.receipt, EntryKind.DELIVERY, payload, self.market.client.log_key,
            "delivery", "market deliver",
        )  # fmt: skip


def peer_enrolment(data: bytes) -> tuple[str, bytes]:
    """A counterparty's enrolment record (its ``market.enrolment`` file): its meter id and
    encryption key (``RECORD_MALFORMED`` for bytes that are not one)."""
    enrolment = MarketEnrolment.decode(data)
    return enrolment.meter_id, enrolment.encryption_key


def parse_order_hash(text: str) -> bytes:
    """An order hash written as 64 hex digits (``INVALID_ARGUMENT`` otherwise)."""
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raw = b""
    if len(raw) != HASH_SIZE:
        raise InvalidArgumentError("an order hash is 64 hex digits (from 'zkgrid market orders')")
    return raw
