"""``zkgrid audit``: audit a zkgrid ledger from an export archive or a running service.

    zkgrid audit (--archive FILE | --target HOST:PORT (--ca F --cert F --key F | --insecure))
                 (--log-key KEY | --log-key-file FILE)
                 [--state PATH | --no-state] [--since-last] [--json] [--workers N]

Exit status: 0 when every check holds, 1 when a violation was found, 2 when
the audit could not run (bad arguments, unreadable or truncated input, a log
key that cannot be parsed, an unusable state file): one line on stderr.

Start-up: the arguments are parsed first; the audit engine (the proof system,
``grpc``, ``rich``) is imported only to run an audit, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from verifier.defaults import DEFAULT_STATE_DIR, default_state_path
from zkgrid._internal.cliargs import (
    EXIT_STATUS,
    OneLineParser,
    add_env_argument,
    clearing,
    env_default,
)
from zkgrid._internal.files import PrivateFileError, read_file
from zkgrid.errors import UsageError, ZkgridError

if TYPE_CHECKING:  # pragma: no cover - imported by _run, after the arguments are parsed
    from ledger.checkpoint import CheckpointVerifier
    from verifier.audit import AuditResult

__all__ = ["main"]

PROG = "zkgrid audit"
#: Largest --log-key-file read (a verifier key is one short line).
_MAX_KEY_FILE_BYTES = 64 * 1024


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=PROG,
        description="Audit a zkgrid ledger against the log's pinned checkpoint key.",
        epilog=EXIT_STATUS,
    )
    # Defaults from ZKGRID_TARGET, _CA, _CERT, _KEY, _LOG_KEY_FILE (zkgrid._internal.cliargs);
    # --archive drops them, --insecure the TLS files, --log-key the key file.
    src = p.add_mutually_exclusive_group(required=env_default("target") is None)
    src.add_argument(
        "--archive",
        metavar="FILE",
        action=clearing(("target", "ca", "cert", "key")),
        help="an archive from `zkgrid ledger export`",
    )
    add_env_argument(
        src, "--target", setting="target", metavar="HOST:PORT", help="a running zkgrid service"
    )
    add_env_argument(
        p, "--ca", setting="ca", metavar="FILE", help="CA bundle that signed the service (PEM)"
    )
    add_env_argument(
        p, "--cert", setting="cert", metavar="FILE", help="the auditor's client certificate (PEM)"
    )
    add_env_argument(
        p, "--key", setting="key", metavar="FILE", help="the auditor's client key (PEM)"
    )
    p.add_argument(
        "--insecure",
        action=clearing(("ca", "cert", "key"), flag=True),
        help="plaintext gRPC (loopback development only)",
    )
    key = p.add_mutually_exclusive_group(required=env_default("log_key_file") is None)
    key.add_argument(
        "--log-key",
        metavar="KEY",
        action=clearing(("log_key_file",)),
        help="the log's verifier key <name>+<id>+<key>",
    )
    add_env_argument(
        key, "--log-key-file", setting="log_key_file", metavar="FILE",
        help="a file holding the verifier key",
    )  # fmt: skip
    state = p.add_mutually_exclusive_group()
    state.add_argument(
        "--state",
        metavar="PATH",
        help=f"the auditor's state file (default: one per log in {DEFAULT_STATE_DIR},"
        " named by the log's origin and key id)",
    )
    state.add_argument(
        "--no-state", action="store_true", help="neither read nor write a state file"
    )
    p.add_argument(
        "--since-last",
        action="store_true",
        help="audit only the entries after the last clean audit in the state file",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="processes for proof verification (default: one per core; 1 = in-process)",
    )
    p.add_argument(
        "--cosign",
        metavar="KEYFILE",
        help="after a clean audit of --target, co-sign its checkpoint with this witness key",
    )
    p.add_argument(
        "--witness-state",
        metavar="PATH",
        help="the witness's memory for --cosign (default ~/.zkgrid/witness/<name>.json)",
    )
    return p


def _log_key(args: argparse.Namespace) -> CheckpointVerifier:
    from ledger.checkpoint import parse_verifier_key
    from ledger.errors import LedgerFormatError
    from verifier.audit import AuditError

    if args.log_key_file:
        try:
            raw = read_file(Path(args.log_key_file), max_bytes=_MAX_KEY_FILE_BYTES)
            text = raw.decode("utf-8").strip()
        except (PrivateFileError, UnicodeDecodeError) as exc:
            raise AuditError(f"cannot read the log key file {args.log_key_file}: {exc}") from None
    else:
        text = args.log_key.strip()
    try:
        return parse_verifier_key(text)
    except LedgerFormatError as exc:
        raise AuditError(f"the log key is not a verifier key: {exc}") from None


def _run(args: argparse.Namespace) -> AuditResult:
    from verifier.audit import AuditError, AuditOptions, Auditor
    from verifier.sources import ArchiveSource, GrpcSource, TlsFiles
    from verifier.state import load_state, save_state

    if args.since_last and args.no_state:
        raise AuditError("--since-last needs a state file (drop --no-state)")
    if args.workers is not None and args.workers < 0:
        raise AuditError("--workers must be >= 0")
    if args.cosign and not args.target:
        raise AuditError("--cosign needs --target (a running service)")
    key = _log_key(args)
    state_path = (
        None
        if args.no_state
        else Path(args.state).expanduser()
        if args.state
        else default_state_path(key.name, key.key_id)
    )
    state = None if state_path is None else load_state(state_path)
    if args.archive:
        if args.insecure or args.ca or args.cert or args.key:
            raise AuditError("TLS flags apply to --target only")
        source: ArchiveSource | GrpcSource = ArchiveSource(args.archive)
    else:
        tls = None
        if not args.insecure:
            if not (args.ca and args.cert and args.key):
                raise AuditError("--target needs --ca, --cert and --key (or --insecure)")
            tls = TlsFiles(args.ca, args.cert, args.key)
        source = GrpcSource(args.target, tls=tls, insecure=args.insecure)
    try:
        options = AuditOptions(log_key=key, since_last=args.since_last, workers=args.workers)
        if args.json or not sys.stderr.isatty():
            result = Auditor(source, options, state).run()
        else:
            from rich.console import Console

            from verifier.report import RichProgress

            with RichProgress(Console(stderr=True)) as progress:
                result = Auditor(source, options, state, progress).run()
    finally:
        source.close()
    if state_path is not None and result.new_state is not None:
        save_state(state_path, result.new_state)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(args_list)
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return 0 if exc.code in (0, None) else 2
    try:
        result = _run(args)
    except ZkgridError as exc:  # AuditError, StateError, ledger format errors
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 2
    except Exception as exc:  # never a traceback: one line, "could not run"
        print(f"{PROG}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        from verifier.report import render_json

        render_json(result, sys.stdout)
    else:
        from rich.console import Console

        from verifier.report import render_human

        render_human(result, Console())
    if result.ok and args.cosign and result.new_state is not None:
        from witness.cosign import run_audit_cosign

        return run_audit_cosign(
            keyfile=args.cosign,
            witness_state=args.witness_state,
            audited_checkpoint=result.new_state.checkpoint,
            log_key=_log_key(args),
            target=args.target,
            ca=args.ca,
            cert=args.cert,
            key=args.key,
            insecure=args.insecure,
            prog=PROG,
        )
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
