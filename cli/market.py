"""``zkgrid market``: the neighbourhood market (docs/design/market-v1.md) from the command line.

::

    zkgrid market enrol    [--id METER | --home DIR]                        (a meter)
    zkgrid market day publish --period DAY [--interval-minutes 15] [--gate-closure TIME]
                           [--seller-deadline TIME] [--buyer-deadline TIME]
                           [--credit-rate PRICE]                            (the utility)
    zkgrid market offer    --period DAY --intervals FIRST[-LAST] --quantity KWH [--wh]
                           --price PRICE [--id METER | --home DIR]          (a meter)
    zkgrid market bid      (as offer)
    zkgrid market cancel   --order HASH [--id METER | --home DIR]           (a meter)
    zkgrid market orders   --period DAY [--as meter|utility|auditor] [--meter METER]
    zkgrid market result   --period DAY [--as meter|utility|auditor]
    zkgrid market trades   --period DAY [--as meter|utility|auditor] [--meter METER]
    zkgrid market clear    --period DAY                                     (the utility)
    zkgrid market deliver  --period DAY [--id METER | --home DIR]           (a meter)

Every command takes the connection flags (``--target``, ``--ca``/``--cert``/``--key`` or
``--insecure``, ``--timeout``; defaults from ``ZKGRID_TARGET``, ``ZKGRID_CA``, ...) and
``--log-key-file`` to check receipts against the log's pinned key, and ``--json`` for
machine-readable output. A meter's commands use its home (``--id`` or ``--home``, as
``zkgrid meter``): its signing key signs the enrolment, orders and cancellations, and
``enrol`` keeps a new encryption key beside it (``market.key``, mode 0600).

Units as in the tariff files (:mod:`settlement.tariff_files`): prices in currency per kWh,
exact to 0.001 (``0.125``: 125 micro-currency per Wh; ``0.1255`` is refused, never
rounded), quantities in kWh exact to the Wh (``1.5``; with ``--wh`` an integer number of
Wh). An order is for ``--quantity`` in each interval ``FIRST..LAST`` (0-based, both
included: with 15-minute intervals, interval 40 starts at 10:00 UTC) of the period, at
the limit ``--price``: an offer's lowest, a bid's highest. Times (``--gate-closure``, the
deadlines) are ISO 8601 with a zone (``2026-12-01T12:00:00Z``); by default gate closure is
12:00 UTC the day before, the seller's deadline the end of the next day and the buyer's
the end of the day after.

The clearing runs when the utility asks for it, at or after gate closure
(``zkgrid market clear``, from its scheduler; the service has no periodic jobs): it is
the recomputation of the ledger's live orders, and a cleared period answers with its
clearing again. ``result`` shows each interval's price and volume (public); ``orders`` and
``trades`` show a meter its own only, the utility and auditors anyone's (every meter's
without ``--meter``).

Exit status: 0 done; 1 refused by the service (for example ``GATE_CLOSED``,
``PRICE_OUT_OF_BOUNDS``, ``SELF_TRADE``, ``SIGNATURE_INVALID``) or an answer that does not
verify; 2 could not run (usage, a price or quantity that is not exact, the meter home, the
service unreachable).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from zkgrid._internal.cliargs import (
    EXIT_STATUS,
    OneLineParser,
    UsageError,
    add_connection_arguments,
    add_env_argument,
    add_strict_argument,
    check_pinned,
    parse_command_line,
)
from zkgrid.errors import ZkgridError

if TYPE_CHECKING:  # pragma: no cover - imported where used: `--help` loads no grpc
    import grpc

    from ledger.checkpoint import CheckpointVerifier
    from meter.client import VerifiedReceipt
    from meter.market import MarketClient, MarketResult, PlacedOrder, Trades
    from settlement.market import MarketDay
    from zkgrid._internal.channels import Metadata

__all__ = ["main"]

PROG = "zkgrid market"
EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2
#: Bound of a ``--log-key-file`` read (one short line).
MAX_LOG_KEY_FILE_BYTES = 1 << 16
ROLES = ("meter", "utility", "auditor")


# --------------------------------------------------------------------------- arguments


def _connection(p: argparse.ArgumentParser) -> None:
    add_connection_arguments(p)
    add_env_argument(
        p, "--log-key-file", setting="log_key_file", metavar="FILE",
        help="the log's verifier key: receipts are checked",
    )  # fmt: skip
    add_strict_argument(p)
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")


def _home_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--id", dest="meter_id", metavar="METER", help="meter id (its default home)")
    p.add_argument("--home", type=Path, metavar="DIR", help="meter home directory")


def _period(p: argparse.ArgumentParser) -> None:
    p.add_argument("--period", required=True, metavar="YYYY-MM-DD", help="the market's UTC day")


def _order_flags(p: argparse.ArgumentParser) -> None:
    _period(p)
    p.add_argument(
        "--intervals",
        required=True,
        metavar="FIRST[-LAST]",
        help="the intervals of the day, 0-based, both included (e.g. 40-43)",
    )
    p.add_argument(
        "--quantity", required=True, metavar="KWH", help="energy per interval, kWh (exact to Wh)"
    )
    p.add_argument("--wh", action="store_true", help="--quantity is in Wh (an integer)")
    p.add_argument(
        "--price",
        required=True,
        metavar="PRICE",
        help="limit price, currency per kWh (exact to 0.001): an offer's lowest, a bid's highest",
    )
    _home_flags(p)
    _connection(p)


def _reader_flags(p: argparse.ArgumentParser, *, meter: bool) -> None:
    _period(p)
    p.add_argument(
        "--as",
        dest="role",
        choices=ROLES,
        default="meter",
        help="whose view: a meter (its home; the default), the utility or an auditor",
    )
    if meter:
        p.add_argument(
            "--meter",
            metavar="METER",
            help="(utility, auditor) one meter's; every meter's without it",
        )
    _home_flags(p)
    _connection(p)


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=PROG,
        description="The neighbourhood market: enrol, offer and bid, cancel, see the orders,"
        " the results and the trades; the utility publishes market days and clears them.",
        epilog=EXIT_STATUS,
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    enrol = sub.add_parser(
        "enrol",
        help="enrol the meter in the market (a new encryption key in its home)",
        description="Enrol the meter: a new ECDH P-256 encryption key is kept in the meter"
        " home (market.key, mode 0600; back it up with meter.key) and the enrolment, signed"
        " with the meter's key, is sent. Running it again sends the same enrolment (its"
        " receipt).",
    )
    _home_flags(enrol)
    _connection(enrol)
    day = sub.add_parser("day", help="market days (the utility)")
    day_sub = day.add_subparsers(dest="day_command", required=True, parser_class=OneLineParser)
    publish = day_sub.add_parser(
        "publish",
        help="open the market of a period (utility role)",
        description="Publish a period's market day: its intervals (the meters' interval),"
        " gate closure, the delivery deadlines and the local delivery credit.",
    )
    _period(publish)
    publish.add_argument(
        "--interval-minutes", type=int, default=15, help="the traded interval (default 15)"
    )
    publish.add_argument(
        "--gate-closure", metavar="TIME", help="ISO 8601 with zone (default: D-1 12:00 UTC)"
    )
    publish.add_argument(
        "--seller-deadline", metavar="TIME", help="ISO 8601 (default: the end of D+1)"
    )
    publish.add_argument(
        "--buyer-deadline", metavar="TIME", help="ISO 8601 (default: the end of D+2)"
    )
    publish.add_argument(
        "--credit-rate",
        default="0",
        metavar="PRICE",
        help="credit per kWh delivered locally, currency per kWh (default 0)",
    )
    _connection(publish)
    _order_flags(sub.add_parser("offer", help="offer (sell) energy in intervals of a period"))
    _order_flags(sub.add_parser("bid", help="bid for (buy) energy in intervals of a period"))
    cancel = sub.add_parser("cancel", help="cancel one of the meter's orders before the gate")
    cancel.add_argument("--order", required=True, metavar="HASH", help="the order's hash (hex)")
    _home_flags(cancel)
    _connection(cancel)
    _reader_flags(sub.add_parser("orders", help="the orders of a period"), meter=True)
    _reader_flags(
        sub.add_parser("result", help="each interval's price and volume (public)"), meter=False
    )
    _reader_flags(sub.add_parser("trades", help="the trades of a cleared period"), meter=True)
    deliver = sub.add_parser(
        "deliver",
        help="make the meter's delivery steps of a cleared period (after its batch)",
        description="Settle the meter's trades of a period against its committed readings:"
        " as seller, prove and send its allocation (the opening sealed to the buyer); as"
        " buyer, open the seller's allocation, prove and send the delivered energy (sealed"
        " to the seller). Steps whose inputs are not on the ledger yet (the meter's batch,"
        " the counterparty's step, an earlier trade of the interval) wait; run it again"
        " later. Exit 0 when nothing was refused, 1 when a step was refused.",
    )
    _period(deliver)
    _home_flags(deliver)
    _connection(deliver)
    clear = sub.add_parser(
        "clear",
        help="clear a period after its gate closure (utility role)",
        description="Clear a period: the service computes the clearing from the ledger's"
        " live orders and appends it (at or after gate closure). A cleared period answers"
        " with its clearing. Normally run by the utility's scheduler after gate closure.",
    )
    _period(clear)
    _connection(clear)
    return p


# --------------------------------------------------------------------------- conversions


def _wh(args: argparse.Namespace) -> int:
    """``--quantity`` in Wh: kWh converted exactly (as the tariff files), or Wh with --wh."""
    from settlement.tariff_files import TariffFileError, energy_from_text

    if not args.wh:
        try:
            return energy_from_text(args.quantity, "--quantity")
        except TariffFileError as exc:
            raise UsageError(str(exc)) from None
    try:
        value = Decimal(args.quantity.strip())
    except InvalidOperation:
        raise UsageError(f"--quantity {args.quantity!r} is not a number of Wh") from None
    if not value.is_finite() or value != value.to_integral_value() or value < 0:
        raise UsageError(f"--quantity {args.quantity!r}: with --wh, a whole number of Wh")
    return int(value)


def _rate(text: str, flag: str) -> int:
    """A price in currency per kWh -> micro-currency per Wh, exactly (else a usage error)."""
    from settlement.tariff_files import TariffFileError, rate_from_text

    try:
        return rate_from_text(text, flag)
    except TariffFileError as exc:
        raise UsageError(str(exc)) from None


def _intervals(text: str) -> tuple[int, int]:
    first, sep, last = text.partition("-")
    try:
        a = int(first, 10)
        b = int(last, 10) if sep else a
    except ValueError:
        raise UsageError(f"--intervals {text!r}: FIRST or FIRST-LAST, 0-based numbers") from None
    if a < 0 or b < a:
        raise UsageError(f"--intervals {text!r}: 0 <= FIRST <= LAST")
    return a, b


def _time(text: str | None, flag: str) -> int | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag} {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise UsageError(f"{flag} {text!r} needs a zone (Z or +HH:MM)")
    if moment.microsecond:
        raise UsageError(f"{flag} {text!r}: whole seconds")
    return int(moment.timestamp())


def _span(first: int, last: int) -> str:
    return f"interval {first}" if first == last else f"intervals {first}-{last}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _utc(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _start(t: int, minutes: int) -> str:
    return f"{t * minutes // 60:02d}:{t * minutes % 60:02d}"


# --------------------------------------------------------------------------- connections


def _log_key(args: argparse.Namespace) -> CheckpointVerifier | None:
    """The pinned log key, read once per command; none pinned is refused under --strict
    (the default outside --insecure) and warned about otherwise."""
    if hasattr(args, "pinned"):
        pinned: CheckpointVerifier | None = args.pinned
        return pinned
    from ledger.checkpoint import parse_verifier_key
    from zkgrid._internal.files import read_file

    check_pinned(bool(args.log_key_file), strict=args.strict, insecure=args.insecure, prog=PROG)
    key = None
    if args.log_key_file:
        raw = read_file(args.log_key_file, max_bytes=MAX_LOG_KEY_FILE_BYTES)
        key = parse_verifier_key(raw.decode("utf-8", "replace").strip())
    args.pinned = key
    return key


def _party(args: argparse.Namespace, role: str) -> tuple[grpc.Channel, Metadata]:
    """A channel as the utility or an auditor (its certificate, or dev metadata)."""
    from meter.client import make_channel
    from zkgrid._internal.channels import dev_metadata

    if not args.insecure and not (args.ca and args.cert and args.key):
        raise UsageError("--target needs --ca, --cert and --key (or --insecure for a dev server)")
    channel = make_channel(
        args.target, insecure=args.insecure, ca=args.ca, cert=args.cert, key=args.key, role=role
    )
    return channel, dev_metadata(role) if args.insecure else ()


def _meter(args: argparse.Namespace) -> MarketClient:
    from meter.client import MeterClient
    from meter.home import MeterHome, default_home
    from meter.market import MarketClient

    path = Path(args.home).expanduser() if args.home is not None else default_home(args.meter_id)
    home = MeterHome.load(path)
    if args.meter_id is not None and args.meter_id != home.meter_id:
        raise UsageError(f"{home.path} holds meter {home.meter_id}, not {args.meter_id}")
    if not args.insecure and not (args.ca and args.cert and args.key):
        raise UsageError("--target needs --ca, --cert and --key (or --insecure for a dev server)")
    client = MeterClient(
        home,
        target=args.target,
        insecure=args.insecure,
        ca=args.ca,
        cert=args.cert,
        key=args.key,
        log_key=_log_key(args),
        timeout=args.timeout,
    )
    return MarketClient(client)


def _receipt(receipt: VerifiedReceipt) -> dict[str, Any]:
    return {
        "ledger_index": receipt.ledger_index,
        "leaf_hash": receipt.leaf_hash.hex(),
        "tree_size": receipt.tree_size,
        "root_hash": receipt.root_hash.hex(),
        "signature_verified": receipt.signature_verified,
    }


def _receipt_text(receipt: VerifiedReceipt) -> str:
    signed = "signature verified" if receipt.signature_verified else "signature not checked"
    return f"ledger index {receipt.ledger_index} ({signed})"


def _emit(args: argparse.Namespace, out: TextIO, doc: dict[str, Any], lines: list[str]) -> int:
    if args.json:
        out.write(json.dumps(doc, indent=2) + "\n")
    else:
        out.write("".join(f"{line}\n" for line in lines))
    return 0


# --------------------------------------------------------------------------- commands


def _enrol(args: argparse.Namespace, out: TextIO) -> int:
    market = _meter(args)
    try:
        enrolment, receipt = market.enrol()
    finally:
        market.client.close()
    doc = {
        "meter_id": enrolment.meter_id,
        "encryption_key": enrolment.encryption_key.hex(),
        "receipt": _receipt(receipt),
    }
    line = (
        f"enrolled meter {enrolment.meter_id} in the market (encryption key"
        f" {enrolment.encryption_key.hex()[:16]}..., kept in {market.home.path / 'market.key'}):"
        f" {_receipt_text(receipt)}"
    )
    return _emit(args, out, doc, [line])


def _describe_day(day: MarketDay) -> dict[str, Any]:
    from settlement.tariff_files import rate_to_text

    return {
        "period": day.period,
        "interval_minutes": day.interval_minutes,
        "intervals": day.intervals,
        "gate_closure": day.gate_closure,
        "gate_closure_utc": _utc(day.gate_closure),
        "seller_deadline": day.seller_deadline,
        "buyer_deadline": day.buyer_deadline,
        "credit_rate": day.credit_rate,
        "credit_rate_per_kwh": rate_to_text(day.credit_rate),
    }


def _day_publish(args: argparse.Namespace, out: TextIO) -> int:
    from meter.market import publish_market_day
    from settlement.market import MarketDay

    credit = _rate(args.credit_rate, "--credit-rate")
    day = MarketDay.with_defaults(args.period, args.interval_minutes, credit)
    gate = _time(args.gate_closure, "--gate-closure")
    seller = _time(args.seller_deadline, "--seller-deadline")
    buyer = _time(args.buyer_deadline, "--buyer-deadline")
    day = MarketDay(
        day.period,
        day.interval_minutes,
        day.gate_closure if gate is None else gate,
        day.seller_deadline if seller is None else seller,
        day.buyer_deadline if buyer is None else buyer,
        day.credit_rate,
    )
    log_key = _log_key(args)
    channel, metadata = _party(args, "utility")
    try:
        receipt = publish_market_day(
            channel, day, metadata=metadata, log_key=log_key, timeout=args.timeout
        )
    finally:
        channel.close()
    doc = {**_describe_day(day), "receipt": _receipt(receipt)}
    line = (
        f"market day {day.period}: {day.intervals} intervals of {day.interval_minutes} min,"
        f" gate closure {_utc(day.gate_closure)}, credit {doc['credit_rate_per_kwh']}/kWh:"
        f" {_receipt_text(receipt)}"
    )
    return _emit(args, out, doc, [line])


def _order_doc(order: Any) -> dict[str, Any]:
    from settlement.tariff_files import energy_to_text, rate_to_text

    return {
        "order_hash": order.order_hash().hex(),
        "meter_id": order.meter_id,
        "period": order.period,
        "side": order.side.name.lower(),
        "first_interval": order.first_interval,
        "last_interval": order.last_interval,
        "quantity_wh": order.quantity_wh,
        "quantity_kwh": energy_to_text(order.quantity_wh),
        "limit_price": order.limit_price,
        "limit_price_per_kwh": rate_to_text(order.limit_price),
        "nonce": order.nonce,
    }


def _order(args: argparse.Namespace, out: TextIO) -> int:
    from settlement.market import Side

    side = Side.OFFER if args.command == "offer" else Side.BID
    first, last = _intervals(args.intervals)
    quantity = _wh(args)
    price = _rate(args.price, "--price")
    market = _meter(args)
    try:
        order = market.order(side, args.period, first, last, quantity, price)  # offline
        receipt = market.submit_order(order)
    finally:
        market.client.close()
    doc = {**_order_doc(order), "receipt": _receipt(receipt)}
    span = _span(first, last)
    verb = "offered" if side is Side.OFFER else "bid for"
    line = (
        f"{order.meter_id} {verb} {doc['quantity_kwh']} kWh in {span} of {order.period} at"
        f" {doc['limit_price_per_kwh']}/kWh: order {doc['order_hash']}, {_receipt_text(receipt)}"
    )
    return _emit(args, out, doc, [line])


def _cancel(args: argparse.Namespace, out: TextIO) -> int:
    from meter.market import parse_order_hash

    order_hash = parse_order_hash(args.order)
    market = _meter(args)
    try:
        cancellation, receipt = market.cancel(order_hash)
    finally:
        market.client.close()
    doc = {
        "meter_id": cancellation.meter_id,
        "order_hash": order_hash.hex(),
        "receipt": _receipt(receipt),
    }
    line = f"cancelled order {order_hash.hex()}: {_receipt_text(receipt)}"
    return _emit(args, out, doc, [line])


def _reader(args: argparse.Namespace) -> tuple[MarketClient | None, Any, Metadata]:
    """The meter's client (``--as meter``), or a channel as the utility or an auditor."""
    if args.role == "meter":
        if getattr(args, "meter", None) is not None:
            raise UsageError("--meter is for --as utility or auditor (a meter reads its own)")
        return _meter(args), None, ()
    if args.meter_id is not None or args.home is not None:
        raise UsageError("--id and --home are a meter's (--as meter); use --meter METER")
    _log_key(args)
    channel, metadata = _party(args, args.role)
    return None, channel, metadata


