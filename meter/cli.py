"""``zkgrid meter``: the prosumer's command line.

::

    zkgrid meter keygen    --id METER [--interval-minutes 15]
    zkgrid meter register  [--format json|base64] [--out FILE]
    zkgrid meter register  --submit [--request FILE]        (utility role; dev helper)
    zkgrid meter submit    --csv readings.csv
    zkgrid meter bill      --period YYYY-MM-DD
    zkgrid meter statement [--period YYYY-MM-DD]

Every command takes ``--id METER`` or ``--home DIR`` (default
``~/.zkgrid/meter/<id>``, or ``$ZKGRID_METER_HOME``); the network commands take
``--target HOST:PORT`` and either mutual TLS (``--ca``, ``--cert``, ``--key``) or
``--insecure`` (development, loopback only), and ``--log-key`` to pin the log's
checkpoint key (``name+hex+base64`` text, or a file holding it).

Errors are one line on stderr: exit code 2 for bad input (arguments, CSV, local
files), 1 when the service refuses or cannot be reached or a receipt does not verify.

Start-up: the arguments are parsed before anything heavy is imported (``grpc``, the
proof system, the records): each command imports what it runs, so ``--help`` and
argument errors answer at once.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

from meter.errors import ReceiptError
from zkgrid._internal.channels import dev_metadata
from zkgrid._internal.files import PrivateFileError, read_file
from zkgrid._internal.rpc import RemoteError
from zkgrid.errors import InvalidArgumentError, ProofFormatError, UsageError, ZkgridError

if TYPE_CHECKING:  # pragma: no cover - imported by the commands that need them
    from ledger.checkpoint import CheckpointVerifier
    from meter.client import MeterClient, VerifiedReceipt
    from settlement.records import MeterRegistration

__all__ = ["format_money", "main"]

TARGET_ENV = "ZKGRID_TARGET"
DEFAULT_TARGET = "127.0.0.1:50051"
EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2
#: Largest ``--log-key`` file read (a verifier key is one short line).
_MAX_KEY_FILE_BYTES = 64 * 1024


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def format_money(micro: int, currency: str) -> str:
    """Micro-currency as units with two decimals (rounded half-even), e.g. ``-1.23 EUR``."""
    units = (Decimal(micro) / Decimal(1_000_000)).quantize(Decimal("0.01"))
    return f"{units} {currency}"


def _common(parser: argparse.ArgumentParser, *, network: bool) -> None:
    parser.add_argument("--id", dest="meter_id", help="meter id (selects the default home)")
    parser.add_argument("--home", type=Path, help="meter home directory")
    if not network:
        return
    parser.add_argument(
        "--target",
        default=os.environ.get(TARGET_ENV, DEFAULT_TARGET),
        help=f"service address (default ${TARGET_ENV} or {DEFAULT_TARGET})",
    )
    parser.add_argument("--ca", type=Path, help="CA certificate (PEM) of the service")
    parser.add_argument("--cert", type=Path, help="client certificate (PEM) for mutual TLS")
    parser.add_argument("--key", type=Path, help="client private key (PEM) for mutual TLS")
    parser.add_argument(
        "--insecure", action="store_true", help="plaintext to a loopback service (dev only)"
    )
    parser.add_argument(
        "--log-key", help="pin the log's checkpoint verifier key (text or a file holding it)"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="per-call deadline (s)")


def _parser() -> _Parser:
    parser = _Parser(prog="zkgrid meter", description="The prosumer's meter client.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("keygen", help="create the meter's key and home")
    p.add_argument("--id", dest="meter_id", required=True, help="meter id")
    p.add_argument("--home", type=Path, help="meter home directory")
    p.add_argument("--interval-minutes", type=int, default=15, help="interval length (15)")

    p = sub.add_parser("register", help="print the registration request (or submit it)")
    _common(p, network=True)
    p.add_argument("--format", choices=("json", "base64"), default="json")
    p.add_argument("--out", type=Path, help="write the request to this file")
    p.add_argument("--submit", action="store_true", help="submit it to the service (utility role)")
    p.add_argument("--request", type=Path, help="with --submit: a request file ('-' for stdin)")

    p = sub.add_parser("submit", help="commit, prove, sign and submit a day of readings")
    _common(p, network=True)
    p.add_argument("--csv", type=Path, required=True, help="readings CSV of one UTC day")

    p = sub.add_parser("bill", help="prove and submit the bill of a period")
    _common(p, network=True)
    p.add_argument("--period", required=True, help="YYYY-MM-DD")

    p = sub.add_parser("statement", help="the meter's bills as the ledger holds them")
    _common(p, network=True)
    p.add_argument("--period", help="only this period (YYYY-MM-DD)")
    return parser


# --------------------------------------------------------------------------- helpers


def _home_path(args: argparse.Namespace) -> Path:
    from meter.home import default_home

    if args.home is not None:
        return Path(args.home).expanduser()
    return default_home(args.meter_id)


def _log_key(args: argparse.Namespace) -> CheckpointVerifier | None:
    from ledger.checkpoint import parse_verifier_key

    text = getattr(args, "log_key", None)
    if not text:
        return None
    path = Path(text).expanduser()
    if "+" not in text and path.is_file():
        raw = read_file(path, max_bytes=_MAX_KEY_FILE_BYTES)
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise InvalidArgumentError(f"{path} does not hold a verifier key (not UTF-8)") from None
    return parse_verifier_key(text)


def _client(args: argparse.Namespace) -> MeterClient:
    from meter.client import MeterClient
    from meter.home import MeterHome

    home = MeterHome.load(_home_path(args))
    if args.meter_id is not None and args.meter_id != home.meter_id:
        raise InvalidArgumentError(f"{home.path} holds meter {home.meter_id}, not {args.meter_id}")
    return MeterClient(
        home,
        target=args.target,
        insecure=args.insecure,
        ca=args.ca,
        cert=args.cert,
        key=args.key,
        log_key=_log_key(args),
        timeout=args.timeout,
    )


def _receipt_line(receipt: VerifiedReceipt) -> str:
    signed = "signature verified" if receipt.signature_verified else "signature not checked"
    return (
        f"ledger index {receipt.ledger_index}, included in tree size {receipt.tree_size} ({signed})"
    )


def _registration_text(reg: MeterRegistration, fmt: str) -> str:
    if fmt == "base64":
        return base64.b64encode(reg.encode()).decode("ascii") + "\n"
    doc = {
        "meter_id": reg.meter_id,
        "public_key": reg.public_key.hex(),
        "interval_minutes": reg.interval_minutes,
        "pop_signature": base64.b64encode(reg.pop_signature).decode("ascii"),
        "record": base64.b64encode(reg.encode()).decode("ascii"),
    }
    return json.dumps(doc, indent=2) + "\n"


def _parse_registration(text: str) -> MeterRegistration:
    from settlement.records import MeterRegistration

    text = text.strip()
    try:
        if text.startswith("{"):
            record = base64.b64decode(json.loads(text)["record"], validate=True)
        else:
            record = base64.b64decode(text, validate=True)
    except (ValueError, KeyError, TypeError, RecursionError):
        raise InvalidArgumentError(
            "the request is neither the JSON nor the base64 'zkgrid meter register' prints"
        ) from None
    return MeterRegistration.decode(record)


# --------------------------------------------------------------------------- commands


def _keygen(args: argparse.Namespace, out: TextIO) -> int:
    from meter.client import MeterClient
    from meter.home import default_home

    path = args.home if args.home is not None else default_home(args.meter_id)
    home = MeterClient.keygen(path, args.meter_id, args.interval_minutes)
    out.write(
        f"meter {home.meter_id}: key created in {home.path}\n"
        f"public key {home.public_key.hex()}\n"
        f"next: 'zkgrid meter register --id {home.meter_id}' and hand the request to the"
        " utility\n"
    )
    return 0


def _register(args: argparse.Namespace, out: TextIO) -> int:
    from meter.client import MeterClient, make_channel, submit_registration
    from meter.home import MeterHome

    if args.submit:
        if args.request is not None:
            raw = sys.stdin.read() if str(args.request) == "-" else args.request.read_text()
            registration = _parse_registration(raw)
        else:
            registration = MeterClient(MeterHome.load(_home_path(args))).registration_request()
        channel = make_channel(
            args.target, insecure=args.insecure, ca=args.ca, cert=args.cert, key=args.key
        )
        metadata = dev_metadata("utility") if args.insecure else ()
        try:
            receipt = submit_registration(
                channel,
                registration,
                metadata=metadata,
                log_key=_log_key(args),
                timeout=args.timeout,
            )
        finally:
            channel.close()
        out.write(f"registered meter {registration.meter_id}: {_receipt_line(receipt)}\n")
        return 0
    client = MeterClient(MeterHome.load(_home_path(args)))
    text = _registration_text(client.registration_request(), args.format)
    client.close()
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
        out.write(f"registration request written to {args.out}\n")
    else:
        out.write(text)
    return 0


def _submit(args: argparse.Namespace, out: TextIO) -> int:
    from meter.readings import ReadingsFormatError, read_readings_csv

    with _client(args) as client:
        try:
            readings = read_readings_csv(args.csv, client.home.interval_minutes)
        except ReadingsFormatError as exc:
            # The readings are the prosumer's own: showing the offending field on their own
            # terminal is fine; it never goes to the service or into a log.
            found = f" (found {exc.offending!r})" if exc.offending is not None else ""
            sys.stderr.write(f"error: {args.csv}: {exc}{found}\n")
            return EXIT_BAD_INPUT
        receipt = client.submit_readings(readings)
        out.write(
            f"{client.meter_id} {readings.period}: {readings.intervals} intervals committed and"
            f" range-proven; {_receipt_line(receipt)}\n"
        )
    return 0


def _bill(args: argparse.Namespace, out: TextIO) -> int:
    from meter.readings import parse_period

    parse_period(args.period)
    with _client(args) as client:
        tariff, _ = client.tariff(args.period)
        bill = client.prove_bill(args.period)
        receipt = client.submit_bill(bill)
        out.write(
            f"{client.meter_id} {args.period}: bill {format_money(bill.total, tariff.currency)}"
            f" ({bill.total} micro-{tariff.currency}) proven; {_receipt_line(receipt)}\n"
        )
    return 0


def _statement(args: argparse.Namespace, out: TextIO) -> int:
    from meter.readings import parse_period

    if args.period is not None:
        parse_period(args.period)
    with _client(args) as client:
        statement = client.statement(args.period)
        currency = ""
        for line in statement.lines:
            tariff, _ = client.tariff(line.bill.period)
            currency = tariff.currency
            # "verified" only when the pinned log key signed the checkpoint: an unpinned
            # receipt proves inclusion in *a* tree, which anyone can make (issue 10 §5).
            pinned = line.receipt.signature_verified
            status = "verified" if pinned else "inclusion only, log key not pinned"
            out.write(
                f"{line.bill.period}  {format_money(line.bill.total, currency):>16}"
                f"  ledger index {line.receipt.ledger_index}  {status}\n"
            )
        if not statement.lines:
            out.write(f"{client.meter_id}: no bills yet\n")
        else:
            out.write(f"total       {format_money(statement.total, currency):>16}\n")
    return 0


_COMMANDS = {
    "keygen": _keygen,
    "register": _register,
    "submit": _submit,
    "bill": _bill,
    "statement": _statement,
}


def _report(exc: ZkgridError, err: TextIO) -> int:
    """One line on stderr for a typed error; the exit code (module docstring)."""
    from ledger.errors import LedgerError  # only on this path: argument errors stay fast

    if isinstance(exc, RemoteError):
        err.write(f"error: the service refused: {exc}\n")
        return EXIT_REFUSED
    if isinstance(exc, ReceiptError | LedgerError):
        err.write(f"error: the service's answer does not verify: {exc}\n")
        return EXIT_REFUSED
    err.write(f"error: {exc}\n")
    if isinstance(exc, InvalidArgumentError | ProofFormatError | PrivateFileError):
        return EXIT_BAD_INPUT
    return EXIT_REFUSED


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run ``zkgrid meter`` with ``argv`` (without the program name); return the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["meter"]:
        args_list = args_list[1:]
    stdout = out if out is not None else sys.stdout
    err = sys.stderr
    try:
        args = _parser().parse_args(args_list)
        return _COMMANDS[args.command](args, stdout)
    except UsageError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_BAD_INPUT
    except ZkgridError as exc:
        return _report(exc, err)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        err.write(f"error: {exc.strerror or exc}{where}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
