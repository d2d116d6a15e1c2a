"""Witness co-signing in the service (GitHub issue 5): registry, cosignatures, finality.

The domain behind ``WitnessService`` (docs/notes/witness.md has the scheme, labels ``(Wn)``):

* **Registry** — a projection of the ledger's ``WITNESS_KEY`` entries (each a
  :class:`ledger.cosignature.WitnessRegistration`, proof of possession verified). The
  registry *at a checkpoint* of size ``s`` is the witnesses registered by entries
  with index ``< s``; it is the one a cosignature of that checkpoint is checked
  against and whose size is the quorum's ``n``.
* **Cosignatures** — stored in the append-only table ``witness_cosignatures``
  (tree size, witness name, 96-byte signature, time received; one row per
  (size, name)) by :class:`service.storage.cosignatures.CosignatureStore`, in the
  ledger store's database next to its tables.
  A cosignature is accepted only for a checkpoint this service signed (same size
  and root: ``UNKNOWN_CHECKPOINT`` otherwise), from a registered witness
  (``UNKNOWN_WITNESS``), and only if it verifies (``COSIGNATURE_INVALID``); the
  identical cosignature again changes nothing (idempotent).
* **Publication** — :func:`ledger.cosignature.aggregate` over the stored cosignatures
  of a size (each was verified on arrival against the same cached
  :class:`~ledger.cosignature.WitnessRegistry`, which remembers successful checks,
  so this costs point additions only) and
  ``final = verify_finality(registry, cosigned, Quorum(k, n))`` with ``k`` from
  the configuration (default: a majority, ``n // 2 + 1``) and ``n`` the registry
  size at that checkpoint. Finality results are cached per aggregate.

No gRPC here: the servicer (:class:`service.servicers.WitnessServicer`) decodes,
calls this and encodes.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection

from ledger.checkpoint import SignedCheckpoint
from ledger.cosignature import (
    MAX_WITNESSES,
    Cosignature,
    CosignedCheckpoint,
    DuplicateCosignatureError,
    FinalityError,
    Quorum,
    WitnessRegistration,
    WitnessRegistry,
    aggregate,
    verify_finality,
)
from ledger.entries import EntryKind
from ledger.merkle import HASH_SIZE
from service.budgets import Gate
from service.errors import InvalidRequest
from service.settlement import Receipt, receipt_for
from service.storage import EntryNotFound, LedgerStore, StoredEntry
from service.storage.cosignatures import CosignatureStore
from settlement import rules
from zkgrid.errors import Reason, ZkgridError

__all__ = [
    "CosignatureAdded",
    "CosignedView",
    "RegisteredWitness",
    "UnknownCheckpoint",
    "WitnessExists",
    "Witnesses",
    "default_threshold",
]

#: Largest tree size the store's integer columns hold.
_MAX_SIZE = 2**63 - 1


#: Finality answers remembered (one per cosigned checkpoint asked about; the oldest are
#: forgotten first, so a long-running server's memo stays bounded).
FINALITY_MEMO_SIZE = 4096

class WitnessExists(ZkgridError):
    """A registration whose name or public key is already registered."""

    reason = Reason.WITNESS_EXISTS


class UnknownCheckpoint(ZkgridError):
    """A cosignature for a checkpoint this service did not sign (no such size, or another root)."""

    reason = Reason.UNKNOWN_CHECKPOINT


_InvalidRequest = InvalidRequest  # the service's one INVALID_ARGUMENT class


#: Pairing checks (cosignatures, proofs of possession) run at once at most: blspy releases
#: the GIL, so this many use this many cores and no more.
PAIRING_CONCURRENCY = max(1, (os.cpu_count() or 1) // 2)


def default_threshold(total: int) -> int:
    """A majority of ``total`` witnesses: ``total // 2 + 1`` (docs/notes/witness.md, section 5)."""
    return total // 2 + 1


@dataclass(frozen=True, slots=True)
class RegisteredWitness:
    """A registry member and the ledger index of its ``WITNESS_KEY`` entry."""

    registration: WitnessRegistration
    index: int


@dataclass(frozen=True, slots=True)
class CosignatureAdded:
    """What :meth:`Witnesses.add_cosignature` did."""

    tree_size: int
    recorded: bool  # False: the identical cosignature was already stored
    cosignatures: int  # now stored for this size
    quorum_threshold: int


@dataclass(frozen=True, slots=True)
class CosignedView:
    """A checkpoint as published: its aggregate (``None`` without cosignatures) and finality."""

    checkpoint: SignedCheckpoint
    cosigned: CosignedCheckpoint | None
    quorum_threshold: int
    quorum_total: int
    final: bool

    @property
    def signers(self) -> tuple[str, ...]:
        return () if self.cosigned is None else self.cosigned.signers


