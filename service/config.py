"""Configuration of the settlement server (``zkgrid serve``): flags, environment, file, checks.

Every setting has a command-line flag, an environment variable (:data:`ENV`) and a key
of the same name in the TOML configuration file (``--config``, :mod:`service.config_file`);
precedence: flag > environment > file > default. :meth:`ServiceConfig.validate` refuses
inconsistent settings before anything is opened:

* either mutual TLS (``--tls-cert``, ``--tls-key`` and ``--client-ca`` all set)
  or ``--insecure``, never both, never neither;
* ``--insecure`` only on a loopback listen address (``127.0.0.0/8``, ``::1``,
  ``localhost``; the one parser is :mod:`zkgrid._internal.channels`): in insecure
  mode callers name their own role in metadata.

The checkpoint key (``--log-key``) is an Ed25519 private key in PKCS#8 PEM,
created with mode 0600 when the file does not exist; an existing key file that
group or others can access is refused (``chmod 600`` it), as is a symbolic link
(:mod:`zkgrid._internal.files`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from zkgrid._internal.channels import (
    MAX_PEM_BYTES,
    ChannelConfigError,
    is_loopback_host,
    split_host_port,
)
from zkgrid._internal.files import (
    read_file,
    read_private,
)
from zkgrid.errors import InvalidArgumentError, Reason

if TYPE_CHECKING:  # pragma: no cover - imported by load_log_key (a fast `zkgrid serve --help`)
    from ledger.checkpoint import CheckpointSigner

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_DB",
    "DEFAULT_LISTEN",
    "DEFAULT_LOG_KEY",
    "DEFAULT_ORIGIN",
    "ENV",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "MAX_RECEIVE_BYTES",
    "ConfigError",
    "ServiceConfig",
    "default_log_key_path",
    "is_loopback",
    "load_log_key",
    "split_listen",
]

logger = logging.getLogger(__name__)

DEFAULT_DB = "sqlite:///zkgrid-ledger.db"
DEFAULT_LISTEN = "127.0.0.1:50051"
#: The log key's default location (:func:`default_log_key_path`): not the working directory.
DEFAULT_LOG_KEY = "$STATE_DIRECTORY/zkgrid-log.key under systemd, else ~/.zkgrid/zkgrid-log.key"
DEFAULT_ORIGIN = "zkgrid.local/settlement"
#: Largest request accepted (a day of 1-minute readings with its proof is well below it).
MAX_RECEIVE_BYTES = 8 * 1024 * 1024
#: Largest response sent.
MAX_SEND_BYTES = 16 * 1024 * 1024

#: Setting -> environment variable.
ENV: Mapping[str, str] = {
    "db": "ZKGRID_DB",
    "listen": "ZKGRID_LISTEN",
    "tls_cert": "ZKGRID_TLS_CERT",
    "tls_key": "ZKGRID_TLS_KEY",
    "client_ca": "ZKGRID_CLIENT_CA",
    "insecure": "ZKGRID_INSECURE",
    "log_key": "ZKGRID_LOG_KEY",
    "origin": "ZKGRID_ORIGIN",
    "workers": "ZKGRID_WORKERS",
    "grace": "ZKGRID_GRACE",
    "startup_check": "ZKGRID_STARTUP_CHECK",
    "witness_quorum": "ZKGRID_WITNESS_QUORUM",
    "verify_processes": "ZKGRID_VERIFY_PROCESSES",
    "failure_burst": "ZKGRID_FAILURE_BURST",
    "failure_refill_s": "ZKGRID_FAILURE_REFILL_S",
    "late_days": "ZKGRID_LATE_DAYS",
    "admin_listen": "ZKGRID_ADMIN_LISTEN",
    "log_format": "ZKGRID_LOG_FORMAT",
    "log_level": "ZKGRID_LOG_LEVEL",
}
#: The configuration file's own variable (``--config``).
CONFIG_ENV = "ZKGRID_CONFIG"
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

#: RPC worker threads: a request waiting for its proof's micro-batch holds one, so this bounds
#: how many submissions can share a batch (service/verification.py).
DEFAULT_WORKERS = 128

#: Processes that parse and verify range-proof batches: one per two cores (0, in the
#: server process, on a single core).
DEFAULT_VERIFY_PROCESSES = (os.cpu_count() or 1) // 2


#: Failure budgets (service/budgets.py): failures in a row, seconds to forgive one.
DEFAULT_FAILURE_BURST = 1
DEFAULT_FAILURE_REFILL_S = 60.0


def default_log_key_path() -> Path:
    """Where the log key lives unless ``--log-key`` says otherwise, independent of the
    working directory: ``$STATE_DIRECTORY/zkgrid-log.key`` under systemd
    (``StateDirectory=``), else ``~/.zkgrid/zkgrid-log.key``."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    base = Path(state) if state else Path("~/.zkgrid").expanduser()
    return base / "zkgrid-log.key"


