"""The auditor's local state: the last checkpoint it accepted and what incremental checks need.

One JSON file (default ``~/.zkgrid/auditor/state.json``), written with mode
0600 in a directory with mode 0700, atomically replaced (temporary file,
``fsync``, ``rename``). It is only written after an audit that found nothing:
a failed audit leaves the previous (good) view in place, so the next run is
compared with what was last known to be right.

Contents (``version`` 1), compact on purpose:

* ``origin``, ``log_key``: the log this state belongs to (a state is refused
  for another log);
* ``checkpoint``: the signed note text of the last accepted checkpoint, and
  ``frontier``: the right frontier of that tree (log2 n hashes,
  :class:`ledger.merkle.CompactRange`), so new leaves extend it without
  re-reading old entries;
* ``meters``: per meter its public key, interval, revocation flag, next
  sequence and last batch hash (the hash chain), and the days it submitted
  batches and bills for, as ``[first, last]`` ranges of proleptic ordinals;
* ``tariffs``: the tariff record of each period (base64 of its canonical bytes);
* ``open_batches``: batches without a bill yet, with their commitments (a later
  bill is verified against them); a billed batch is dropped.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zkgrid._internal.files import PrivateFileError, replace_private
from zkgrid.errors import Reason, ZkgridError

__all__ = [
    "DEFAULT_STATE_PATH",
    "STATE_VERSION",
    "AuditorState",
    "DaySet",
    "MeterView",
    "OpenBatch",
    "StateError",
    "load_state",
    "save_state",
]

STATE_VERSION = 1
_FORMAT = "zkgrid-auditor-state"
DEFAULT_STATE_PATH = Path("~/.zkgrid/auditor/state.json")


class StateError(ZkgridError):
    """The state file cannot be read, parsed or written, or belongs to another log."""

    reason = Reason.AUDITOR_STATE


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise StateError(f"state file: {what} is not a base64 string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise StateError(f"state file: {what} is not valid base64") from None


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StateError(f"state file: {what} is not a non-negative integer")
    return value


def _str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise StateError(f"state file: {what} is not a string")
    return value


def _dict(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StateError(f"state file: {what} is not an object")
    return value


def period_ordinal(period: str) -> int:
    return _dt.date.fromisoformat(period).toordinal()


class DaySet:
    """A set of days (proleptic ordinals), serialised as sorted ``[first, last]`` ranges."""

    __slots__ = ("_days",)

    def __init__(self, days: Iterable[int] = ()) -> None:
        self._days: set[int] = set(days)

    def __contains__(self, day: int) -> bool:
        return day in self._days

    def add(self, day: int) -> None:
        self._days.add(day)

    def __len__(self) -> int:
        return len(self._days)

    def ranges(self) -> list[list[int]]:
        out: list[list[int]] = []
        for day in sorted(self._days):
            if out and out[-1][1] + 1 == day:
                out[-1][1] = day
            else:
                out.append([day, day])
        return out

    @classmethod
    def from_ranges(cls, value: object, what: str) -> DaySet:
        if not isinstance(value, list):
            raise StateError(f"state file: {what} is not a list of ranges")
        days: set[int] = set()
        for item in value:
            if not isinstance(item, list) or len(item) != 2:
                raise StateError(f"state file: {what} holds a malformed range")
            lo, hi = _int(item[0], what), _int(item[1], what)
            if hi < lo or hi - lo > 1_000_000:
                raise StateError(f"state file: {what} holds a malformed range")
            days.update(range(lo, hi + 1))
        return cls(days)


@dataclass
class MeterView:
    """What the log says about one meter so far."""

    public_key: bytes
    interval_minutes: int
    revoked: bool = False
    next_sequence: int = 0
    last_hash: bytes = bytes(32)
    periods: DaySet = field(default_factory=DaySet)
    billed: DaySet = field(default_factory=DaySet)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": _b64(self.public_key),
            "interval": self.interval_minutes,
            "revoked": self.revoked,
            "next": self.next_sequence,
            "last": _b64(self.last_hash),
            "periods": self.periods.ranges(),
            "billed": self.billed.ranges(),
        }

    @classmethod
    def from_json(cls, meter_id: str, raw: object) -> MeterView:
        d = _dict(raw, f"meter {meter_id}")
        revoked = d.get("revoked")
        if not isinstance(revoked, bool):
            raise StateError(f"state file: meter {meter_id}: revoked is not a boolean")
        last = _unb64(d.get("last"), f"meter {meter_id} last hash")
        if len(last) != 32:
            raise StateError(f"state file: meter {meter_id}: last hash is not 32 bytes")
        return cls(
            public_key=_unb64(d.get("key"), f"meter {meter_id} key"),
            interval_minutes=_int(d.get("interval"), f"meter {meter_id} interval"),
            revoked=revoked,
            next_sequence=_int(d.get("next"), f"meter {meter_id} next sequence"),
            last_hash=last,
            periods=DaySet.from_ranges(d.get("periods"), f"meter {meter_id} periods"),
            billed=DaySet.from_ranges(d.get("billed"), f"meter {meter_id} billed"),
        )


@dataclass
class OpenBatch:
    """A batch that has no bill yet: what its bill will be verified against."""

    meter_id: str
    period: str
    interval_minutes: int
    commitments: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "meter": self.meter_id,
            "period": self.period,
            "interval": self.interval_minutes,
            "commitments": _b64(b"".join(self.commitments)),
        }

    @classmethod
    def from_json(cls, raw: object) -> OpenBatch:
        d = _dict(raw, "open batch")
        blob = _unb64(d.get("commitments"), "open batch commitments")
        if len(blob) % 33:
            raise StateError("state file: open batch commitments are not 33-byte points")
        return cls(
            meter_id=_str(d.get("meter"), "open batch meter"),
            period=_str(d.get("period"), "open batch period"),
            interval_minutes=_int(d.get("interval"), "open batch interval"),
            commitments=tuple(blob[i : i + 33] for i in range(0, len(blob), 33)),
        )


@dataclass
class AuditorState:
    """The auditor's view of one log after its last clean audit."""

    origin: str
    log_key: str
    checkpoint: str
    frontier: list[bytes]
    meters: dict[str, MeterView] = field(default_factory=dict)
    tariffs: dict[str, bytes] = field(default_factory=dict)
    open_batches: dict[bytes, OpenBatch] = field(default_factory=dict)
    #: registered witnesses: name -> 48-byte BLS public key
    witnesses: dict[str, bytes] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "version": STATE_VERSION,
            "origin": self.origin,
            "log_key": self.log_key,
            "checkpoint": self.checkpoint,
            "frontier": [_b64(h) for h in self.frontier],
            "meters": {m: v.to_json() for m, v in sorted(self.meters.items())},
            "tariffs": {p: _b64(t) for p, t in sorted(self.tariffs.items())},
            "open_batches": {_b64(h): b.to_json() for h, b in self.open_batches.items()},
            "witnesses": {n: _b64(k) for n, k in sorted(self.witnesses.items())},
        }

    @classmethod
    def from_json(cls, raw: object) -> AuditorState:
        d = _dict(raw, "state")
        if d.get("format") != _FORMAT:
            raise StateError("not a zkgrid auditor state file")
        if d.get("version") != STATE_VERSION:
            raise StateError(f"unsupported auditor state version {d.get('version')!r}")
        frontier_raw = d.get("frontier")
        if not isinstance(frontier_raw, list):
            raise StateError("state file: frontier is not a list")
        frontier = [_unb64(h, "frontier hash") for h in frontier_raw]
        if any(len(h) != 32 for h in frontier):
            raise StateError("state file: a frontier hash is not 32 bytes")
        meters = {
            _str(k, "meter id"): MeterView.from_json(k, v)
            for k, v in _dict(d.get("meters"), "meters").items()
        }
        tariffs = {
            _str(k, "tariff period"): _unb64(v, f"tariff {k}")
            for k, v in _dict(d.get("tariffs"), "tariffs").items()
        }
        open_batches: dict[bytes, OpenBatch] = {}
        for k, v in _dict(d.get("open_batches"), "open batches").items():
            digest = _unb64(k, "open batch hash")
            if len(digest) != 32:
                raise StateError("state file: an open batch hash is not 32 bytes")
            open_batches[digest] = OpenBatch.from_json(v)
        witnesses = {
            _str(k, "witness name"): _unb64(v, f"witness {k}")
            for k, v in _dict(d.get("witnesses", {}), "witnesses").items()
        }
        return cls(
            origin=_str(d.get("origin"), "origin"),
            log_key=_str(d.get("log_key"), "log key"),
            checkpoint=_str(d.get("checkpoint"), "checkpoint"),
            frontier=frontier,
            meters=meters,
            tariffs=tariffs,
            open_batches=open_batches,
            witnesses=witnesses,
        )


def load_state(path: Path) -> AuditorState | None:
    """The state at ``path``, or ``None`` when there is no file yet."""
    try:
        with path.open("rb") as f:
            info = os.fstat(f.fileno())
            if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise StateError(f"state file {path} is accessible by group or others (chmod 600)")
            raw = f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read the state file {path}: {exc.strerror}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, too deep, a huge integer
        raise StateError(f"state file {path} is not valid JSON") from None
    return AuditorState.from_json(data)


def save_state(path: Path, state: AuditorState) -> None:
    """Atomically replace ``path`` with ``state`` (mode 0600, directory created 0700)."""
    data = json.dumps(state.to_json(), separators=(",", ":"), sort_keys=True).encode("utf-8")
    directory = path.parent
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(f"cannot write the state file {path}: {exc.strerror}") from None
    try:
        replace_private(path, data)
    except PrivateFileError as exc:
        raise StateError(f"cannot write the state file: {exc}") from None
