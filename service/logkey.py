"""The log's signing key on disk, its verifier key beside it, and ``zkgrid log``.

The signing key is an Ed25519 private key in a PKCS#8 PEM file (mode 0600,
never overwritten). Its verifier key, the C2SP signed-note ``vkey``
``<name>+<key id hex>+<base64(0x01 || public key)>`` that clients pin, is
written next to it as ``<key file>.pub`` (mode 0644) whenever the key is created
or loaded, so an operator can hand it out without touching the secret;
``zkgrid log key show`` prints it.

``zkgrid serve`` loads the key with :func:`load_log_key`. A missing key file is
created only for a ledger that does not exist yet: the store refuses a ledger
signed by another key (:class:`service.storage.LogKeyMismatch`), and
:func:`service.server.serve` turns that into "restore the key" when the file was
missing, so a lost key never silently becomes a new log.

::

    zkgrid log key init --origin NAME [--key FILE] [--json]    a new key and its .pub
    zkgrid log key show [--key FILE] [--origin NAME] [--json]
    zkgrid log key path                          the default key file

Exit status: 0 done, 1 refused (``init`` over an existing key file), 2 could not run (no
key, unreadable or exposed key file).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from service.config import ConfigError, default_log_key_path
from zkgrid._internal.cliargs import EXIT_STATUS, OneLineParser, UsageError, parse_command_line
from zkgrid._internal.files import (
    FileExistsRefusedError,
    atomic_writer,
    read_file,
    read_private,
    write_new_private,
)
from zkgrid.errors import ZkgridError

if TYPE_CHECKING:  # pragma: no cover - imported where keys are made (a fast `--help`)
    from ledger.checkpoint import CheckpointSigner

__all__ = [
    "MAX_LOG_KEY_BYTES",
    "LogKeyError",
    "create_log_key",
    "default_log_key_path",
    "load_log_key",
    "main",
    "public_key_path",
    "read_log_key",
    "save_log_key",
]

logger = logging.getLogger(__name__)

#: Largest log key file read (a PKCS#8 PEM Ed25519 key is about 120 bytes).
MAX_LOG_KEY_BYTES = 64 * 1024
PROG = "zkgrid log"


class LogKeyError(ConfigError):
    """The log key file is missing where it must exist, or does not hold an Ed25519 key, or
    its ``.pub`` holds another key (``CONFIG_INVALID``)."""


def public_key_path(key_path: Path) -> Path:
    """``<key file>.pub``: where the verifier key is written."""
    return key_path.with_name(key_path.name + ".pub")


def _write_public(key_path: Path, signer: CheckpointSigner) -> None:
    """Write (or check) ``<key>.pub``: the verifier key and a newline, mode 0644."""
    pub = public_key_path(key_path)
    text = signer.verifier_key() + "\n"
    if pub.exists():
        try:
            current = read_file(pub, max_bytes=MAX_LOG_KEY_BYTES).decode("utf-8")
        except (ZkgridError, UnicodeDecodeError):
            current = ""
        if current.strip() == text.strip():
            return
        if current.strip():
            raise LogKeyError(
                f"{pub} holds another verifier key than {key_path}: move it away (clients may"
                " have pinned it) and start again to write the right one"
            )
    with atomic_writer(pub, mode=0o644) as out:
        out.write(text.encode("utf-8"))


def save_log_key(path: Path, signer: CheckpointSigner) -> None:
    """Write ``signer``'s key to ``path`` (PKCS#8 PEM, mode 0600, never overwriting a file:
    :class:`~zkgrid._internal.files.FileExistsRefusedError`) and its ``.pub``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(signer.private_bytes())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_new_private(path, pem)
    _write_public(path, signer)
    logger.info("wrote the log key to %s (key id %s)", path, signer.key_id.hex())


def create_log_key(path: Path, name: str) -> CheckpointSigner:
    """A new key saved to ``path`` (:func:`save_log_key`)."""
    from ledger.checkpoint import CheckpointSigner

    signer = CheckpointSigner.generate(name)
    save_log_key(path, signer)
    return signer