def _orders(args: argparse.Namespace, out: TextIO) -> int:
    from meter.market import list_orders

    market, channel, metadata = _reader(args)
    try:
        if market is not None:
            placed = market.orders(args.period)
        else:
            placed = list_orders(
                channel, args.period, args.meter, metadata=metadata, timeout=args.timeout
            )
    finally:
        (market.client if market is not None else channel).close()
    return _emit(args, out, _orders_doc(args.period, placed), _orders_lines(args.period, placed))


def _orders_doc(period: str, placed: list[PlacedOrder]) -> dict[str, Any]:
    return {
        "period": period,
        "orders": [
            {
                **_order_doc(p.order),
                "status": p.status,
                "ledger_index": p.ledger_index,
                "cancellation_index": p.cancellation_index,
            }
            for p in placed
        ],
    }


def _orders_lines(period: str, placed: list[PlacedOrder]) -> list[str]:
    if not placed:
        return [f"no orders for {period}"]
    lines = [f"orders for {period}:"]
    for p in placed:
        doc = _order_doc(p.order)
        lines.append(
            f"  {doc['order_hash']}  {p.order.meter_id}  {doc['side']:<5}"
            f"  {_span(p.order.first_interval, p.order.last_interval):<15}"
            f"  {doc['quantity_kwh']} kWh at {doc['limit_price_per_kwh']}/kWh  {p.status}"
            f" (ledger index {p.ledger_index})"
        )
    return lines


