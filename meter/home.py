"""The prosumer's state directory: meter id, private key and opening store.

Layout of a home (mode 0700)::

    meter.json      meter id, interval length, public key (hex): not secret, mode 0600 anyway
    meter.key       the meter's ECDSA P-256 private key, PKCS#8 PEM, mode 0600
    openings.db     the opening store (meter.openings), mode 0600

The default home is ``~/.zkgrid/meter/<meter-id>``; ``ZKGRID_METER_HOME`` (or
``--home``) names the home directory itself.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from meter.openings import (
    OpeningStore,
    check_private_dir,
    check_private_file,
    ensure_private_dir,
    write_private_file,
)
from settlement.records import MeterKey, intervals_per_day, validate_meter_id
from zkgrid._internal.files import read_file, read_private
from zkgrid.errors import InvalidArgumentError, Reason

__all__ = ["HOME_ENV", "MeterHome", "MeterHomeError", "default_home"]

HOME_ENV = "ZKGRID_METER_HOME"
_CONFIG = "meter.json"
_KEY = "meter.key"
#: Bound of the reads of ``meter.json`` and ``meter.key`` (each well under 1 KiB).
_MAX_FILE_BYTES = 64 * 1024


class MeterHomeError(InvalidArgumentError):
    """The meter home is missing, incomplete or already initialised."""

    reason = Reason.METER_HOME


def default_home(meter_id: str | None = None) -> Path:
    """``$ZKGRID_METER_HOME``, else ``~/.zkgrid/meter/<meter_id>``.

    Without ``meter_id`` and without the variable, the only meter under
    ``~/.zkgrid/meter`` (if there is exactly one).
    """
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    base = Path.home() / ".zkgrid" / "meter"
    if meter_id is not None:
        return base / validate_meter_id(meter_id)
    homes = sorted(p for p in base.glob("*") if (p / _CONFIG).is_file()) if base.is_dir() else []
    if len(homes) != 1:
        raise MeterHomeError(
            "which meter? pass --id METER or --home DIR (or set ZKGRID_METER_HOME)"
        )
    return homes[0]


@dataclass(frozen=True)
class MeterHome:
    """An initialised meter home (see the module docstring)."""

    path: Path
    meter_id: str
    interval_minutes: int
    public_key: bytes

    @classmethod
    def create(
        cls,
        path: str | Path,
        meter_id: str,
        interval_minutes: int = 15,
        *,
        key: MeterKey | None = None,
    ) -> MeterHome:
        """Initialise a home: a fresh key (or ``key``), the config and an empty opening store."""
        validate_meter_id(meter_id)
        intervals_per_day(interval_minutes)
        home = Path(path)
        ensure_private_dir(home)
        if (home / _CONFIG).exists() or (home / _KEY).exists():
            raise MeterHomeError(f"{home} already holds a meter (its key is never overwritten)")
        key = key if key is not None else MeterKey.generate()
        write_private_file(home / _KEY, key.to_pem())
        config = {
            "meter_id": meter_id,
            "interval_minutes": interval_minutes,
            "public_key": key.public_key.hex(),
        }
        write_private_file(home / _CONFIG, (json.dumps(config, indent=2) + "\n").encode())
        OpeningStore.in_home(home).close()
        return cls(home, meter_id, interval_minutes, key.public_key)

    @classmethod
    def load(cls, path: str | Path) -> MeterHome:
        """Open an initialised home; checks the directory and the key are private."""
        home = Path(path)
        if not (home / _CONFIG).is_file():
            raise MeterHomeError(f"{home} holds no meter: run 'zkgrid meter keygen' first")
        check_private_dir(home)
        check_private_file(home / _KEY)
        raw = read_file(home / _CONFIG, max_bytes=_MAX_FILE_BYTES)
        try:
            config = json.loads(raw.decode("utf-8"))
            meter_id = validate_meter_id(config["meter_id"])
            interval_minutes = int(config["interval_minutes"])
            public_key = bytes.fromhex(config["public_key"])
        except (ValueError, KeyError, TypeError, RecursionError):
            raise MeterHomeError(f"{home / _CONFIG} is not a valid meter config") from None
        intervals_per_day(interval_minutes)
        return cls(home, meter_id, interval_minutes, public_key)

    def key(self) -> MeterKey:
        """The meter's private key (checked private and matching the config)."""
        path = self.path / _KEY
        key = MeterKey.from_pem(read_private(path, max_bytes=_MAX_FILE_BYTES))
        if key.public_key != self.public_key:
            raise MeterHomeError(f"{path} does not match the public key in {_CONFIG}")
        return key

    def openings(self) -> OpeningStore:
        check_private_dir(self.path)
        return OpeningStore.in_home(self.path)