def read_log_key(path: Path, name: str) -> CheckpointSigner:
    """The key in ``path`` (it must exist and be private to its owner); writes its ``.pub``
    when missing."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger.checkpoint import CheckpointSigner

    data = read_private(path, max_bytes=MAX_LOG_KEY_BYTES)
    try:
        loaded = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise LogKeyError(f"{path} is not an unencrypted PKCS#8 PEM private key") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise LogKeyError(f"{path} does not hold an Ed25519 key")
    signer = CheckpointSigner(name, loaded)
    _write_public(path, signer)
    return signer


def load_log_key(path: Path, name: str, *, create: bool = True) -> tuple[CheckpointSigner, bool]:
    """The signer in ``path`` and whether it was just created (``create``: make a new key
    when the file does not exist; otherwise :class:`LogKeyError`)."""
    if os.path.lexists(path):
        return read_log_key(path, name), False
    if not create:
        raise LogKeyError(f"the log key {path} does not exist")
    try:
        return create_log_key(path, name), True
    except FileExistsRefusedError:  # created concurrently: read it like any existing key
        return read_log_key(path, name), False


# ----------------------------------------------------------------------------- command


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=PROG, description="The log's signing key and its verifier key.", epilog=EXIT_STATUS
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    key = sub.add_parser("key", help="the log key")
    key_sub = key.add_subparsers(dest="key_command", required=True, parser_class=OneLineParser)
    show = key_sub.add_parser("show", help="print the verifier key clients pin (C2SP vkey)")
    show.add_argument(
        "--key",
        metavar="FILE",
        help="the signing key file (default: $ZKGRID_LOG_KEY, else the default path)",
    )
    show.add_argument(
        "--origin",
        metavar="NAME",
        help="the log's name as `zkgrid serve --origin` gives it (default: $ZKGRID_ORIGIN,"
        " else what the .pub next to the key says)",
    )
    show.add_argument("--json", action="store_true", help="machine-readable output")
    init = key_sub.add_parser(
        "init", help="create the log's signing key (never replacing one) and its .pub"
    )
    init.add_argument(
        "--key", metavar="FILE", help="the key file to create (default: the default path)"
    )
    init.add_argument(
        "--origin", required=True, metavar="NAME", help="the log's name (`zkgrid serve --origin`)"
    )
    init.add_argument("--json", action="store_true", help="machine-readable output")
    key_sub.add_parser("path", help="print the default key file path")
    return p


def _init(args: argparse.Namespace) -> int:
    path = Path(args.key or os.environ.get("ZKGRID_LOG_KEY") or default_log_key_path())
    signer = create_log_key(path, args.origin)  # FileExistsRefusedError: never replaced
    pub = public_key_path(path)
    if args.json:
        print(json.dumps({"vkey": signer.verifier_key(), "key_id": signer.key_id.hex(),
                          "key_file": str(path), "pub_file": str(pub)}))  # fmt: skip
    else:
        print(signer.verifier_key())
        print(
            f"created {path} (mode 0600: back it up, it signs every checkpoint) and {pub}"
            " (the verifier key clients pin)",
            file=sys.stderr,
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    from ledger.checkpoint import parse_verifier_key

    path = Path(args.key or os.environ.get("ZKGRID_LOG_KEY") or default_log_key_path())
    origin = args.origin or os.environ.get("ZKGRID_ORIGIN")
    if origin is None:
        pub = public_key_path(path)
        if not pub.exists():
            raise UsageError(
                f"{pub} does not exist: pass --origin (the log's name) to derive the key"
            )
        origin = parse_verifier_key(
            read_file(pub, max_bytes=MAX_LOG_KEY_BYTES).decode("utf-8").strip()
        ).name
    if not os.path.lexists(path):
        raise LogKeyError(
            f"the log key {path} does not exist (`zkgrid serve` creates it for a new ledger;"
            " pass --key FILE for another one)"
        )
    signer = read_log_key(path, origin)
    if args.json:
        print(
            json.dumps(
                {
                    "vkey": signer.verifier_key(),
                    "name": signer.name,
                    "key_id": signer.key_id.hex(),
                    "key_file": str(path),
                    "pub_file": str(public_key_path(path)),
                }
            )
        )
    else:
        print(signer.verifier_key())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_command_line(_parser(), argv, PROG)
    if isinstance(args, int):
        return args
    try:
        if args.key_command == "path":
            print(default_log_key_path())
            return 0
        if args.key_command == "init":
            return _init(args)
        return _show(args)
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except FileExistsRefusedError as exc:
        print(f"{PROG}: {exc} (a log key is never replaced: it signs the ledger)", file=sys.stderr)
        return 1
    except ZkgridError as exc:
        print(f"{PROG}: {exc.reason}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