def _result(args: argparse.Namespace, out: TextIO) -> int:
    from meter.market import market_result

    market, channel, metadata = _reader(args)
    try:
        if market is not None:
            result = market.result(args.period)
        else:
            result = market_result(
                channel, args.period, metadata=metadata, log_key=_log_key(args),
                timeout=args.timeout,
            )  # fmt: skip
    finally:
        (market.client if market is not None else channel).close()
    return _emit(args, out, _result_doc(result), _result_lines(result))


def _result_doc(result: MarketResult) -> dict[str, Any]:
    from settlement.tariff_files import energy_to_text, rate_to_text

    doc: dict[str, Any] = {**_describe_day(result.day), "cleared": result.cleared}
    if result.intervals is not None:
        doc["results"] = [
            {
                "interval": t,
                "start": _start(t, result.day.interval_minutes),
                "price": price,
                "price_per_kwh": rate_to_text(price),
                "volume_wh": volume,
                "volume_kwh": energy_to_text(volume),
            }
            for t, (price, volume) in enumerate(result.intervals)
        ]
    if result.clearing is not None and result.receipt is not None:
        doc["clearing_hash"] = result.clearing.clearing_hash().hex()
        doc["receipt"] = _receipt(result.receipt)
    return doc


def _result_lines(result: MarketResult) -> list[str]:
    from settlement.tariff_files import energy_to_text, rate_to_text

    day = result.day
    state = "cleared" if result.cleared else "not cleared yet"
    lines = [
        f"market of {day.period}: {day.intervals} intervals of {day.interval_minutes} min,"
        f" gate closure {_utc(day.gate_closure)}; {state}"
    ]
    for t, (price, volume) in enumerate(result.intervals or ()):
        if volume:
            lines.append(
                f"  {_start(t, day.interval_minutes)}  price {rate_to_text(price)}/kWh"
                f"  volume {energy_to_text(volume)} kWh"
            )
    if result.cleared and len(lines) == 1:
        lines.append("  no trades: no offer met a bid")
    if result.receipt is not None:
        lines.append(f"  clearing: {_receipt_text(result.receipt)}")
    return lines