class ConfigError(InvalidArgumentError):
    """An inconsistent or unusable server configuration."""

    reason = Reason.CONFIG_INVALID


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (IPv6 as ``[::1]:port``) → ``(host, port)``."""
    try:
        host, port = split_host_port(listen, require_port=True)
    except ChannelConfigError as exc:
        raise ConfigError(f"listen {exc}") from None
    if port is None:  # pragma: no cover - require_port
        raise ConfigError(f"listen address {listen!r} is not host:port")
    return host, port


def is_loopback(host: str) -> bool:
    """True for ``localhost``, ``127.0.0.0/8`` and ``::1`` (never for ``0.0.0.0``, ``[::]``)."""
    return is_loopback_host(host)


def _env_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("", "0", "false", "no", "off"):
        return False
    raise ConfigError(f"{value!r} is not a boolean (use 1/0, true/false)")


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """Everything ``zkgrid serve`` needs; build it with :meth:`from_sources` or directly."""

    db: str = DEFAULT_DB
    listen: str = DEFAULT_LISTEN
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    insecure: bool = False
    log_key: Path = field(default_factory=lambda: default_log_key_path())
    origin: str = DEFAULT_ORIGIN
    workers: int = DEFAULT_WORKERS
    grace: float = 10.0
    startup_check: Literal["full", "quick"] = "full"
    max_receive_bytes: int = MAX_RECEIVE_BYTES
    max_send_bytes: int = MAX_SEND_BYTES
    #: Witness quorum threshold k (a checkpoint is final when k registered witnesses co-signed
    #: it); ``None``: a majority of the witnesses registered at that checkpoint.
    witness_quorum: int | None = None
    #: Processes parsing and verifying range-proof batches (0: in the server process).
    verify_processes: int = 0
    #: Failed verifications a caller may have in a row (service.budgets), and the seconds
    #: for one to be forgiven; 0 failures: no budgets.
    failure_burst: int = DEFAULT_FAILURE_BURST
    failure_refill_s: float = DEFAULT_FAILURE_REFILL_S
    #: Days after a period's end during which its readings are still taken (``None``: no
    #: limit); before the end they never are (settlement-v1.md, "Submission window").
    late_days: int | None = None
    #: ``HOST:PORT`` of the plain-HTTP admin port (``/metrics``, ``/healthz``, ``/readyz``;
    #: :mod:`service.admin`); ``None`` (the default): no admin port.
    admin_listen: str | None = None
    #: Log lines as ``text`` (one human line each) or ``json`` (one object each).
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @classmethod
    def from_sources(
        cls,
        flags: Mapping[str, object],
        environ: Mapping[str, str] | None = None,
        *,
        file: Mapping[str, object] | None = None,
        file_name: str = "the configuration file",
    ) -> ServiceConfig:
        """Flags (``None`` or ``False`` = not given) over environment variables (:data:`ENV`)
        over ``file`` (settings read by :func:`service.config_file.load_config_file`) over
        the defaults. A bad value is a :class:`ConfigError` naming where it came from."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name, var in ENV.items():
            flag = flags.get(name)
            if flag is not None and flag is not False:
                source, value = f"--{name.replace('_', '-')}", flag
            elif var in env:
                source, value = var, env[var]
            elif file is not None and name in file:
                source, value = f"{name} in {file_name}", file[name]
            else:
                continue
            try:
                values[name] = _CONVERT[name](value)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{source}: {exc}") from None
        values.setdefault("verify_processes", DEFAULT_VERIFY_PROCESSES)
        if values.get("log_key") is None:
            values.pop("log_key", None)  # default_log_key_path(), not the working directory
        if not values.get("insecure") and not values.get("origin"):
            # Every deployment names its own log: two logs with one origin could not be
            # told apart by clients, auditors and witnesses.
            raise ConfigError(
                "--origin is required (the log's name, one word, e.g. grid.example/settlement;"
                " also ZKGRID_ORIGIN or origin in the --config file); only --insecure"
                f" development servers default to {DEFAULT_ORIGIN}"
            )
        return cls(**values)  # type: ignore[arg-type]  # each value converted for its field

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]

    def validate(self) -> ServiceConfig:
        """Raise :class:`ConfigError` unless the settings are consistent; return self."""
        host, _port = split_listen(self.listen)
        tls = (self.tls_cert, self.tls_key, self.client_ca)
        if self.insecure:
            if any(p is not None for p in tls):
                raise ConfigError(
                    "--insecure cannot be combined with --tls-cert/--tls-key/--client-ca"
                )
            if not is_loopback(host):
                raise ConfigError(
                    f"--insecure only listens on a loopback address, not {host!r}:"
                    " callers choose their own role in insecure mode"
                )
        elif any(p is None for p in tls):
            raise ConfigError(
                "mutual TLS needs --tls-cert, --tls-key and --client-ca"
                " (or --insecure on a loopback address, for development)"
            )
        if not self.origin or any(c.isspace() or c == "+" for c in self.origin):
            raise ConfigError("--origin must be one word without spaces or '+'")
        if self.workers < 1:
            raise ConfigError("workers must be at least 1")
        if self.grace < 0:
            raise ConfigError("grace must be non-negative")
        if not 0 <= self.verify_processes <= 64:
            raise ConfigError("--verify-processes must be in [0, 64]")
        if self.late_days is not None and not 0 <= self.late_days <= 36_500:
            raise ConfigError("--late-days must be in [0, 36500]")
        if not 0 <= self.failure_burst <= 1_000_000:
            raise ConfigError("--failure-burst must be in [0, 1000000]")
        if not 0 < self.failure_refill_s <= 86_400:
            raise ConfigError("--failure-refill-s must be in (0, 86400] seconds")
        if self.witness_quorum is not None and not 1 <= self.witness_quorum <= 1024:
            raise ConfigError("--witness-quorum must be in [1, 1024]")
        if self.admin_listen is not None:
            try:
                admin_host, admin_port = split_host_port(self.admin_listen, require_port=True)
            except ChannelConfigError as exc:
                raise ConfigError(f"--admin-listen {exc}") from None
            if (admin_host, admin_port) == (host, _port) and admin_port != 0:
                raise ConfigError("--admin-listen must differ from --listen")
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"--log-format must be one of {', '.join(LOG_FORMATS)}")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"--log-level must be one of {', '.join(LOG_LEVELS)}")
        return self

    def tls_material(self) -> tuple[bytes, bytes, bytes]:
        """(server key PEM, server certificate chain PEM, client CA PEM) read from disk.

        The key must be private to its owner (``chmod 600``, not a symbolic link); every
        read is bounded. Raises a :class:`~zkgrid._internal.files.PrivateFileError`.
        """
        if self.tls_cert is None or self.tls_key is None or self.client_ca is None:
            raise ConfigError("mutual TLS needs --tls-cert, --tls-key and --client-ca")
        return (
            read_private(self.tls_key, max_bytes=MAX_PEM_BYTES),
            read_file(self.tls_cert, max_bytes=MAX_PEM_BYTES),
            read_file(self.client_ca, max_bytes=MAX_PEM_BYTES),
        )


