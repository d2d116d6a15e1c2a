"""The TOML configuration file of ``zkgrid serve`` (``--config FILE`` or ``$ZKGRID_CONFIG``).

One table of settings at the top level, named like the flags with ``_`` for ``-``
(``tls_cert = "server.pem"`` for ``--tls-cert``); ``deploy/zkgrid.toml`` is an example.
Flags and ``ZKGRID_*`` variables override the file (:meth:`ServiceConfig.from_sources
<service.config.ServiceConfig.from_sources>`).

Checked before anything else runs: an unknown key (or table) is an error naming the
key and its line, a value of the wrong TOML type one naming the key, its line and the
type expected. Relative file paths (``tls_cert``, ``tls_key``, ``client_ca``,
``log_key``) are relative to the file's directory, not to the working directory;
``db`` is a URL and is taken as written (give SQLite an absolute path:
``sqlite:////var/lib/zkgrid/ledger.db``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

from service.config import ENV, ConfigError
from zkgrid._internal.files import read_file
from zkgrid.errors import ZkgridError

__all__ = ["MAX_CONFIG_BYTES", "SETTINGS", "load_config_file"]

#: Largest configuration file read.
MAX_CONFIG_BYTES = 1 << 20

#: Key -> the TOML types it accepts (and their name in errors).
SETTINGS: Mapping[str, tuple[tuple[type, ...], str]] = {
    "db": ((str,), "a string (a database URL)"),
    "listen": ((str,), "a string (HOST:PORT)"),
    "tls_cert": ((str,), "a string (a file path)"),
    "tls_key": ((str,), "a string (a file path)"),
    "client_ca": ((str,), "a string (a file path)"),
    "insecure": ((bool,), "a boolean (true or false)"),
    "log_key": ((str,), "a string (a file path)"),
    "origin": ((str,), "a string"),
    "workers": ((int,), "an integer"),
    "grace": ((int, float), "a number of seconds"),
    "startup_check": ((str,), 'a string ("full" or "quick")'),
    "witness_quorum": ((int,), "an integer"),
    "verify_processes": ((int,), "an integer"),
    "failure_burst": ((int,), "an integer"),
    "failure_refill_s": ((int, float), "a number of seconds"),
    "late_days": ((int,), "an integer"),
    "admin_listen": ((str,), "a string (HOST:PORT)"),
    "log_format": ((str,), 'a string ("text" or "json")'),
    "log_level": ((str,), 'a string ("DEBUG", "INFO", "WARNING" or "ERROR")'),
}
_PATHS = frozenset({"tls_cert", "tls_key", "client_ca", "log_key"})
if set(SETTINGS) != set(ENV):  # pragma: no cover - a setting added to one table only
    raise RuntimeError("service.config_file.SETTINGS and service.config.ENV differ")


def _line_of(text: str, key: str) -> int | None:
    """The 1-based line where ``key`` is assigned or opens a table (first one), if found."""
    name = re.escape(key)
    patterns = (
        re.compile(rf"""^\s*(?:{name}|"{name}"|'{name}')\s*[.=]"""),
        re.compile(rf"""^\s*\[\[?\s*(?:{name}|"{name}"|'{name}')\s*[.\]]"""),
    )
    for number, line in enumerate(text.splitlines(), start=1):
        if any(p.match(line) for p in patterns):
            return number
    return None


def _where(path: Path, text: str, key: str) -> str:
    line = _line_of(text, key)
    return f"{path}, line {line}" if line is not None else str(path)


def load_config_file(path: str | Path) -> dict[str, object]:
    """The settings in the TOML file ``path`` (setting -> value; paths resolved).

    Raises :class:`~service.config.ConfigError` for a file that cannot be read, is not
    TOML, or holds an unknown key or a value of the wrong type.
    """
    file = Path(path)
    try:
        raw = read_file(file, max_bytes=MAX_CONFIG_BYTES)
    except ZkgridError as exc:  # a PrivateFileError: the message names the path and the check
        raise ConfigError(f"cannot read the configuration file: {exc}") from None
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigError(f"{file} is not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file} is not valid TOML: {exc}") from None
    base = file.resolve().parent
    settings: dict[str, object] = {}
    for key, value in data.items():
        if key not in SETTINGS:
            known = ", ".join(sorted(SETTINGS))
            raise ConfigError(
                f"{_where(file, text, key)}: unknown key {key!r} (known keys: {known})"
            )
        types, expected = SETTINGS[key]
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise ConfigError(f"{_where(file, text, key)}: {key} must be {expected}")
        if key in _PATHS:
            value = base / Path(str(value)).expanduser() if value else value
        settings[key] = value
    return settings
