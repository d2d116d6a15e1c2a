"""``zkgrid witness``: witness keys, registration, and the client's finality check.

::

    zkgrid witness keygen --name NAME --out KEYFILE          new BLS key (file mode 0600)
    zkgrid witness registration --key KEYFILE                 print the WITNESS_KEY record (hex)
    zkgrid witness register --target HOST:PORT (TLS | --insecure) --registration HEX|@FILE
                                                              the utility appends it
    zkgrid witness finality --target HOST:PORT (TLS | --insecure) [--size N]
                            [--log-key KEY | --log-key-file FILE] [--quorum K]
                            [--require-final] [--json]
                                                              "latest N, final up to M"

TLS is ``--ca F --cert F --key F`` (the client certificate names the role: a
utility certificate for ``register``); ``--insecure`` is plaintext to a loopback
development server, where the role is sent as metadata. Co-signing itself is
``zkgrid audit --cosign KEYFILE`` (after a clean audit).

Exit status: 0 done (``finality``: the latest cosigned checkpoint is final; with
``--require-final``, the latest checkpoint itself), 1 refused or not final, 2 could
not run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from zkgrid._internal.cliargs import (
    EXIT_STATUS,
    OneLineParser,
    add_connection_arguments,
    add_env_argument,
    add_strict_argument,
    check_pinned,
    clearing,
    parse_command_line,
)
from zkgrid.errors import VerificationError, ZkgridError

if TYPE_CHECKING:  # pragma: no cover - imported where used: `--help` loads neither BLS nor grpc
    import grpc

    from ledger.checkpoint import CheckpointVerifier
    from zkgrid._internal.channels import Metadata

__all__ = ["main"]

PROG = "zkgrid witness"
#: Bound of a ``--log-key-file`` or ``--registration @FILE`` read (each is one short line).
MAX_TEXT_FILE_BYTES = 1 << 16


def _connection_flags(p: argparse.ArgumentParser) -> None:
    # Defaults from ZKGRID_TARGET, _CA, _CERT, _KEY (zkgrid._internal.cliargs).
    add_connection_arguments(p)


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=PROG,
        description="Witness keys, registration and checkpoint finality.",
        epilog=EXIT_STATUS,
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    keygen = sub.add_parser("keygen", help="generate a witness BLS key (file mode 0600)")
    keygen.add_argument("--name", required=True, help="the witness's name (no spaces or '+')")
    keygen.add_argument("--out", required=True, metavar="KEYFILE", help="new key file")
    reg = sub.add_parser("registration", help="print the WITNESS_KEY record (hex)")
    reg.add_argument("--key", required=True, metavar="KEYFILE", help="the witness's key file")
    register = sub.add_parser("register", help="append a registration (utility role)")
    _connection_flags(register)
    register.add_argument(
        "--registration", required=True, metavar="HEX|@FILE", help="the record, or @file with it"
    )
    register.add_argument("--json", action="store_true", help="the outcome as JSON on stdout")
    fin = sub.add_parser("finality", help="check a cosigned checkpoint is final")
    _connection_flags(fin)
    fin.add_argument("--size", type=int, metavar="N", help="tree size (default: latest cosigned)")
    log_key = fin.add_mutually_exclusive_group()
    log_key.add_argument(
        "--log-key", metavar="KEY", action=clearing(("log_key_file",)),
        help="the log's verifier key",
    )  # fmt: skip
    add_env_argument(
        log_key, "--log-key-file", setting="log_key_file", metavar="FILE",
        help="a file holding the verifier key",
    )  # fmt: skip
    add_strict_argument(fin)
    fin.add_argument(
        "--quorum", type=int, metavar="K", help="signers needed (default: the service's k)"
    )
    fin.add_argument(
        "--require-final",
        action="store_true",
        help="exit 1 unless the latest checkpoint itself is final (default: the latest"
        " cosigned one is)",
    )
    fin.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    return p


def _read_text(path: str, what: str) -> str:
    """The UTF-8 text of a small public file, as a :class:`~witness.cosign.CosignError` when
    it cannot be read (missing, not a regular file, over :data:`MAX_TEXT_FILE_BYTES`)."""
    from witness.cosign import CosignError
    from zkgrid._internal.files import read_file

    try:
        return read_file(path, max_bytes=MAX_TEXT_FILE_BYTES).decode("utf-8")
    except ZkgridError as exc:  # PrivateFileError: the message names the path and the check
        raise CosignError(f"{what}: {exc}") from exc
    except UnicodeDecodeError:
        raise CosignError(f"{what} {path} is not UTF-8") from None


def _log_key(args: argparse.Namespace) -> CheckpointVerifier | None:
    from ledger.checkpoint import parse_verifier_key

    text: str | None = args.log_key
    if args.log_key_file:
        text = _read_text(args.log_key_file, "the log key file")
    check_pinned(text is not None, strict=args.strict, insecure=args.insecure, prog=PROG)
    return None if text is None else parse_verifier_key(text.strip())


def _registration_bytes(value: str) -> bytes:
    from witness.cosign import CosignError

    text = _read_text(value[1:], "the registration file") if value.startswith("@") else value
    try:
        return bytes.fromhex(text.strip())
    except ValueError:
        raise CosignError("--registration must be hex (as `registration` prints it)") from None


def _keygen(args: argparse.Namespace) -> int:
    from witness.keys import WitnessKey

    key = WitnessKey.generate(args.name)
    key.save(args.out)
    print(f"witness {key.name}: public key {key.public_key.hex()}")
    print(f"key written to {args.out} (mode 0600); next: {PROG} registration --key {args.out}")
    return 0


def _registration(args: argparse.Namespace) -> int:
    from witness.keys import WitnessKey

    print(WitnessKey.load(args.key).registration().encode().hex())
    return 0


def _open_channel(args: argparse.Namespace, *, role: str) -> tuple[grpc.Channel, Metadata]:
    """The channel of the connection flags (:func:`witness.cosign.open_channel`)."""
    from witness.cosign import open_channel

    return open_channel(
        args.target, ca=args.ca, cert=args.cert, key=args.key, insecure=args.insecure, role=role
    )


def _register(args: argparse.Namespace) -> int:
    import grpc

    from ledger.cosignature import WitnessRegistration
    from zkgrid._internal.rpc import remote_error
    from zkgrid.settlement.v1 import witness_pb2, witness_pb2_grpc

    payload = _registration_bytes(args.registration)
    registration = WitnessRegistration.decode(payload)  # checked here too: fail before sending
    channel, metadata = _open_channel(args, role="utility")
    try:
        response = witness_pb2_grpc.WitnessServiceStub(channel).RegisterWitness(
            witness_pb2.RegisterWitnessRequest(registration=payload),
            metadata=metadata,
            timeout=args.timeout,
        )
    except grpc.RpcError as exc:
        error = remote_error(exc, "RegisterWitness")
        if error.transient:
            print(
                f"{PROG}: could not reach the service: {error}; check --target and that"
                " `zkgrid serve` is running, then try again",
                file=sys.stderr,
            )
            return 2
        print(f"{PROG}: the service refused: {error.code.name}: {error}", file=sys.stderr)
        return 1
    finally:
        channel.close()
    index = response.receipt.ledger_index
    if args.json:
        import json

        print(json.dumps({"name": registration.name, "ledger_index": index}))
    else:
        print(f"registered witness {registration.name} at ledger index {index}")
    return 0


def _latest_size(
    channel: grpc.Channel, metadata: Metadata, log_key: CheckpointVerifier | None, timeout: float
) -> int:
    """The size of the service's latest checkpoint (its signature checked with ``log_key``)."""
    import grpc

    from ledger.checkpoint import SignedCheckpoint, verify_checkpoint
    from witness.cosign import CosignError
    from zkgrid._internal.rpc import remote_error
    from zkgrid.settlement.v1 import ledger_pb2, ledger_pb2_grpc

    try:
        response = ledger_pb2_grpc.LedgerServiceStub(channel).GetCheckpoint(
            ledger_pb2.GetCheckpointRequest(), metadata=metadata, timeout=timeout
        )
    except grpc.RpcError as exc:
        raise CosignError(str(remote_error(exc, "GetCheckpoint"))) from None
    if log_key is not None:
        return verify_checkpoint(response.checkpoint, log_key).size
    return SignedCheckpoint.from_text(response.checkpoint).checkpoint.size