def _insecure(value: object) -> bool:
    """``--insecure`` (True), a TOML boolean or ``ZKGRID_INSECURE`` (text)."""
    return value if isinstance(value, bool) else _env_bool(str(value))


def _path(value: object) -> Path | None:
    return None if value is None or value == "" else Path(str(value))


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"{value!r} is not an integer")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an integer") from None


def _float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"{value!r} is not a number")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None


def _optional_int(value: object) -> int | None:
    return None if value == "" else _int(value)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value


def _optional_text(value: object) -> str | None:
    return None if value == "" else _text(value)


def _choice(*choices: str) -> Callable[[object], str]:
    def convert(value: object) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return value

    return convert


def _log_key(value: object) -> Path | None:
    """A path (``~`` expanded), or ``None`` for an empty value (then the default path)."""
    if value == "":
        return None
    return Path(str(value) if isinstance(value, Path) else _text(value)).expanduser()


def _level(value: object) -> str:
    return _choice(*LOG_LEVELS)(value.upper() if isinstance(value, str) else value)


#: Setting -> how a flag's, variable's or file's value becomes the field's.
_CONVERT: Mapping[str, Callable[[object], object]] = {
    "db": _text,
    "listen": _text,
    "tls_cert": _path,
    "tls_key": _path,
    "client_ca": _path,
    "insecure": _insecure,
    "log_key": _log_key,
    "origin": _text,
    "workers": _int,
    "grace": _float,
    "startup_check": _choice("full", "quick"),
    "witness_quorum": _optional_int,
    "verify_processes": _int,
    "failure_burst": _int,
    "failure_refill_s": _float,
    "late_days": _optional_int,
    "admin_listen": _optional_text,
    "log_format": _choice(*LOG_FORMATS),
    "log_level": _level,
}


def load_log_key(path: Path, name: str) -> CheckpointSigner:
    """The Ed25519 checkpoint signer in ``path`` (PKCS#8 PEM), created (mode 0600, with its
    ``.pub``) if missing: :func:`service.logkey.load_log_key`.

    Raises a :class:`~zkgrid._internal.files.PrivateFileError` when the file cannot be
    created or read, is a symbolic link or is accessible to group or others, and
    :class:`ConfigError` when it does not hold an unencrypted Ed25519 key.
    """
    from service.logkey import load_log_key as load

    return load(path, name)[0]
