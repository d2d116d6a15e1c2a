"""Test support for the market in the service: a market day of hourly intervals, its tariff,
a mutable clock, and meters that enrol and sign orders with real keys. Not a test module."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from settlement.market import MarketDay, MarketEnrolment, Order, OrderCancellation, Side
from settlement.records import Tariff
from settlement.sealed import EncryptionKey
from tests.unit.service.settlement_support import SimMeter

#: The market's period and its hourly intervals (T = 24: fast).
PERIOD = "2024-06-02"
HOURLY = 60
#: Gate closure by default: the day before at 12:00 UTC.
GATE = datetime(2024, 6, 1, 12, tzinfo=UTC)
DAY = MarketDay.with_defaults(PERIOD, HOURLY, 25)
assert DAY.gate_closure == int(GATE.timestamp())
#: Import price and export credit per interval (micro-currency per Wh): orders must lie in
#: [credit, price] of every interval they cover; interval 18 is narrower.
IMPORT = tuple(400 if t == 18 else 300 for t in range(24))
EXPORT = tuple(150 if t == 18 else 80 for t in range(24))
TARIFF = Tariff(PERIOD, HOURLY, "EUR", 0, IMPORT, EXPORT)

_NONCES = itertools.count(1)


class Clock:
    """The service's injected clock: a moment that tests move on."""

    def __init__(self, start: datetime = GATE - timedelta(hours=4)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def at(self, moment: datetime) -> None:
        self.now = moment


@dataclass
class Trader:
    """A simulated meter that trades: its signing key (SimMeter's) and its ECDH key."""

    meter: SimMeter
    encryption: EncryptionKey = field(default_factory=EncryptionKey.generate)

    @property
    def meter_id(self) -> str:
        return self.meter.meter_id

    def enrolment(self) -> MarketEnrolment:
        return MarketEnrolment.create(self.meter.key, self.meter_id, self.encryption.public_key)

    def order(
        self,
        side: Side,
        first: int,
        last: int,
        quantity: int,
        price: int,
        *,
        period: str = PERIOD,
    ) -> Order:
        return Order.create(
            self.meter.key,
            meter_id=self.meter_id,
            period=period,
            side=side,
            first_interval=first,
            last_interval=last,
            quantity_wh=quantity,
            limit_price=price,
            nonce=next(_NONCES),
        )

    def offer(self, first: int, last: int, quantity: int, price: int) -> Order:
        return self.order(Side.OFFER, first, last, quantity, price)

    def bid(self, first: int, last: int, quantity: int, price: int) -> Order:
        return self.order(Side.BID, first, last, quantity, price)

    def cancel(self, order: Order) -> OrderCancellation:
        return OrderCancellation.create(self.meter.key, self.meter_id, order.order_hash())


def traders(*names: str) -> list[Trader]:
    return [Trader(SimMeter(name, HOURLY)) for name in names]
