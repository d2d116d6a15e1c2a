"""The auditor's local state: the last checkpoint it accepted and what incremental checks need.

One JSON file per log (default ``~/.zkgrid/auditor/<key name>+<key id>.json``), with mode
0600 in a directory with mode 0700, atomically replaced (temporary file,
``fsync``, ``rename``). It is only written after an audit that found nothing:
a failed audit leaves the previous (good) view in place, so the next run is
compared with what was last known to be right.

Contents (``version`` 3):

* ``origin``, ``log_key``: the log this state belongs to (a state is refused
  for another log);
* ``checkpoint``: the signed note text of the last accepted checkpoint, and
  ``frontier``: the right frontier of that tree (log2 n hashes,
  :class:`ledger.merkle.CompactRange`), so new leaves extend it without
  re-reading old entries;
* ``ledger``: the state of the settlement rules (:class:`settlement.rules.LedgerState`)
  after that checkpoint: per meter its registration record, its revocation, the
  hash chain (next sequence, last batch hash), and per period the index and hash
  of its batch and of its bill (a cycle bill under every period of its cycle); the
  tariff record of each period with its index; the cycle tariff records (records
  version 2) with their indices (``cycle_tariffs``: ``[[index, record], ...]`` in
  log order, keyed again by their hashes when read); the registered witnesses'
  names and keys;
* ``open_batches``: batches without a bill yet, with their commitments (a later
  bill's or cycle bill's proof is verified against them); a billed batch is dropped;
* ``market``: the market entries the rules applied (enrolments, market days, orders,
  cancellations, clearings), ``[[index, kind, payload], ...]`` in log order, replayed
  into the market's state on load (a file without it has none); the delivery steps and
  defaults (kinds 13..15) among them;
* ``market_batches``: the commitments of the batches the delivery steps' proofs (C8)
  still need (a market participant's batch of a period whose trades of that meter are not
  all settled), as ``open_batches`` (a file without it has none).

Older versions cannot resume the rules: version 1 (before the rules were one
state machine) kept days, not batch and bill hashes; version 2 did not keep the
cycle tariffs, so after a log with cycle records it resumed without them (and no
file says whether its log had any). Both are still read, for their checkpoint and
frontier (a full audit still detects a rewritten history against them and then
writes version 3), and ``--since-last`` refuses them until one full audit has run.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.entries import EntryKind
from settlement import rules
from settlement.market import MARKET_KINDS
from settlement.periods import validate_period
from settlement.records import (
    CycleTariff,
    MeterRegistration,
    MeterRevocation,
    RecordFormatError,
    Tariff,
)
from settlement.rules import LedgerState, MeterState, Ref
from verifier.defaults import DEFAULT_STATE_PATH
from zkgrid._internal.files import PrivateFileError, read_private, replace_private
from zkgrid.errors import Reason, ZkgridError

__all__ = [
    "DEFAULT_STATE_PATH",
    "OLD_STATE_VERSIONS",
    "STATE_VERSION",
    "AuditorState",
    "OpenBatch",
    "StateError",
    "load_state",
    "save_state",
]

STATE_VERSION = 3
#: Versions still read for their checkpoint and frontier only, with why they cannot
#: resume the rules.
OLD_STATE_VERSIONS = {
    1: "it kept days, not the batch and bill hashes",
    2: "it did not keep the cycle tariffs",
}
_FORMAT = "zkgrid-auditor-state"


#: Largest state file read: the rules' state grows with meters and periods (about a
#: hundred bytes per meter and period), so this is years of a large community.
MAX_STATE_BYTES = 1 << 30


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


def _hash(value: object, what: str) -> bytes:
    digest = _unb64(value, what)
    if len(digest) != 32:
        raise StateError(f"state file: {what} is not 32 bytes")
    return digest


def _refs(value: object, what: str) -> dict[str, Ref]:
    """``{period: [index, base64 digest]}``"""
    out: dict[str, Ref] = {}
    for period, raw in _dict(value, what).items():
        _period(period, what)
        if not isinstance(raw, list) or len(raw) != 2:
            raise StateError(f"state file: {what} {period} is not [index, hash]")
        out[period] = Ref(_int(raw[0], f"{what} index"), _hash(raw[1], f"{what} hash"))
    return out


def _period(period: object, what: str) -> str:
    try:
        return validate_period(period)
    except RecordFormatError:
        raise StateError(f"state file: {what}: {period!r} is not a period") from None


def _record_bytes(value: object, what: str) -> bytes:
    return _unb64(value, what)


def _meter_to_json(meter: MeterState) -> dict[str, Any]:
    return {
        "registration": _b64(meter.registration.encode()),
        "at": meter.ref.index,
        "revocation": None if meter.revocation is None else _b64(meter.revocation.encode()),
        "next": meter.next_sequence,
        "last": _b64(meter.last_batch_hash),
        "batches": {p: [r.index, _b64(r.digest)] for p, r in sorted(meter.batches.items())},
        "bills": {p: [r.index, _b64(r.digest)] for p, r in sorted(meter.bills.items())},
    }


def _meter_from_json(meter_id: str, raw: object) -> MeterState:
    d = _dict(raw, f"meter {meter_id}")
    what = f"meter {meter_id}"
    data = _record_bytes(d.get("registration"), f"{what} registration")
    try:
        registration = MeterRegistration.decode(data)
        revocation_raw = d.get("revocation")
        revocation = (
            None
            if revocation_raw is None
            else MeterRevocation.decode(_record_bytes(revocation_raw, f"{what} revocation"))
        )
    except RecordFormatError as exc:
        raise StateError(f"state file: {what} holds a malformed record: {exc}") from None
    if registration.meter_id != meter_id or (
        revocation is not None and revocation.meter_id != meter_id
    ):
        raise StateError(f"state file: {what} holds another meter's record")
    return MeterState(
        registration=registration,
        ref=Ref(_int(d.get("at"), f"{what} index"), hashlib.sha256(data).digest()),
        revocation=revocation,
        next_sequence=_int(d.get("next"), f"{what} next sequence"),
        last_batch_hash=_hash(d.get("last"), f"{what} last hash"),
        batches=_refs(d.get("batches"), f"{what} batches"),
        bills=_refs(d.get("bills"), f"{what} bills"),
    )


def _ledger_to_json(ledger: LedgerState) -> dict[str, Any]:
    return {
        "meters": {m: _meter_to_json(v) for m, v in sorted(ledger.meters.items())},
        "tariffs": {
            p: [ref.index, _b64(t.encode())] for p, (t, ref) in sorted(ledger.tariffs.items())
        },
        "cycle_tariffs": [
            [ref.index, _b64(t.encode())]
            for t, ref in sorted(ledger.cycle_tariffs.values(), key=lambda item: item[1].index)
        ],
        "witnesses": {n: _b64(k) for n, k in sorted(ledger.witnesses.items())},
    }


def _cycle_tariffs_from_json(raw: object) -> dict[bytes, tuple[CycleTariff, Ref]]:
    """``[[index, base64 record], ...]`` -> tariff hash -> (tariff, ref)."""
    if not isinstance(raw, list):
        raise StateError("state file: cycle tariffs is not a list")
    out: dict[bytes, tuple[CycleTariff, Ref]] = {}
    for n, item in enumerate(raw):
        what = f"cycle tariff {n}"
        if not isinstance(item, list) or len(item) != 2:
            raise StateError(f"state file: {what} is not [index, record]")
        data = _record_bytes(item[1], what)
        try:
            tariff = CycleTariff.decode(data)
        except RecordFormatError as exc:
            raise StateError(f"state file: {what} is malformed: {exc}") from None
        digest = hashlib.sha256(data).digest()
        if digest in out:
            raise StateError(f"state file: {what} is listed twice")
        out[digest] = (tariff, Ref(_int(item[0], f"{what} index"), digest))
    return out


def _ledger_from_json(raw: object) -> LedgerState:
    d = _dict(raw, "ledger")
    meters = {
        _str(k, "meter id"): _meter_from_json(k, v)
        for k, v in _dict(d.get("meters"), "meters").items()
    }
    tariffs: dict[str, tuple[Tariff, Ref]] = {}
    for period, item in _dict(d.get("tariffs"), "tariffs").items():
        _period(period, "tariffs")
        if not isinstance(item, list) or len(item) != 2:
            raise StateError(f"state file: tariff {period} is not [index, record]")
        data = _record_bytes(item[1], f"tariff {period}")
        try:
            tariff = Tariff.decode(data)
        except RecordFormatError as exc:
            raise StateError(f"state file: tariff {period} is malformed: {exc}") from None
        if tariff.period != period:
            raise StateError(f"state file: the tariff under {period} is another period's")
        ref = Ref(_int(item[0], f"tariff {period} index"), hashlib.sha256(data).digest())
        tariffs[period] = (tariff, ref)
    witnesses = {
        _str(k, "witness name"): _unb64(v, f"witness {k}")
        for k, v in _dict(d.get("witnesses"), "witnesses").items()
    }
    return LedgerState(
        meters=meters,
        tariffs=tariffs,
        witnesses=witnesses,
        cycle_tariffs=_cycle_tariffs_from_json(d.get("cycle_tariffs")),
    )


def _market_from_json(raw: object, ledger: LedgerState) -> list[tuple[int, int, bytes]]:
    """``[[index, kind, base64 payload], ...]`` in log order, replayed into ``ledger``'s
    market state (``rules.apply``: they were judged when first audited)."""
    if not isinstance(raw, list):
        raise StateError("state file: market is not a list")
    out: list[tuple[int, int, bytes]] = []
    previous = -1
    for n, item in enumerate(raw):
        what = f"market entry {n}"
        if not isinstance(item, list) or len(item) != 3:
            raise StateError(f"state file: {what} is not [index, kind, payload]")
        index, kind = _int(item[0], f"{what} index"), _int(item[1], f"{what} kind")
        payload = _record_bytes(item[2], what)
        if index <= previous:
            raise StateError(f"state file: {what} is out of log order")
        previous = index
        try:
            record = rules.decode(EntryKind(kind), payload, kinds=MARKET_KINDS)
        except ValueError:
            raise StateError(f"state file: {what} has an unknown kind") from None
        if isinstance(record, rules.Refusal):
            raise StateError(f"state file: {what} is malformed: {record.detail}")
        try:
            rules.apply(ledger, record, Ref(index, hashlib.sha256(payload).digest()))
        except (KeyError, ValueError) as exc:  # a state the rules never built
            raise StateError(f"state file: {what} does not replay ({type(exc).__name__})") from None
        out.append((index, kind, payload))
    return out


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
    """The auditor's view of one log after its last clean audit.

    ``ledger`` is ``None`` for a file of an older version (:data:`OLD_STATE_VERSIONS`,
    named by ``version``): it then serves as the last accepted checkpoint only
    (``--since-last`` needs one full audit first).
    """

    origin: str
    log_key: str
    checkpoint: str
    frontier: list[bytes]
    ledger: LedgerState | None = field(default_factory=LedgerState)
    open_batches: dict[bytes, OpenBatch] = field(default_factory=dict)
    #: The market's entries the rules applied, ``(index, kind, payload)`` in log order: the
    #: market's state is rebuilt from them on load (replayed with ``rules.apply`` after the
    #: meters), so a resumed audit judges later market entries as a full one does.
    market_entries: list[tuple[int, int, bytes]] = field(default_factory=list)
    #: Batch hash -> the commitments C8 still needs (module docstring).
    market_batches: dict[bytes, OpenBatch] = field(default_factory=dict)
    #: The version of the file it was read from (written: always :data:`STATE_VERSION`).
    version: int = STATE_VERSION

    def to_json(self) -> dict[str, Any]:
        if self.ledger is None:
            raise StateError(f"a version-{self.version} state is only read, never written")
        return {
            "format": _FORMAT,
            "version": STATE_VERSION,
            "origin": self.origin,
            "log_key": self.log_key,
            "checkpoint": self.checkpoint,
            "frontier": [_b64(h) for h in self.frontier],
            "ledger": _ledger_to_json(self.ledger),
            "open_batches": {_b64(h): b.to_json() for h, b in self.open_batches.items()},
            "market": [[i, k, _b64(p)] for i, k, p in self.market_entries],
            "market_batches": {_b64(h): b.to_json() for h, b in self.market_batches.items()},
        }

    @classmethod
    def from_json(cls, raw: object) -> AuditorState:
        d = _dict(raw, "state")
        if d.get("format") != _FORMAT:
            raise StateError("not a zkgrid auditor state file")
        version = d.get("version")
        if (
            isinstance(version, bool)
            or not isinstance(version, int)
            or (version != STATE_VERSION and version not in OLD_STATE_VERSIONS)
        ):
            raise StateError(f"unsupported auditor state version {version!r}")
        frontier_raw = d.get("frontier")
        if not isinstance(frontier_raw, list):
            raise StateError("state file: frontier is not a list")
        frontier = [_unb64(h, "frontier hash") for h in frontier_raw]
        if any(len(h) != 32 for h in frontier):
            raise StateError("state file: a frontier hash is not 32 bytes")
        ledger: LedgerState | None = None
        open_batches: dict[bytes, OpenBatch] = {}
        market_entries: list[tuple[int, int, bytes]] = []
        market_batches: dict[bytes, OpenBatch] = {}
        if version == STATE_VERSION:
            ledger = _ledger_from_json(d.get("ledger"))
            for k, v in _dict(d.get("open_batches"), "open batches").items():
                open_batches[_hash(k, "open batch hash")] = OpenBatch.from_json(v)
            market_entries = _market_from_json(d.get("market", []), ledger)
            for k, v in _dict(d.get("market_batches", {}), "market batches").items():
                market_batches[_hash(k, "market batch hash")] = OpenBatch.from_json(v)
        return cls(
            origin=_str(d.get("origin"), "origin"),
            log_key=_str(d.get("log_key"), "log key"),
            checkpoint=_str(d.get("checkpoint"), "checkpoint"),
            frontier=frontier,
            ledger=ledger,
            open_batches=open_batches,
            market_entries=market_entries,
            market_batches=market_batches,
            version=version,
        )


def load_state(path: Path) -> AuditorState | None:
    """The state at ``path``, or ``None`` when there is no file yet."""
    if not path.exists() and not path.is_symlink():
        return None
    try:
        raw = read_private(path, max_bytes=MAX_STATE_BYTES)
    except PrivateFileError as exc:
        raise StateError(f"cannot read the state file: {exc}") from None
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