def _trades(args: argparse.Namespace, out: TextIO) -> int:
    from meter.market import list_trades

    market, channel, metadata = _reader(args)
    try:
        if market is not None:
            found = market.trades(args.period)
            meter_id: str | None = market.meter_id
        else:
            meter_id = args.meter
            found = list_trades(
                channel, args.period, meter_id, metadata=metadata, timeout=args.timeout
            )
    finally:
        (market.client if market is not None else channel).close()
    return _emit(
        args, out, _trades_doc(args.period, found), _trades_lines(args.period, meter_id, found)
    )


def _trades_doc(period: str, found: Trades) -> dict[str, Any]:
    from settlement.tariff_files import energy_to_text, rate_to_text

    return {
        "period": period,
        "cleared": found.cleared,
        "clearing_hash": found.clearing_hash.hex() if found.clearing_hash else None,
        "trades": [
            {
                "interval": t.interval,
                "index": t.index,
                "side": None if t.side is None else t.side.name.lower(),
                "counterparty": t.counterparty,
                "seller": t.seller,
                "buyer": t.buyer,
                "quantity_wh": t.quantity_wh,
                "quantity_kwh": energy_to_text(t.quantity_wh),
                "price": t.price,
                "price_per_kwh": rate_to_text(t.price),
            }
            for t in found.trades
        ],
    }


