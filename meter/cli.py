"""``zkgrid meter``: the prosumer's command line.

::

    zkgrid meter keygen    --id METER [--interval-minutes 15]
    zkgrid meter register  [--format json|base64] [--out FILE]
    zkgrid meter register  --submit [--request FILE | --requests FILE]   (utility role)
    zkgrid meter revoke    --id METER --reason TEXT                      (utility role)
    zkgrid meter submit    --csv readings.csv [--units wh|kwh]
    zkgrid meter csv-convert --csv local.csv --tz Europe/Berlin --out-dir DIR   (local only)
    zkgrid meter bill      --period YYYY-MM-DD
    zkgrid meter bill      --cycle YYYY-MM | --from YYYY-MM-DD --to YYYY-MM-DD   (a cycle)
    zkgrid meter statement [--period YYYY-MM-DD] [--detail] [--json | --csv]
    zkgrid meter readings  --period YYYY-MM-DD [--json | --csv]     (local only)
    zkgrid meter report    --period YYYY-MM-DD --out report.html [--force]
    zkgrid meter backup    --out FILE                                (local only)
    zkgrid meter restore   --from FILE [--force]                     (local only)

Every command takes ``--id METER`` or ``--home DIR`` (default
``~/.zkgrid/meter/<id>``, or ``$ZKGRID_METER_HOME``); the network commands take
``--target HOST:PORT`` and either mutual TLS (``--ca``, ``--cert``, ``--key``) or
``--insecure`` (development, loopback only), and ``--log-key`` to pin the log's
checkpoint key (``name+hex+base64`` text, or a file holding it); their defaults come
from ``ZKGRID_TARGET``, ``ZKGRID_CA``, ``ZKGRID_CERT``, ``ZKGRID_KEY`` and
``ZKGRID_LOG_KEY_FILE`` (:mod:`zkgrid._internal.cliargs`).

``bill --cycle``/``--from --to`` proves the bill of a billing cycle (records version 2)
under the utility's plan for the meter (``GetCycleTariff``; the plan's cycle must be
the one asked for) from the local openings of every day of the cycle, and submits it;
a circuit proof, which takes seconds for long cycles (progress on stderr when it is a
terminal).

``readings``, ``backup`` and ``restore`` read or write the local opening store only:
nothing is sent. ``statement --detail`` and ``report`` fetch the ledger's bill and the
published tariff and recompute the bill from the local openings (:mod:`meter.statement`);
the readings never leave the machine.

Errors are one line on stderr. Exit codes: 0 ok; 1 refused or a violation found (the
service refused, a receipt does not verify, the ledger's bill does not match the local
openings, a backup is refused); 2 could not run (arguments, CSV, local files, the
service cannot be reached).

Start-up: the arguments are parsed before anything heavy is imported (``grpc``, the
proof system, the records): each command imports what it runs, so ``--help`` and
argument errors answer at once.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

from meter.errors import ReceiptError
from meter.units import format_money
from zkgrid._internal.channels import dev_metadata
from zkgrid._internal.cliargs import (
    CLIENT_ENV,
    EXIT_STATUS,
    add_env_argument,
    add_strict_argument,
    check_pinned,
    clearing,
)
from zkgrid._internal.files import PrivateFileError, read_file
from zkgrid._internal.rpc import RemoteError
from zkgrid.errors import InvalidArgumentError, ProofFormatError, UsageError, ZkgridError

if TYPE_CHECKING:  # pragma: no cover - imported by the commands that need them
    import grpc

    from ledger.checkpoint import CheckpointVerifier
    from meter.client import MeterClient, Registered, VerifiedReceipt
    from meter.home import MeterHome
    from meter.statement import Violation
    from settlement.records import MeterRegistration

__all__ = ["format_money", "main"]

TARGET_ENV = CLIENT_ENV["target"]
DEFAULT_TARGET = "127.0.0.1:50051"
EXIT_REFUSED = 1
#: Could not run: usage, input, local files, or the service cannot be reached.
EXIT_BAD_INPUT = 2
#: Largest ``--log-key`` file read (a verifier key is one short line).
_MAX_KEY_FILE_BYTES = 64 * 1024


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _common(parser: argparse.ArgumentParser, *, network: bool) -> None:
    parser.add_argument("--id", dest="meter_id", help="meter id (selects the default home)")
    parser.add_argument("--home", type=Path, help="meter home directory")
    if not network:
        return
    # Defaults from ZKGRID_TARGET, _CA, _CERT, _KEY, _LOG_KEY_FILE (zkgrid._internal.cliargs).
    add_env_argument(
        parser,
        "--target",
        setting="target",
        fallback=DEFAULT_TARGET,
        help=f"service address (default {DEFAULT_TARGET})",
    )
    add_env_argument(
        parser, "--ca", setting="ca", type=Path, help="CA certificate (PEM) of the service"
    )
    add_env_argument(
        parser, "--cert", setting="cert", type=Path, help="client certificate (PEM) for mutual TLS"
    )
    add_env_argument(
        parser, "--key", setting="key", type=Path, help="client private key (PEM) for mutual TLS"
    )
    parser.add_argument(
        "--insecure",
        action=clearing(("ca", "cert", "key"), flag=True),
        help="plaintext to a loopback service (dev only; ignores ZKGRID_CA/_CERT/_KEY)",
    )
    add_env_argument(
        parser,
        "--log-key",
        "--log-key-file",
        setting="log_key_file",
        dest="log_key",
        help="pin the log's checkpoint verifier key (text or a file holding it, such as the"
        " service's log.key.pub)",
    )
    add_strict_argument(parser)
    parser.add_argument("--timeout", type=float, default=30.0, help="per-call deadline (s)")


def _parser() -> _Parser:
    parser = _Parser(
        prog="zkgrid meter",
        description="The prosumer's meter client.",
        epilog=EXIT_STATUS,
    )
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
    p.add_argument("--json", action="store_true", help="with --submit: the outcome as JSON")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--request", type=Path, help="with --submit: a request file ('-' for stdin)")
    group.add_argument(
        "--requests",
        type=Path,
        help="with --submit: many requests, one per line (the base64 form, or JSON on one"
        " line); prints one JSON line per request; safe to run again after a failure",
    )

    p = sub.add_parser("revoke", help="revoke a meter (utility role); the reason is public")
    _common(p, network=True)
    p.add_argument("--reason", required=True, help="why (stored in the ledger: public text)")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")

    p = sub.add_parser("submit", help="commit, prove, sign and submit a day of readings")
    _common(p, network=True)
    p.add_argument("--csv", type=Path, required=True, help="readings CSV of one UTC day")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.add_argument(
        "--units",
        choices=("wh", "kwh"),
        help="the values' unit (default: the header's, import_wh or import_kwh); kWh are"
        " converted exactly to Wh, a fraction of a Wh is refused",
    )

    p = sub.add_parser(
        "csv-convert",
        help="cut a local-time readings file into UTC-day files (local only)",
        description="Resolve a file's local wall-clock times (no offset) in --tz, daylight"
        " saving days included, and write one readings CSV per complete UTC day to"
        " --out-dir (DAY.csv, mode 0600). Days the file covers only in part are listed,"
        " not written. Nothing is sent.",
    )
    p.add_argument("--csv", type=Path, required=True, help="the local-time readings file")
    p.add_argument("--tz", required=True, help="IANA time zone of the file, e.g. Europe/Berlin")
    p.add_argument("--out-dir", type=Path, required=True, help="where the UTC-day files go")
    p.add_argument("--interval-minutes", type=int, default=15, help="the readings' interval (15)")
    p.add_argument("--units", choices=("wh", "kwh"), help="the values' unit (default: header)")
    p.add_argument("--force", action="store_true", help="replace existing day files")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")

    p = sub.add_parser(
        "bill",
        help="prove and submit the bill of a period or of a billing cycle",
        description="Prove and submit a bill: of one day (--period) under the day's tariff,"
        " or of a billing cycle (--cycle, a calendar month, or --from/--to) under the"
        " utility's plan for this meter (tiers, demand charge), from the local openings of"
        " every day of the cycle (each day submitted first). The plan's cycle must be the"
        " one given (the error names the plan's). A cycle's proof takes seconds (about 25 s"
        " for 31 days of 15-minute intervals with a demand charge).",
    )
    _common(p, network=True)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--period", help="a day, YYYY-MM-DD")
    which.add_argument("--cycle", metavar="YYYY-MM", help="a billing cycle: a calendar month")
    which.add_argument(
        "--from", dest="first", metavar="YYYY-MM-DD", help="a billing cycle's first day"
    )
    p.add_argument("--to", dest="last", metavar="YYYY-MM-DD", help="its last day (with --from)")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")

    p = sub.add_parser(
        "statement",
        help="the meter's bills as the ledger holds them",
        description="The meter's bills as the ledger holds them (a day's bills and the"
        " bills of billing cycles), every receipt verified. --detail recomputes each bill"
        " from the local openings under the published tariff (fixed charge, energy charge,"
        " feed-in credit, kWh, the tariff used; for a cycle also the kWh and charge of each"
        " tier and the highest interval import in kW with its demand charge) and checks it"
        " against the ledger's bill; a mismatch is a named violation, exit 1.",
    )
    _common(p, network=True)
    p.add_argument("--period", help="only this period (YYYY-MM-DD)")
    p.add_argument("--detail", action="store_true", help="the breakdown, recomputed and checked")
    _formats(p, csv_help="one row per bill (amounts in micro-units too)")

    p = sub.add_parser(
        "readings",
        help="a day's readings from the local opening store (nothing is sent)",
        description="A day's readings as the local opening store holds them: per interval"
        " (start time, UTC) the import and export in Wh, and the totals. Read locally"
        " only: nothing is sent over the network.",
    )
    _common(p, network=False)
    p.add_argument("--period", required=True, help="YYYY-MM-DD")
    _formats(p, csv_help="the readings CSV format 'submit' reads")

    p = sub.add_parser(
        "report",
        help="a self-contained HTML page of a day: plot, bill check, receipts",
        description="One self-contained HTML page (no network access needed to open it):"
        " a plot of the day's import and export per interval, the bill's breakdown"
        " recomputed locally and checked against the ledger's bill, and the receipts'"
        " verification (verified only with --log-key). Written mode 0600: it shows the"
        " readings. Exit 1 when the ledger's bill does not match (the page says why).",
    )
    _common(p, network=True)
    p.add_argument("--period", required=True, help="YYYY-MM-DD")
    p.add_argument("--out", type=Path, required=True, help="the HTML file to create")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")

    p = sub.add_parser(
        "backup",
        help="back up the opening store (the only copy of the blindings) to a private file",
        description="Write the opening store (readings, blindings, batches, bills,"
        " receipts) to a new file, mode 0600, with a digest. Without these openings no"
        " bill can be proven for the periods already submitted: keep the file safe and"
        " private, and keep meter.key too.",
    )
    _common(p, network=False)
    p.add_argument("--out", type=Path, required=True, help="the backup file to create")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")

    p = sub.add_parser(
        "restore",
        help="restore the opening store from a backup",
        description="Check a backup (format, digest, this meter's id, key and signatures,"
        " openings against commitments) and merge it into the opening store. Openings"
        " that differ from the store's are refused unless --force.",
    )
    _common(p, network=False)
    p.add_argument("--from", dest="source", type=Path, required=True, help="the backup file")
    p.add_argument(
        "--force", action="store_true", help="replace differing local openings with the backup's"
    )
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    return parser


def _formats(parser: argparse.ArgumentParser, *, csv_help: str) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="JSON (a stable, versioned schema)")
    group.add_argument("--csv", action="store_true", help=f"CSV: {csv_help}")


# --------------------------------------------------------------------------- helpers


def _home_path(args: argparse.Namespace) -> Path:
    from meter.home import default_home

    if args.home is not None:
        return Path(args.home).expanduser()
    return default_home(args.meter_id)


def _log_key(args: argparse.Namespace) -> CheckpointVerifier | None:
    """The pinned log key (read once per command); none pinned is refused under --strict
    (the default outside --insecure) and warned about otherwise."""
    if hasattr(args, "_pinned"):
        pinned: CheckpointVerifier | None = args._pinned
        return pinned
    from ledger.checkpoint import parse_verifier_key

    text = getattr(args, "log_key", None)
    key = None
    if text:
        path = Path(text).expanduser()
        if "+" not in text and path.is_file():
            raw = read_file(path, max_bytes=_MAX_KEY_FILE_BYTES)
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise InvalidArgumentError(
                    f"{path} does not hold a verifier key (not UTF-8)"
                ) from None
        key = parse_verifier_key(text)
    check_pinned(
        key is not None,
        strict=getattr(args, "strict", None),
        insecure=bool(getattr(args, "insecure", False)),
        prog="zkgrid meter",
    )
    args._pinned = key
    return key


def _home(args: argparse.Namespace) -> MeterHome:
    from meter.home import MeterHome

    home = MeterHome.load(_home_path(args))
    if args.meter_id is not None and args.meter_id != home.meter_id:
        raise InvalidArgumentError(f"{home.path} holds meter {home.meter_id}, not {args.meter_id}")
    return home


def _client(args: argparse.Namespace) -> MeterClient:
    from meter.client import MeterClient

    return MeterClient(
        _home(args),
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
        f"back up: {home.path / 'openings.db'} will hold the only copy of the blindings your"
        " bills need; after each submission run"
        f" 'zkgrid meter backup --id {home.meter_id} --out FILE' and keep the file (and"
        f" {home.path / 'meter.key'}) somewhere safe and private\n"
    )
    return 0


#: Bound of a ``--requests`` file (a registration request is about 300 bytes).
_MAX_REQUESTS_BYTES = 64 << 20


def _utility_channel(args: argparse.Namespace) -> tuple[grpc.Channel, Sequence[tuple[str, str]]]:
    from meter.client import make_channel

    channel = make_channel(
        args.target,
        insecure=args.insecure,
        ca=args.ca,
        cert=args.cert,
        key=args.key,
        role="utility",
    )
    return channel, dev_metadata("utility") if args.insecure else ()


def _receipt_doc(receipt: VerifiedReceipt) -> dict[str, object]:
    """A verified receipt for ``--json`` output (a stable schema)."""
    return {
        "ledger_index": receipt.ledger_index,
        "leaf_hash": receipt.leaf_hash.hex(),
        "tree_size": receipt.tree_size,
        "root_hash": receipt.root_hash.hex(),
        "signature_verified": receipt.signature_verified,
    }


def _registered_line(found: Registered) -> str:
    verb = "registered" if found.appended else "already registered"
    return f"{verb} meter {found.registration.meter_id}: {_receipt_line(found.receipt)}\n"


def _register_many(args: argparse.Namespace, out: TextIO) -> int:
    """One request per line; one JSON line per request; exit 1 if any was refused."""
    from meter.client import register_or_confirm

    text = read_file(args.requests, max_bytes=_MAX_REQUESTS_BYTES).decode("utf-8")
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    requests = []
    for number, line in lines:  # every line parses before anything is sent
        try:
            requests.append((number, _parse_registration(line)))
        except ZkgridError as exc:
            raise InvalidArgumentError(f"{args.requests}: line {number}: {exc}") from None
    channel, metadata = _utility_channel(args)
    refused = 0
    try:
        for number, registration in requests:
            doc: dict[str, object] = {"line": number, "meter_id": registration.meter_id}
            try:
                found = register_or_confirm(
                    channel,
                    registration,
                    metadata=metadata,
                    log_key=_log_key(args),
                    timeout=args.timeout,
                )
            except RemoteError as exc:
                if exc.transient:
                    raise  # the service cannot be reached: stop; running again resumes
                refused += 1
                doc |= {"status": "refused", "reason": str(exc.reason), "detail": exc.details}
            else:
                doc |= {
                    "status": "registered" if found.appended else "already registered",
                    "ledger_index": found.receipt.ledger_index,
                    "signature_verified": found.receipt.signature_verified,
                }
            out.write(json.dumps(doc) + "\n")
            out.flush()
    finally:
        channel.close()
    return EXIT_REFUSED if refused else 0


def _register(args: argparse.Namespace, out: TextIO) -> int:
    from meter.client import MeterClient, register_or_confirm
    from meter.home import MeterHome

    if not args.submit and (args.request is not None or args.requests is not None):
        raise UsageError("--request and --requests go with --submit")
    if args.submit and args.requests is not None:
        return _register_many(args, out)
    if args.submit:
        if args.request is not None:
            raw = sys.stdin.read() if str(args.request) == "-" else args.request.read_text()
            registration = _parse_registration(raw)
        else:
            registration = MeterClient(MeterHome.load(_home_path(args))).registration_request()
        channel, metadata = _utility_channel(args)
        try:
            found = register_or_confirm(
                channel,
                registration,
                metadata=metadata,
                log_key=_log_key(args),
                timeout=args.timeout,
            )
        finally:
            channel.close()
        if args.json:
            doc = {
                "meter_id": registration.meter_id,
                "status": "registered" if found.appended else "already registered",
                "receipt": _receipt_doc(found.receipt),
            }
            out.write(json.dumps(doc) + "\n")
        else:
            out.write(_registered_line(found))
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


def _csv_convert(args: argparse.Namespace, out: TextIO) -> int:
    from meter.localtime import convert_local_csv, time_zone
    from meter.readings import ReadingsFormatError, format_readings_csv, read_readings_text
    from zkgrid._internal.files import ensure_private_dir, replace_private, write_new_private

    zone = time_zone(args.tz)
    try:
        converted = convert_local_csv(
            read_readings_text(args.csv), zone, args.interval_minutes, units=args.units
        )
    except ReadingsFormatError as exc:
        found = f" (found {exc.offending!r})" if exc.offending is not None else ""
        sys.stderr.write(f"error: {args.csv}: {exc}{found}\n")
        return EXIT_BAD_INPUT
    if not converted.days:
        raise InvalidArgumentError(
            f"{args.csv} holds no complete UTC day of {args.interval_minutes}-minute intervals"
            f" in {args.tz}"
            + "".join(
                f"; {p.period}: {p.present} of {p.needed} intervals" for p in converted.partial
            )
        )
    ensure_private_dir(args.out_dir)
    written = []
    for day in converted.days:
        path = args.out_dir / f"{day.period}.csv"
        data = format_readings_csv(day).encode("utf-8")
        if args.force:
            replace_private(path, data)
        else:
            write_new_private(path, data)
        written.append(str(path))
    if args.json:
        doc = {
            "written": written,
            "partial": [
                {"period": p.period, "intervals": p.present, "needed": p.needed}
                for p in converted.partial
            ],
        }
        out.write(json.dumps(doc) + "\n")
        return 0
    for path in written:
        out.write(f"wrote {path}\n")
    for p in converted.partial:
        out.write(
            f"left out {p.period}: only {p.present} of its {p.needed} intervals are in the file\n"
        )
    return 0


def _revoke(args: argparse.Namespace, out: TextIO) -> int:
    from meter.client import revoke_meter

    if not args.meter_id:
        raise UsageError("revoke needs --id METER (the meter to revoke)")
    channel, metadata = _utility_channel(args)
    try:
        receipt = revoke_meter(
            channel,
            args.meter_id,
            args.reason,
            metadata=metadata,
            log_key=_log_key(args),
            timeout=args.timeout,
        )
    finally:
        channel.close()
    if args.json:
        doc = {
            "meter_id": args.meter_id,
            "status": "revoked",
            "ledger_index": receipt.ledger_index,
            "signature_verified": receipt.signature_verified,
        }
        out.write(json.dumps(doc) + "\n")
    else:
        out.write(f"revoked meter {args.meter_id}: {_receipt_line(receipt)}\n")
    return 0


def _submit(args: argparse.Namespace, out: TextIO) -> int:
    from meter.readings import ReadingsFormatError, read_readings_csv

    with _client(args) as client:
        try:
            readings = read_readings_csv(args.csv, client.home.interval_minutes, units=args.units)
        except ReadingsFormatError as exc:
            # The readings are the prosumer's own: showing the offending field on their own
            # terminal is fine; it never goes to the service or into a log.
            found = f" (found {exc.offending!r})" if exc.offending is not None else ""
            sys.stderr.write(f"error: {args.csv}: {exc}{found}\n")
            return EXIT_BAD_INPUT
        before = client.store.batch(readings.period)
        if before is None:
            _progress(
                f"proving {2 * readings.intervals} values for {readings.period}"
                " (commit, range proof, signature)..."
            )
        receipt = client.submit_readings(readings)
        already = before is not None and before.status == "accepted"
        if args.json:
            doc = {
                "meter_id": client.meter_id,
                "period": readings.period,
                "intervals": readings.intervals,
                "status": "already submitted" if already else "submitted",
                "receipt": _receipt_doc(receipt),
            }
            out.write(json.dumps(doc) + "\n")
        elif already:
            out.write(
                f"{client.meter_id} {readings.period}: already submitted at ledger index"
                f" {receipt.ledger_index} (the same readings; nothing new was sent to the"
                f" ledger); {_receipt_line(receipt)}\n"
            )
        else:
            out.write(
                f"{client.meter_id} {readings.period}: {readings.intervals} intervals committed"
                f" and range-proven; {_receipt_line(receipt)}\n"
            )
    return 0


def _cycle_bounds(args: argparse.Namespace) -> tuple[str, str] | None:
    """The cycle ``--cycle``/``--from --to`` name, or ``None`` for ``--period``."""
    from settlement.periods import MAX_CYCLE_PERIODS, cycle_periods, parse_period
    from settlement.tariff_files import TariffFileError, month_cycle

    if args.last is not None and args.first is None:
        raise UsageError("--to goes with --from (a billing cycle --from DAY --to DAY)")
    if args.period is not None:
        return None
    if args.cycle is not None:
        try:
            return month_cycle(args.cycle)
        except TariffFileError:
            raise UsageError(
                f"--cycle {args.cycle!r}: a billing cycle is a calendar month, YYYY-MM"
            ) from None
    if args.last is None:
        raise UsageError("--from needs --to (the cycle's last day)")
    for flag, day in (("--from", args.first), ("--to", args.last)):
        try:
            parse_period(day)
        except ZkgridError:
            raise UsageError(f"{flag} {day!r}: a day is written YYYY-MM-DD") from None
    try:
        cycle_periods(args.first, args.last)
    except ZkgridError:
        raise UsageError(
            f"--from {args.first} --to {args.last}: a billing cycle is 1 to"
            f" {MAX_CYCLE_PERIODS} consecutive days, --to not before --from"
        ) from None
    return args.first, args.last


def _bill(args: argparse.Namespace, out: TextIO) -> int:
    from meter.readings import parse_period

    cycle = _cycle_bounds(args)
    if cycle is not None:
        return _cycle_bill(args, out, *cycle)
    parse_period(args.period)
    with _client(args) as client:
        tariff, _ = client.tariff(args.period)
        bill = client.prove_bill(args.period)
        receipt = client.submit_bill(bill)
        if args.json:
            doc = {
                "meter_id": client.meter_id,
                "period": args.period,
                "currency": tariff.currency,
                "total_micro": bill.total,
                "total": format_money(bill.total, "").strip(),
                "receipt": _receipt_doc(receipt),
            }
            out.write(json.dumps(doc) + "\n")
            return 0
        out.write(
            f"{client.meter_id} {args.period}: bill {format_money(bill.total, tariff.currency)}"
            f" ({bill.total} micro-{tariff.currency}) proven; {_receipt_line(receipt)}\n"
        )
    return 0


def _cycle_bill(args: argparse.Namespace, out: TextIO, first: str, last: str) -> int:
    import time

    with _client(args) as client:
        tariff = client.cycle_bill_tariff(first, last)
        days = len(tariff.periods)
        if client.store.cycle_bill(first, last) is None:
            parts = [f"{days} days x {tariff.intervals} intervals"]
            if tariff.tiers:
                parts.append(f"{len(tariff.tiers)} tiers")
            if tariff.demand_charge:
                parts.append("a demand charge")
            with _Ticker(
                f"proving the bill of {first}..{last} under plan {tariff.plan} ({', '.join(parts)})"
            ):
                started = time.monotonic()
                bill = client.prove_cycle_bill(first, last, tariff=tariff)
            _progress(f"proven in {time.monotonic() - started:.1f} s; submitting...")
        else:
            bill = client.prove_cycle_bill(first, last, tariff=tariff)
        receipt = client.submit_cycle_bill(bill)
        currency = tariff.currency
        if args.json:
            doc = {
                "meter_id": client.meter_id,
                "first_period": first,
                "last_period": last,
                "periods": days,
                "plan": tariff.plan,
                "tariff_hash": tariff.tariff_hash().hex(),
                "currency": currency,
                "total_micro": bill.total,
                "total": format_money(bill.total, "").strip(),
                "receipt": _receipt_doc(receipt),
            }
            out.write(json.dumps(doc) + "\n")
            return 0
        out.write(
            f"{client.meter_id} {first}..{last} (plan {tariff.plan}, {days} days): bill"
            f" {format_money(bill.total, currency)} ({bill.total} micro-{currency}) proven;"
            f" {_receipt_line(receipt)}\n"
        )
    return 0


class _Ticker:
    """On a terminal, ``message... N s`` on stderr, rewritten every second while the block
    runs (a proof that takes seconds shows it is alive); nothing otherwise."""

    def __init__(self, message: str) -> None:
        import threading

        self._message = message
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live = sys.stderr.isatty()

    def _run(self) -> None:
        import time

        start = time.monotonic()
        while not self._stop.wait(1.0):
            sys.stderr.write(f"\r{self._message}... {time.monotonic() - start:.0f} s")
            sys.stderr.flush()

    def __enter__(self) -> _Ticker:
        if self._live:
            import threading

            sys.stderr.write(f"{self._message}...")
            sys.stderr.flush()
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            sys.stderr.write("\n")
            sys.stderr.flush()


def _violations(found: Sequence[Violation], err: TextIO) -> int:
    """Exit 1 with one stderr line per violation, or 0."""
    for v in found:
        err.write(f"error: violation {v.reason} ({v.period}): {v.detail}\n")
    return EXIT_REFUSED if found else 0


def _statement(args: argparse.Namespace, out: TextIO) -> int:
    from meter.readings import parse_period
    from meter.render import statement_csv, statement_json, statement_text
    from meter.statement import detailed_statement, plain_statement

    if args.period is not None:
        parse_period(args.period)
    detail = bool(getattr(args, "detail", False))
    with _client(args) as client:
        statement = (detailed_statement if detail else plain_statement)(client, args.period)
    if getattr(args, "json", False):
        out.write(statement_json(statement, detail=detail))
    elif getattr(args, "csv", False):
        out.write(statement_csv(statement, detail=detail))
    else:
        out.write(statement_text(statement, detail=detail))
    return _violations(statement.violations, sys.stderr)


def _readings(args: argparse.Namespace, out: TextIO) -> int:
    from meter.openings import OpeningStoreError
    from meter.readings import parse_period
    from meter.render import readings_csv, readings_document, readings_text

    parse_period(args.period)
    home = _home(args)
    with home.openings() as store:
        stored = store.batch(args.period)
    if stored is None:
        raise OpeningStoreError(
            f"the local opening store of {home.meter_id} holds no readings for {args.period}"
            " ('zkgrid meter submit --csv FILE' stores and submits a day)"
        )
    if args.json:
        out.write(json.dumps(readings_document(home.meter_id, stored), indent=2) + "\n")
    elif args.csv:
        out.write(readings_csv(stored))
    else:
        out.write(readings_text(home.meter_id, stored))
    return 0


def _progress(message: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"{message}\n")
        sys.stderr.flush()


def _report_command(args: argparse.Namespace, out: TextIO) -> int:
    from meter.readings import parse_period
    from zkgrid._internal.files import write_new_private

    parse_period(args.period)
    if args.out.exists() and not args.force:
        raise InvalidArgumentError(f"{args.out} exists: choose another --out, or pass --force")
    with _client(args) as client:
        from meter.report import build_report, render_html

        _progress(f"fetching the ledger's bill and tariff of {args.period}...")
        report = build_report(client, args.period)
    _progress("rendering the page...")
    page = render_html(report).encode("utf-8")
    write_new_private(args.out, page, overwrite=args.force)
    detail = report.detail
    receipts = [r for r in (detail.receipt, detail.tariff_receipt, report.batch_receipt.receipt)
                if r is not None]  # fmt: skip
    verified = bool(receipts) and all(r.signature_verified for r in receipts)
    if detail.bill is None:
        check = "no bill on the ledger yet"
    elif detail.violations:
        check = "the ledger's bill does NOT match the local openings"
    else:
        check = "the ledger's bill matches the local openings"
    if args.json:
        doc = {
            "schema": "zkgrid.meter.report/1",
            "meter_id": report.meter_id,
            "period": report.period,
            "path": str(args.out),
            "billed": detail.bill is not None,
            "matches_ledger": detail.bill is not None and not detail.violations,
            "receipts_verified": verified,
            "violations": [v.to_json() for v in detail.violations],
        }
        out.write(json.dumps(doc, indent=2) + "\n")
    else:
        status = "receipts verified" if verified else "receipts NOT verified (pin --log-key)"
        out.write(
            f"{report.meter_id} {report.period}: report written to {args.out} (mode 0600);"
            f" {check}; {status}\n"
        )
    return _violations(detail.violations, sys.stderr)


def _backup(args: argparse.Namespace, out: TextIO) -> int:
    from meter.backup import write_backup

    home = _home(args)
    summary = write_backup(home, args.out)
    if args.json:
        doc = {
            "schema": "zkgrid.meter.backup/1",
            "meter_id": summary.meter_id,
            "path": str(args.out),
            "batches": summary.batches,
            "bills": summary.bills,
            "cycle_bills": summary.cycle_bills,
            "digest": summary.digest,
        }
        out.write(json.dumps(doc, indent=2) + "\n")
    else:
        counts = f"{summary.batches} batches and {summary.bills} bills"
        if summary.cycle_bills:
            counts = (
                f"{summary.batches} batches, {summary.bills} bills and {summary.cycle_bills}"
                " cycle bills"
            )
        out.write(
            f"{summary.meter_id}: {counts} backed up to {args.out} (mode 0600,"
            f" {summary.digest}); it holds your readings and blindings: keep it private\n"
        )
    return 0


def _restore(args: argparse.Namespace, out: TextIO) -> int:
    from dataclasses import asdict

    from meter.backup import restore_backup

    home = _home(args)
    summary, result = restore_backup(home, args.source, force=args.force)
    if args.json:
        doc = {
            "schema": "zkgrid.meter.restore/1",
            "meter_id": summary.meter_id,
            "created": summary.created,
            "digest": summary.digest,
            **asdict(result),
        }
        out.write(json.dumps(doc, indent=2) + "\n")
    else:
        out.write(
            f"{summary.meter_id}: backup of {summary.created} checked ({summary.digest});"
            f" batches: {result.batches_added} added, {result.batches_unchanged} already"
            f" here, {result.batches_updated} updated, {result.batches_replaced} replaced;"
            f" bills: {result.bills_added} added, {result.bills_unchanged} already here,"
            f" {result.bills_updated} updated, {result.bills_replaced} replaced; cycle bills:"
            f" {result.cycle_bills_added} added, {result.cycle_bills_unchanged} already here,"
            f" {result.cycle_bills_updated} updated, {result.cycle_bills_replaced} replaced\n"
        )
    return 0


_COMMANDS = {
    "keygen": _keygen,
    "register": _register,
    "revoke": _revoke,
    "csv-convert": _csv_convert,
    "submit": _submit,
    "bill": _bill,
    "statement": _statement,
    "readings": _readings,
    "report": _report_command,
    "backup": _backup,
    "restore": _restore,
}


def report_error(exc: ZkgridError, err: TextIO, prefix: str = "error") -> int:
    """One line on stderr for a typed error, starting with ``prefix``; the exit code (module
    docstring): 2 for an unreachable service or bad local input, 1 for a refusal or an
    answer that does not verify. Shared by ``zkgrid meter`` and ``zkgrid market``."""
    from ledger.errors import LedgerError  # only on this path: argument errors stay fast

    if isinstance(exc, RemoteError):
        if exc.transient:
            err.write(
                f"{prefix}: could not reach the service ({exc}): check --target and that the"
                " service is running, then try again\n"
            )
            return EXIT_BAD_INPUT
        err.write(f"{prefix}: the service refused: {exc}\n")
        return EXIT_REFUSED
    if isinstance(exc, ReceiptError | LedgerError):
        err.write(f"{prefix}: the service's answer does not verify: {exc}\n")
        return EXIT_REFUSED
    err.write(f"{prefix}: {exc}\n")
    if isinstance(exc, InvalidArgumentError | ProofFormatError | PrivateFileError | UsageError):
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
        return report_error(exc, err)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        err.write(f"error: {exc.strerror or exc}{where}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
