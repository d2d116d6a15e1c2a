"""Command-line argument parsing shared by the ``zkgrid`` subcommands.

:class:`OneLineParser` reports a bad command line as a :class:`UsageError`
(one line, exit status 2) instead of printing the usage and exiting.

The client commands' connection flags take their defaults from the environment, all
through this module (:data:`CLIENT_ENV`): ``--target`` from ``ZKGRID_TARGET``, ``--ca``
from ``ZKGRID_CA``, ``--cert`` from ``ZKGRID_CERT``, ``--key`` from ``ZKGRID_KEY`` and
the log's verifier key file from ``ZKGRID_LOG_KEY_FILE``. A flag on the command line
wins over its variable; so do the flags that exclude a variable's flag:
``--insecure`` drops ``ZKGRID_CA``/``ZKGRID_CERT``/``ZKGRID_KEY``, ``--log-key TEXT``
drops ``ZKGRID_LOG_KEY_FILE`` and ``zkgrid audit --archive`` drops them all
(:func:`clearing`). An empty variable counts as unset.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NoReturn

from zkgrid.errors import UsageError

__all__ = [
    "CLIENT_ENV",
    "EXIT_STATUS",
    "NOT_PINNED",
    "OneLineParser",
    "UsageError",
    "add_connection_arguments",
    "add_env_argument",
    "add_strict_argument",
    "check_pinned",
    "clearing",
    "env_default",
    "parse_command_line",
]

#: The one exit-status scheme of every ``zkgrid`` command, as its ``--help`` states it.
EXIT_STATUS = (
    "exit status: 0 ok; 1 refused (by the service, or a check that failed) or a violation"
    " found; 2 could not run (usage, input files, keys, the service unreachable)"
)

#: What a client without a pinned log key is told (refused under --strict, warned otherwise).
NOT_PINNED = (
    "no log key is pinned, so the service's receipts and checkpoints cannot be checked:"
    " pass --log-key-file log.pub (the log's verifier key: `zkgrid log key show` where the"
    " service runs) or set ZKGRID_LOG_KEY_FILE"
)

#: Client connection setting (the flag's ``dest``) -> the environment variable defaulting it.
CLIENT_ENV: Mapping[str, str] = MappingProxyType(
    {
        "target": "ZKGRID_TARGET",
        "ca": "ZKGRID_CA",
        "cert": "ZKGRID_CERT",
        "key": "ZKGRID_KEY",
        "log_key_file": "ZKGRID_LOG_KEY_FILE",
    }
)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser that raises :class:`UsageError` instead of printing the usage and
    exiting (``zkgrid audit`` and ``zkgrid witness``)."""

    def error(self, message: str) -> NoReturn:  # one line, exit 2, no usage dump
        raise UsageError(message)


def env_default(
    setting: str, fallback: str | None = None, *, environ: Mapping[str, str] | None = None
) -> str | None:
    """The default of the client flag ``setting`` (a key of :data:`CLIENT_ENV`): its
    variable when set and not empty, else ``fallback``."""
    value = (os.environ if environ is None else environ).get(CLIENT_ENV[setting], "")
    return value if value else fallback


def add_env_argument(
    container: Any,
    *flags: str,
    setting: str,
    fallback: str | None = None,
    required: bool = False,
    help: str,
    **kwargs: Any,
) -> argparse.Action:
    """``container.add_argument(*flags, ...)`` defaulting to ``setting``'s variable.

    ``required`` holds only while the variable is unset; the help names the variable.
    ``container`` is a parser, an argument group or a mutually exclusive group; ``dest``
    defaults to ``setting``.
    """
    default = env_default(setting, fallback)
    kwargs.setdefault("dest", setting)
    action: argparse.Action = container.add_argument(
        *flags,
        default=default,
        required=required and default is None,
        help=f"{help} (env {CLIENT_ENV[setting]})",
        **kwargs,
    )
    return action


def clearing(settings: Iterable[str], *, flag: bool = False) -> type[argparse.Action]:
    """An argparse action that stores its value (``flag``: ``True``, as ``store_true``) and
    drops the environment's defaults of ``settings``: a value still equal to its default,
    i.e. not given on the command line, becomes ``None``. ``--insecure`` drops the TLS
    files, ``--log-key`` the key file: an explicit flag wins over the environment."""
    dropped = tuple(settings)

    class _Clearing(argparse.Action):
        def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
            if flag:
                kwargs.setdefault("default", False)
                kwargs["nargs"] = 0
            super().__init__(option_strings, dest, **kwargs)

        def __call__(
            self,
            parser: argparse.ArgumentParser,
            namespace: argparse.Namespace,
            values: str | Sequence[Any] | None,
            option_string: str | None = None,
        ) -> None:
            setattr(namespace, self.dest, True if flag else values)
            for setting in dropped:
                default = parser.get_default(setting)
                # `is`: argparse puts the default object itself in the namespace until a
                # flag replaces it, so this is "not given on the command line".
                if default is not None and getattr(namespace, setting, None) is default:
                    setattr(namespace, setting, None)

    return _Clearing


def add_strict_argument(parser: argparse.ArgumentParser) -> None:
    """``--strict`` / ``--no-strict``: whether running without a pinned log key is refused
    (default: refused, except with ``--insecure``)."""
    parser.add_argument(
        "--strict",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="refuse to run without a pinned log key (the default, except with --insecure);"
        " --no-strict only warns",
    )


def check_pinned(
    pinned: bool, *, strict: bool | None, insecure: bool, prog: str, err: Any = None
) -> None:
    """Refuse (:class:`UsageError`) or warn (on ``err``, default stderr) when no log key is
    pinned: refused under ``strict``, which defaults to ``not insecure``."""
    if pinned:
        return
    if strict if strict is not None else not insecure:
        raise UsageError(f"{NOT_PINNED}; --no-strict runs without it")
    import sys

    print(f"{prog}: warning: {NOT_PINNED}", file=err if err is not None else sys.stderr)


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """``--target`` (required unless ZKGRID_TARGET is set), ``--ca``, ``--cert``, ``--key``
    (from their variables), ``--insecure`` (drops the TLS variables) and ``--timeout``:
    the connection flags of the client commands that take no other defaults."""
    add_env_argument(
        parser, "--target", setting="target", required=True, metavar="HOST:PORT",
        help="the zkgrid service",
    )  # fmt: skip
    add_env_argument(
        parser, "--ca", setting="ca", metavar="FILE", help="CA bundle that signed the service"
    )
    add_env_argument(
        parser, "--cert", setting="cert", metavar="FILE", help="client certificate (PEM)"
    )
    add_env_argument(parser, "--key", setting="key", metavar="FILE", help="client key (PEM)")
    parser.add_argument(
        "--insecure",
        action=clearing(("ca", "cert", "key"), flag=True),
        help="plaintext gRPC (loopback development only)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per call (default 30)"
    )


def parse_command_line(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, prog: str
) -> argparse.Namespace | int:
    """The parsed arguments, or the exit status to return at once: 0 after ``--help``, 2
    after a usage error (printed as one line on stderr)."""
    import sys

    try:
        return parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except UsageError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help (or argparse's own exit)
        return 0 if exc.code in (0, None) else 2