def _trades_lines(period: str, meter_id: str | None, found: Trades) -> list[str]:
    from settlement.tariff_files import energy_to_text, rate_to_text

    if not found.cleared:
        return [f"the market of {period} is not cleared yet"]
    who = meter_id or "every meter"
    if not found.trades:
        return [f"no trades for {who} on {period}"]
    lines = [f"trades of {who} on {period}:"]
    for t in found.trades:
        what = f"{energy_to_text(t.quantity_wh)} kWh at {rate_to_text(t.price)}/kWh"
        if meter_id is None:
            deal = f"{t.seller} sold {what} to {t.buyer}"
        elif t.seller == meter_id:
            deal = f"sold {what} to {t.buyer}"
        else:
            deal = f"bought {what} from {t.seller}"
        lines.append(f"  interval {t.interval} #{t.index}  {deal}")
    return lines


def _clear(args: argparse.Namespace, out: TextIO) -> int:
    from meter.market import clear_market

    log_key = _log_key(args)
    channel, metadata = _party(args, "utility")
    try:
        clearing, receipt, appended = clear_market(
            channel, args.period, metadata=metadata, log_key=log_key, timeout=args.timeout
        )
    finally:
        channel.close()
    volume = sum(r.volume for r in clearing.intervals)
    trades = sum(len(r.trades) for r in clearing.intervals)
    doc = {
        "period": clearing.period,
        "appended": appended,
        "clearing_hash": clearing.clearing_hash().hex(),
        "trades": trades,
        "volume_wh": volume,
        "receipt": _receipt(receipt),
    }
    verb = "cleared" if appended else "already cleared"
    line = (
        f"{verb} {clearing.period}: {_plural(trades, 'trade')}, {volume} Wh matched:"
        f" {_receipt_text(receipt)}"
    )
    return _emit(args, out, doc, [line])


