"""``zkgrid tariff``: the utility publishes a period's tariff or a billing cycle's plan;
anyone reads it back.

::

    zkgrid tariff publish --period DAY --file tariff.csv --currency EUR [--fixed-charge 0.35]
                          --target HOST:PORT (TLS | --insecure) [--log-key-file FILE] [--json]
    zkgrid tariff publish --period DAY --file tariff.json ...     (currency and charge inside)
    zkgrid tariff publish --file plan.json [--currency EUR] [--fixed-charge 9.00] ...
                                              (a cycle tariff: plan, cycle, tiers, demand)
    zkgrid tariff show --period DAY --target HOST:PORT (TLS | --insecure)
                       [--log-key-file FILE] [--json]
    zkgrid tariff show --period DAY --meter METER ...   (the plan billing METER's cycle)

The file formats (CSV and JSON, prices in currency per kWh, exact to 0.001) are
described in :mod:`settlement.tariff_files`. A JSON file with any of the fields of a
cycle tariff (``plan``, ``meters``, ``month``, ``cycle``, ``tiers``,
``demand_charge_per_kw``: :data:`settlement.tariff_files.CYCLE_FIELDS`) is a cycle tariff
(records version 2: a plan over a billing cycle of up to 31 days); it is published with
``PublishCycleTariff``, takes no ``--period`` (its cycle is in the file) and takes
``--currency`` and ``--fixed-charge`` (per cycle) only when the file does not give them.
``show --meter`` reads the plan that applies to a meter on a day (``GetCycleTariff``).

TLS is ``--ca F --cert F --key F``
(a utility certificate to publish); ``--insecure`` is plaintext to a loopback
development server. With ``--log-key-file`` the receipt's checkpoint signature is
checked against the pinned log key; without it, the inclusion proof alone is
checked and the output says so.

Publishing the identical tariff again returns its original receipt; another tariff
for a period that has one is refused (``TARIFF_EXISTS``), as is a plan whose cycle
overlaps a published plan of the same name or listing one of its meters (or, for a
default plan, another default plan).

Exit status: 0 done, 1 refused by the service (or a receipt that does not verify),
2 could not run (usage, the file, the connection).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    from settlement.records import CycleTariff, Tariff
    from zkgrid._internal.channels import Metadata

__all__ = ["main"]

PROG = "zkgrid tariff"
#: Bound of a ``--log-key-file`` read (one short line).
MAX_LOG_KEY_FILE_BYTES = 1 << 16
#: gRPC status codes that mean the service refused (exit 1), not that it could not be asked.
_REFUSALS = frozenset(
    {
        "INVALID_ARGUMENT",
        "ALREADY_EXISTS",
        "NOT_FOUND",
        "FAILED_PRECONDITION",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
    }
)


class _Refused(Exception):
    """The service refused: exit 1."""


class _Unreachable(Exception):
    """The service could not be asked: exit 2."""


def _connection_flags(p: argparse.ArgumentParser) -> None:
    # Defaults from ZKGRID_TARGET, _CA, _CERT, _KEY, _LOG_KEY_FILE (zkgrid._internal.cliargs).
    add_connection_arguments(p)
    add_env_argument(
        p, "--log-key-file", setting="log_key_file", metavar="FILE",
        help="the log's verifier key: receipts are checked",
    )  # fmt: skip
    add_strict_argument(p)
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=PROG,
        description="Publish and read a period's tariff, or a billing cycle's plan.",
        epilog=EXIT_STATUS,
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    publish = sub.add_parser(
        "publish",
        help="publish a period's tariff or a billing cycle's plan (utility role)",
        description="Publish a day's tariff (a CSV file, or a JSON file with its currency and"
        " fixed charge; --period names the day) or a billing cycle's plan (a JSON file with"
        " 'plan' and its cycle, tiers, demand charge: its cycle is in the file, no --period;"
        " --currency and --fixed-charge, per cycle, only when the file lacks them).",
    )
    publish.add_argument(
        "--period", metavar="YYYY-MM-DD", help="the UTC day (a day's tariff; not with a plan)"
    )
    publish.add_argument(
        "--file",
        required=True,
        metavar="FILE",
        help="tariff.csv or tariff.json (by extension); a JSON plan of a billing cycle is"
        " told by its fields",
    )
    publish.add_argument(
        "--currency", metavar="CODE", help="ISO 4217 code (CSV files, or a plan without one)"
    )
    publish.add_argument(
        "--fixed-charge",
        metavar="AMOUNT",
        help="fixed charge in currency (CSV files, default 0; or per cycle, for a plan"
        " without one)",
    )
    _connection_flags(publish)
    show = sub.add_parser(
        "show",
        help="the period's tariff (or, with --meter, the plan billing the meter's cycle)",
    )
    show.add_argument("--period", required=True, metavar="YYYY-MM-DD", help="the UTC day")
    show.add_argument(
        "--meter",
        metavar="METER",
        help="the billing cycle's plan that applies to this meter on --period",
    )
    _connection_flags(show)
    return p


def _read_small(path: str, limit: int) -> str:
    from zkgrid._internal.files import read_file

    try:
        return read_file(path, max_bytes=limit).decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text") from None


def is_cycle_tariff_text(text: str) -> bool:
    """Whether a JSON tariff file's text is a cycle tariff: an object with any of the fields
    only a cycle tariff has (:data:`settlement.tariff_files.CYCLE_FIELDS`). Text that is not
    a JSON object is not (the day's parser then names what is wrong)."""
    from settlement.tariff_files import CYCLE_FIELDS

    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and bool(CYCLE_FIELDS & set(doc))


def _tariff_from_file(args: argparse.Namespace) -> Tariff | CycleTariff:
    from settlement.tariff_files import (
        MAX_TARIFF_FILE_BYTES,
        TariffFileError,
        cycle_tariff_from_json,
        money_from_text,
        parse_tariff_csv,
        parse_tariff_json,
    )

    suffix = Path(args.file).suffix.lower()
    if suffix not in (".csv", ".json"):
        raise UsageError("--file must end in .csv or .json (the format is read from it)")
    text = _read_small(args.file, MAX_TARIFF_FILE_BYTES)
    try:
        if suffix == ".json" and is_cycle_tariff_text(text):
            if args.period is not None:
                raise UsageError(
                    f"{args.file} is a billing cycle's plan: its cycle is in the file"
                    " (\"month\" or \"cycle\"), so --period does not apply"
                )
            fixed_charge = None
            if args.fixed_charge is not None:
                fixed_charge = money_from_text(args.fixed_charge, "--fixed-charge")
            return cycle_tariff_from_json(
                text, currency=args.currency, fixed_charge=fixed_charge
            )
        if args.period is None:
            raise UsageError("a day's tariff needs --period (the UTC day, YYYY-MM-DD)")
        if suffix == ".json":
            if args.currency is not None or args.fixed_charge is not None:
                raise UsageError("a JSON tariff holds its currency and fixed charge itself")
            rates = parse_tariff_json(text)
            currency, fixed = rates.currency or "", rates.fixed_charge or 0
        else:
            if args.currency is None:
                raise UsageError("a CSV tariff needs --currency (e.g. --currency EUR)")
            rates = parse_tariff_csv(text, args.period)
            currency = args.currency
            fixed = money_from_text(args.fixed_charge or "0", "--fixed-charge")
        return rates.tariff(args.period, currency=currency, fixed_charge=fixed)
    except TariffFileError as exc:
        raise TariffFileError(f"{args.file}: {exc}") from None


def _log_key(args: argparse.Namespace) -> CheckpointVerifier | None:
    from ledger.checkpoint import parse_verifier_key

    check_pinned(
        bool(args.log_key_file), strict=args.strict, insecure=args.insecure, prog=PROG
    )
    if not args.log_key_file:
        return None
    return parse_verifier_key(_read_small(args.log_key_file, MAX_LOG_KEY_FILE_BYTES).strip())


def _open(args: argparse.Namespace, role: str) -> tuple[grpc.Channel, Metadata]:
    from zkgrid._internal.channels import TlsMaterial, client_channel, dev_metadata

    if args.insecure:
        return client_channel(args.target, insecure=True), dev_metadata(role)
    if not (args.ca and args.cert and args.key):
        raise UsageError("--target needs --ca, --cert and --key (or --insecure for a dev server)")
    tls = TlsMaterial.from_files(args.ca, args.cert, args.key, role=role)
    return client_channel(args.target, tls=tls), ()


def _call(method: Any, request: Any, metadata: Metadata, timeout: float, what: str) -> Any:
    import grpc

    from zkgrid._internal.rpc import remote_error

    try:
        return method(request, metadata=metadata, timeout=timeout)
    except grpc.RpcError as exc:
        error = remote_error(exc, what)
        if error.code.name in _REFUSALS:
            raise _Refused(f"the service refused: {error.reason}: {error.details}") from None
        if error.transient:
            raise _Unreachable(
                f"could not reach the service ({error.reason}: {error.details}); check --target"
                " and that `zkgrid serve` is running, then try again"
            ) from None
        raise error from None


def _verified(
    receipt: Any, tariff: Tariff | CycleTariff, log_key: CheckpointVerifier | None
) -> str:
    from ledger.entries import EntryKind
    from meter.client import verify_receipt
    from zkgrid.errors import VerificationError

    try:
        checked = verify_receipt(receipt, EntryKind.TARIFF, tariff.encode(), log_key)
    except VerificationError as exc:
        raise _Refused(str(exc)) from None
    return "verified" if checked.signature_verified else "inclusion only"


def _describe(tariff: Tariff, index: int, receipt: str) -> dict[str, Any]:
    from settlement.tariff_files import money_to_text, rate_to_text

    minutes = tariff.interval_minutes
    return {
        "period": tariff.period,
        "currency": tariff.currency,
        "fixed_charge": money_to_text(tariff.fixed_charge),
        "interval_minutes": minutes,
        "intervals": [
            {
                "start": f"{t * minutes // 60:02d}:{t * minutes % 60:02d}",
                "import_price_per_kwh": rate_to_text(p),
                "export_credit_per_kwh": rate_to_text(c),
            }
            for t, (p, c) in enumerate(zip(tariff.import_price, tariff.export_credit, strict=True))
        ],
        "tariff_hash": tariff.tariff_hash().hex(),
        "ledger_index": index,
        "receipt": receipt,
    }


def _describe_cycle(tariff: CycleTariff, index: int, receipt: str) -> dict[str, Any]:
    from settlement.tariff_files import energy_to_text, money_to_text, rate_to_text

    minutes = tariff.interval_minutes
    return {
        "kind": "cycle",
        "plan": tariff.plan,
        "meters": list(tariff.meters),
        "first_period": tariff.first_period,
        "last_period": tariff.last_period,
        "periods": len(tariff.periods),
        "currency": tariff.currency,
        "fixed_charge": money_to_text(tariff.fixed_charge),
        "interval_minutes": minutes,
        "intervals": [
            {
                "start": f"{t * minutes // 60:02d}:{t * minutes % 60:02d}",
                "import_price_per_kwh": rate_to_text(p),
                "export_credit_per_kwh": rate_to_text(c),
            }
            for t, (p, c) in enumerate(zip(tariff.import_price, tariff.export_credit, strict=True))
        ],
        "tiers": [
            {"from_kwh": energy_to_text(start), "price_per_kwh": rate_to_text(price)}
            for start, price in tariff.tiers
        ],
        "tier_kind": tariff.tier_kind,
        "demand_charge_per_kw": money_to_text(tariff.demand_charge),
        "tariff_hash": tariff.tariff_hash().hex(),
        "ledger_index": index,
        "receipt": receipt,
    }


def _print_receipt(doc: dict[str, Any]) -> None:
    if doc["receipt"] == "verified":
        print("receipt verified under the pinned log key")
    else:
        print(
            "receipt: inclusion proof checked, log signature NOT checked"
            " (pass --log-key-file log.pub)",
            file=sys.stderr,
        )


def _print_cycle(args: argparse.Namespace, doc: dict[str, Any], verb: str) -> None:
    if args.json:
        print(json.dumps(doc, indent=2))
        return
    meters = ", ".join(doc["meters"]) if doc["meters"] else "the default plan: every meter no"
    if not doc["meters"]:
        meters += " plan of an overlapping cycle lists"
    print(
        f"{verb} plan {doc['plan']!r} for the cycle {doc['first_period']}..{doc['last_period']}"
        f" ({doc['periods']} days) at ledger index {doc['ledger_index']}: {doc['currency']},"
        f" fixed charge {doc['fixed_charge']} per cycle, {len(doc['intervals'])} intervals of"
        f" {doc['interval_minutes']} min"
    )
    print(f"  meters: {meters}")
    for row in doc["intervals"]:
        print(
            f"  {row['start']}  import {row['import_price_per_kwh']}/kWh"
            f"  export credit {row['export_credit_per_kwh']}/kWh"
        )
    for i, tier in enumerate(doc["tiers"], start=1):
        print(
            f"  tier {i} ({doc['tier_kind']}): from {tier['from_kwh']} kWh of the cycle's import,"
            f" {tier['price_per_kwh']}/kWh on top"
        )
    if doc["demand_charge_per_kw"] != "0.000000":
        print(
            f"  demand charge: {doc['demand_charge_per_kw']} per kW of the cycle's highest"
            " interval import"
        )
    _print_receipt(doc)


def _print(args: argparse.Namespace, doc: dict[str, Any], verb: str) -> None:
    if args.json:
        print(json.dumps(doc, indent=2))
        return
    print(
        f"{verb} tariff for {doc['period']} at ledger index {doc['ledger_index']}:"
        f" {doc['currency']}, fixed charge {doc['fixed_charge']},"
        f" {len(doc['intervals'])} intervals of {doc['interval_minutes']} min"
    )
    for row in doc["intervals"]:
        print(
            f"  {row['start']}  import {row['import_price_per_kwh']}/kWh"
            f"  export credit {row['export_credit_per_kwh']}/kWh"
        )
    _print_receipt(doc)


def _publish(args: argparse.Namespace) -> int:
    from settlement import convert
    from settlement.records import CycleTariff
    from zkgrid.settlement.v1 import tariffs_pb2, tariffs_pb2_grpc

    tariff = _tariff_from_file(args)  # checked before any connection
    log_key = _log_key(args)
    if isinstance(tariff, CycleTariff):
        return _publish_cycle(args, tariff, log_key)
    channel, metadata = _open(args, "utility")
    try:
        response = _call(
            tariffs_pb2_grpc.TariffServiceStub(channel).PublishTariff,
            tariffs_pb2.PublishTariffRequest(tariff=convert.tariff_to_proto(tariff)),
            metadata,
            args.timeout,
            "PublishTariff",
        )
    finally:
        channel.close()
    receipt = _verified(response.receipt, tariff, log_key)
    _print(args, _describe(tariff, response.receipt.ledger_index, receipt), "published")
    return 0


def _publish_cycle(
    args: argparse.Namespace, tariff: CycleTariff, log_key: CheckpointVerifier | None
) -> int:
    from zkgrid.settlement.v1 import tariffs_pb2, tariffs_pb2_grpc

    channel, metadata = _open(args, "utility")
    try:
        response = _call(
            tariffs_pb2_grpc.TariffServiceStub(channel).PublishCycleTariff,
            tariffs_pb2.PublishCycleTariffRequest(cycle_tariff=tariff.encode()),
            metadata,
            args.timeout,
            "PublishCycleTariff",
        )
    finally:
        channel.close()
    if bytes(response.tariff_hash) not in (b"", tariff.tariff_hash()):
        raise _Refused("the service names another tariff hash than the published plan's")
    receipt = _verified(response.receipt, tariff, log_key)
    _print_cycle(args, _describe_cycle(tariff, response.receipt.ledger_index, receipt), "published")
    return 0


def _show_cycle(args: argparse.Namespace, log_key: CheckpointVerifier | None) -> int:
    from ledger.errors import ReceiptError
    from meter.client import checked_cycle_tariff
    from zkgrid.settlement.v1 import tariffs_pb2, tariffs_pb2_grpc

    channel, metadata = _open(args, "auditor")
    try:
        response = _call(
            tariffs_pb2_grpc.TariffServiceStub(channel).GetCycleTariff,
            tariffs_pb2.GetCycleTariffRequest(meter_id=args.meter, period=args.period),
            metadata,
            args.timeout,
            "GetCycleTariff",
        )
    finally:
        channel.close()
    try:
        tariff, checked = checked_cycle_tariff(response, args.meter, args.period, log_key)
    except ReceiptError as exc:
        raise _Refused(str(exc)) from None
    receipt = "verified" if checked.signature_verified else "inclusion only"
    _print_cycle(args, _describe_cycle(tariff, checked.ledger_index, receipt), "the")
    return 0


def _show(args: argparse.Namespace) -> int:
    from settlement import convert
    from zkgrid.settlement.v1 import tariffs_pb2, tariffs_pb2_grpc

    log_key = _log_key(args)
    if args.meter is not None:
        return _show_cycle(args, log_key)
    channel, metadata = _open(args, "auditor")
    try:
        response = _call(
            tariffs_pb2_grpc.TariffServiceStub(channel).GetTariff,
            tariffs_pb2.GetTariffRequest(period=args.period),
            metadata,
            args.timeout,
            "GetTariff",
        )
    finally:
        channel.close()
    tariff = convert.tariff_from_proto(response.tariff)
    if tariff.period != args.period:
        raise _Refused(f"the service answered with the tariff of {tariff.period}")
    receipt = _verified(response.receipt, tariff, log_key)
    _print(args, _describe(tariff, response.receipt.ledger_index, receipt), "the")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_command_line(_parser(), argv, PROG)
    if isinstance(args, int):
        return args
    commands = {"publish": _publish, "show": _show}
    try:
        return commands[args.command](args)
    except _Refused as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except (UsageError, _Unreachable) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except ZkgridError as exc:
        print(f"{PROG}: {exc.reason}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
