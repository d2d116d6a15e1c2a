"""The ``zkgrid`` command: one entry point, subcommands imported only when used.

::

    zkgrid serve ...     run the settlement gRPC service        (service.cli)
    zkgrid meter ...     the meter: keys, readings, submissions (meter.cli)
    zkgrid demo ...      end-to-end demonstration               (cli.demo)
    zkgrid certs ...     development CA and certificates        (service.pki)
    zkgrid witness ...   witness keys, registration, finality   (witness.cli)
    zkgrid tariff ...    publish and show a tariff or a plan    (cli.tariff)
    zkgrid market ...    the neighbourhood market               (cli.market)
    zkgrid log key show  the verifier key clients pin           (service.logkey)

Each subcommand module exposes ``main(argv) -> int`` and parses its own flags
(``zkgrid <command> --help``), so ``zkgrid --help`` stays fast and a missing
optional part never breaks the others.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import cast

__all__ = ["COMMANDS", "main"]

#: command -> (module with ``main(argv)``, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("service.cli", "run the settlement gRPC service"),
    "meter": ("meter.cli", "meter tools: keys, registration, readings, bills"),
    "demo": ("cli.demo", "run the end-to-end demonstration"),
    "certs": ("service.pki", "create a development CA and mutual-TLS certificates"),
    "audit": ("verifier.cli", "audit the ledger against the pinned log key"),
    "ledger": ("service.export", "ledger tools: `ledger export` writes an audit archive"),
    "log": ("service.logkey", "the log's key: `log key show` prints the verifier key to pin"),
    "tariff": (
        "cli.tariff",
        "publish a day's tariff or a billing cycle's plan from a file; show them",
    ),
    "market": (
        "cli.market",
        "the neighbourhood market: enrol, offer, bid, cancel, orders, results, trades, clear",
    ),
    "witness": ("witness.cli", "witness keys, registration and checkpoint finality"),
}


def _usage() -> str:
    lines = ["usage: zkgrid <command> [args...]", "", "commands:"]
    lines += [f"  {name:<8} {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "Run `zkgrid <command> --help` for a command's options."]
    lines += [
        "Every command's exit status: 0 ok; 1 refused (by the service, or a check that"
        " failed) or a violation found; 2 could not run (usage, input files, keys, the"
        " service unreachable)."
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    if args[0] == "--version":
        from zkgrid import __version__

        print(f"zkgrid {__version__}")
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"zkgrid: unknown command {args[0]!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    if args[0] != "serve":
        # A client's terminal gets one line per error, never gRPC C-core's own log lines
        # (handshake failures and the like; the error says what failed and what to do).
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    module = importlib.import_module(command[0])
    entry = cast(Callable[[list[str]], int | None], module.main)
    result = entry(args[1:])
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