def _deliver(args: argparse.Namespace, out: TextIO) -> int:
    market = _meter(args)
    err = sys.stderr
    started = time.monotonic()

    def progress(line: str) -> None:
        if err.isatty() and time.monotonic() - started > 2:
            err.write(f"{PROG}: {line}\n")

    try:
        report = market.deliver(args.period, progress=progress)
    finally:
        market.client.close()
    outcomes = [
        {
            "interval": o.trade.interval,
            "index": o.trade.index,
            "role": o.trade.side,
            "counterparty": o.trade.counterparty,
            "status": o.status,
            "detail": o.detail,
            "delivered_wh": o.delivered_wh,
            **({"reason": o.reason} if o.reason else {}),
        }
        for o in report.outcomes
    ]
    doc = {"period": report.period, "cleared": report.cleared, "trades": outcomes}
    if not report.cleared:
        lines = [f"{report.period}: the market is not cleared yet: nothing to deliver"]
    else:
        lines = [
            f"interval {o['interval']} trade {o['index']} ({o['role']}, with"
            f" {o['counterparty']}): {o['status']}"
            + (f", {o['delivered_wh']} Wh delivered" if o["delivered_wh"] is not None else "")
            + (f": {o['detail']}" if o["detail"] else "")
            for o in outcomes
        ] or [f"{report.period}: the meter has no trades"]
    status = _emit(args, out, doc, lines)
    return EXIT_REFUSED if report.refused else status


_COMMANDS = {
    "enrol": _enrol,
    "offer": _order,
    "bid": _order,
    "cancel": _cancel,
    "orders": _orders,
    "result": _result,
    "trades": _trades,
    "clear": _clear,
    "deliver": _deliver,
}


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run ``zkgrid market`` with ``argv``; return the exit status."""
    args = parse_command_line(_parser(), argv, PROG)
    if isinstance(args, int):
        return args
    stdout = out if out is not None else sys.stdout
    command = _day_publish if args.command == "day" else _COMMANDS[args.command]
    try:
        return command(args, stdout)
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ZkgridError as exc:
        from meter.cli import report_error

        return report_error(exc, sys.stderr, PROG)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        print(f"{PROG}: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    raise SystemExit(main())