def _finality(args: argparse.Namespace) -> int:
    import json

    from ledger.cosignature import FinalityError
    from witness.cosign import check_finality

    log_key = _log_key(args)
    channel, metadata = _open_channel(args, role="auditor")
    try:
        latest = _latest_size(channel, metadata, log_key, args.timeout)
        try:
            report = check_finality(
                channel,
                tree_size=args.size,
                log_key=log_key,
                threshold=args.quorum,
                metadata=metadata,
                timeout=args.timeout,
            )
        except (FinalityError, VerificationError) as exc:
            if args.json:
                print(json.dumps({"latest_size": latest, "final_size": None, "final": False,
                                  "reason": str(exc.reason)}))  # fmt: skip
            print(
                f"{PROG}: NOT FINAL: latest checkpoint {latest}, none final:"
                f" {exc.reason}: {exc}",
                file=sys.stderr,
            )
            return 1
    finally:
        channel.close()
    cp = report.checkpoint
    latest_is_final = cp.size >= latest
    if args.json:
        print(
            json.dumps(
                {
                    "latest_size": latest,
                    "final_size": cp.size,
                    "final": True,
                    "latest_is_final": latest_is_final,
                    "root": cp.root.hex(),
                    "signers": list(report.signers),
                    "quorum": [report.quorum.threshold, report.quorum.total],
                    "log_signature_checked": log_key is not None,
                }
            )
        )
    else:
        print(
            f"latest checkpoint {latest}, final up to {cp.size}: root {cp.root.hex()}, signed by"
            f" {len(report.signers)} of {report.quorum.total} witnesses (quorum"
            f" {report.quorum}): {', '.join(report.signers)}"
            + ("" if log_key is not None else " [log signature not checked: pass --log-key]")
        )
    if args.require_final and not latest_is_final:
        print(
            f"{PROG}: NOT FINAL: the latest checkpoint ({latest}) is not final yet (final up to"
            f" {cp.size}); wait for the witnesses to co-sign it",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_command_line(_parser(), argv, PROG)
    if isinstance(args, int):
        return args
    commands = {
        "keygen": _keygen,
        "registration": _registration,
        "register": _register,
        "finality": _finality,
    }
    try:
        return commands[args.command](args)
    except ZkgridError as exc:
        print(f"{PROG}: {exc.reason}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