class Witnesses:
    """The witness registry, cosignatures and cosigned checkpoints over a :class:`LedgerStore`.

    ``quorum_threshold``: the ``k`` of ``k of n`` (``None``: a majority of the
    witnesses registered at each checkpoint). Thread-safe.
    """

    def __init__(self, store: LedgerStore, *, quorum_threshold: int | None = None) -> None:
        if quorum_threshold is not None and not 1 <= quorum_threshold <= MAX_WITNESSES:
            raise _InvalidRequest(f"the witness quorum must be in [1, {MAX_WITNESSES}]")
        self._store = store
        self._threshold = quorum_threshold
        self._lock = threading.Lock()  # guards the projection and caches; never held during I/O
        self._applied = 0
        self._members: list[RegisteredWitness] = []
        #: The settlement rules' state, fed the WITNESS_KEY entries only (R1, R2, C5, R15).
        self._rules = rules.LedgerState()
        #: Entries that are not a valid, new registration (written behind the service's back).
        self.anomalies: list[int] = []
        self._registries: dict[int, WitnessRegistry] = {}
        self._finality: dict[tuple[int, bytes, tuple[str, ...], int, int], bool] = {}
        self._cosignatures = CosignatureStore(store)  # creates the table if missing
        #: Pairing checks on request threads, bounded (docs/notes/settlement.md, "What a
        #: caller can cost"): a few at once, a short queue, the rest shed.
        self._checks = Gate(
            "cosignature", concurrency=PAIRING_CONCURRENCY, max_waiting=64, wait_s=2.0
        )
        self.catch_up()

    # ------------------------------------------------------------------ registry projection

    def catch_up(self) -> int:
        """Apply the ledger entries appended since the last catch-up; return the applied size."""
        self._apply(list(self._store.entries(self._applied)))
        return self._applied

    def _apply(self, entries: Iterable[StoredEntry]) -> None:
        for e in entries:
            # Decoded outside the lock: the proof of possession (C5) is checked here.
            record = rules.decode(e.kind, e.payload) if e.kind == EntryKind.WITNESS_KEY else None
            with self._lock:
                if e.index != self._applied:
                    continue
                self._applied += 1
                if e.kind != EntryKind.WITNESS_KEY:
                    continue
                if not isinstance(record, WitnessRegistration):  # a Refusal (R2, C5)
                    self.anomalies.append(e.index)
                    continue
                ref = rules.Ref(e.index, hashlib.sha256(e.payload).digest(), e.leaf_hash)
                if rules.step(self._rules, record, ref) is not None:  # R15
                    self.anomalies.append(e.index)
                    continue
                self._members.append(RegisteredWitness(record, e.index))

    def members(self, tree_size: int | None = None) -> tuple[list[RegisteredWitness], int]:
        """The witnesses registered in the tree of ``tree_size`` (default: the ledger's
        size) and that size."""
        self.catch_up()
        size = self._store.size() if tree_size is None else tree_size
        if size > self._store.size():
            raise EntryNotFound(f"size {size} is beyond the ledger's size {self._store.size()}")
        with self._lock:
            return [m for m in self._members if m.index < size], size

    def registry_at(self, tree_size: int) -> WitnessRegistry:
        """The registry of the checkpoint of ``tree_size`` (entries with index < tree_size)."""
        members, _ = self.members(tree_size)
        with self._lock:
            cached = self._registries.get(len(members))
        if cached is None:
            cached = WitnessRegistry(m.registration for m in members)
            with self._lock:
                self._registries[len(members)] = cached
        return cached

    def threshold(self, total: int) -> int:
        """The quorum threshold ``k`` for ``total`` registered witnesses."""
        return self._threshold if self._threshold is not None else default_threshold(total)

    # ------------------------------------------------------------------ registration

    def _check_new(self, registration: WitnessRegistration) -> None:
        """(projection lock held) R15: a new name and a new key (``WITNESS_EXISTS``)."""
        refusal = rules.check(self._rules, registration)
        if refusal is not None:
            raise WitnessExists(f"({refusal.rule}) {refusal.detail}")

    def register(self, registration: WitnessRegistration) -> Receipt:
        """Append a ``WITNESS_KEY`` entry: PoP verified, new name and key (``WITNESS_EXISTS``)."""
        if not isinstance(registration, WitnessRegistration):
            raise _InvalidRequest("register() takes a WitnessRegistration")
        with self._checks:
            registration.verify()  # POP_INVALID / WITNESS_MALFORMED
        self.catch_up()
        with self._lock:
            self._check_new(registration)
        payload = registration.encode()

        def precondition(conn: Connection, size: int) -> None:
            if self._applied < size:
                self._apply(self._store.entries_locked(conn, self._applied, size))
            with self._lock:
                self._check_new(registration)

        made = self._store.append(EntryKind.WITNESS_KEY, payload, precondition=precondition)
        self.catch_up()
        return self._receipt(made.index, made.leaf_hash)

    def _receipt(self, index: int, lh: bytes) -> Receipt:
        return receipt_for(self._store, index, lh)

    # ------------------------------------------------------------------ cosignatures

    def _issued(self, tree_size: int, root: bytes, note: str | None) -> SignedCheckpoint:
        """The checkpoint this service signed at ``tree_size`` with ``root`` (and, given a
        note, the same origin); ``UNKNOWN_CHECKPOINT`` otherwise."""
        shown_body: bytes | None = None
        if note:
            try:
                shown = SignedCheckpoint.from_text(note).checkpoint
            except ZkgridError as exc:
                raise _InvalidRequest(f"checkpoint: {exc}") from None
            if tree_size not in (0, shown.size) or (root and root != shown.root):
                raise _InvalidRequest("tree_size/root_hash disagree with the checkpoint note")
            tree_size, root, shown_body = shown.size, shown.root, shown.body()
        elif len(root) != HASH_SIZE:
            raise _InvalidRequest(f"root_hash must be {HASH_SIZE} bytes (or send the checkpoint)")
        if not 0 <= tree_size <= _MAX_SIZE:
            raise UnknownCheckpoint(f"no checkpoint was signed at size {tree_size}")
        try:
            stored = self._store.checkpoint_at(tree_size)
        except EntryNotFound:
            raise UnknownCheckpoint(f"no checkpoint was signed at size {tree_size}") from None
        if stored.checkpoint.root != root or (
            shown_body is not None and stored.checkpoint.body() != shown_body
        ):
            raise UnknownCheckpoint(
                f"the service signed another checkpoint at size {tree_size} (another root)"
            )
        return stored

    def add_cosignature(
        self,
        cosignature: Cosignature,
        *,
        tree_size: int = 0,
        root: bytes = b"",
        checkpoint: str | None = None,
    ) -> CosignatureAdded:
        """Record ``cosignature`` of the checkpoint named by ``checkpoint`` (a signed note)
        or by ``tree_size`` and ``root``.

        Refusals, in order: ``INVALID_ARGUMENT`` (inconsistent or malformed naming),
        ``UNKNOWN_CHECKPOINT``, ``UNKNOWN_WITNESS`` (not registered at that checkpoint),
        ``COSIGNATURE_INVALID``. The identical cosignature again returns ``recorded=False``.
        """
        if not isinstance(cosignature, Cosignature):
            raise _InvalidRequest("add_cosignature() takes a Cosignature")
        signed = self._issued(tree_size, bytes(root), checkpoint)
        size = signed.checkpoint.size
        registry = self.registry_at(size)
        registry.get(cosignature.name)  # UNKNOWN_WITNESS, before any pairing
        k = self.threshold(len(registry))
        existing = self._cosignatures.signature(size, cosignature.name)
        if existing is None:
            with self._checks:  # bounded: OVERLOADED rather than a queue of request threads
                registry.verify_cosignature(signed, cosignature)  # COSIGNATURE_INVALID
            stored = self._cosignatures.add(size, cosignature.name, cosignature.signature)
            if stored.recorded:
                return CosignatureAdded(size, True, stored.count, k)
            existing = stored.signature  # a concurrent insert of the same (size, name)
        if existing != cosignature.signature:
            # BLS signatures are deterministic and canonical: this one cannot also verify.
            raise DuplicateCosignatureError(
                f"witness {cosignature.name!r} already co-signed size {size} differently"
            )
        return CosignatureAdded(size, False, self._cosignatures.count(size), k)

    def cosignatures(self, tree_size: int) -> list[Cosignature]:
        """The stored cosignatures of ``tree_size``, by witness name."""
        return [Cosignature(name, sig) for name, sig in self._cosignatures.of_size(tree_size)]

    def latest_cosigned_size(self) -> int | None:
        return self._cosignatures.latest_size()

    # ------------------------------------------------------------------ publication

    def cosigned(self, tree_size: int | None = None) -> CosignedView:
        """The checkpoint of ``tree_size`` (default: the largest cosigned one, or the latest
        checkpoint when none is) with the aggregate of its cosignatures and its finality."""
        if tree_size is None:
            tree_size = self.latest_cosigned_size()
        if tree_size is None:
            signed = self._store.latest_checkpoint()
        else:
            if not 0 <= tree_size <= _MAX_SIZE:
                raise EntryNotFound(f"no checkpoint was signed at size {tree_size}")
            signed = self._store.checkpoint_at(tree_size)
        size = signed.checkpoint.size
        registry = self.registry_at(size)
        n = len(registry)
        k = self.threshold(n)
        cosigs = [c for c in self.cosignatures(size) if c.name in registry]
        if not cosigs:
            return CosignedView(signed, None, k, n, False)
        cosigned = aggregate(registry, signed, cosigs)
        return CosignedView(signed, cosigned, k, n, self._is_final(registry, cosigned, k, n))

    def _is_final(
        self, registry: WitnessRegistry, cosigned: CosignedCheckpoint, k: int, n: int
    ) -> bool:
        if n == 0 or k > n or len(cosigned.signers) < k:
            return False
        memo = (
            cosigned.checkpoint.checkpoint.size,
            cosigned.aggregate_signature,
            cosigned.signers,
            k,
            n,
        )
        with self._lock:
            known = self._finality.get(memo)
        if known is not None:
            return known
        try:
            verify_finality(registry, cosigned, Quorum(k, n))
            final = True
        except FinalityError:
            final = False
        with self._lock:
            self._finality[memo] = final
            if len(self._finality) > FINALITY_MEMO_SIZE:  # bounded: the oldest goes first
                del self._finality[next(iter(self._finality))]
        return final
