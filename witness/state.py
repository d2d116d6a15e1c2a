"""(W7) The witness's memory: the log's origin and the last co-signed size and root.

A witness co-signs a checkpoint only if it extends the last one it co-signed
(a consistency proof from it verifies); :class:`WitnessState` applies that rule
and persists the memory in a state file before anything is signed.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Sequence
from pathlib import Path

from ledger.checkpoint import Checkpoint, SignedCheckpoint
from ledger.cosignature import (
    Cosignature,
    WitnessArgumentError,
    WitnessError,
    WitnessFormatError,
    checkpoint_of,
)
from ledger.errors import LedgerError
from ledger.merkle import EMPTY_ROOT, HASH_SIZE, verify_consistency
from witness._files import (
    load_json_object,
    read_private_text,
    replace_private_file,
    write_new_private_file,
)
from witness.keys import WitnessKey, cosign
from zkgrid.errors import Reason, VerificationError

__all__ = ["OriginMismatch", "WitnessRefusal", "WitnessState"]

_STATE_FILE_FORMAT = "zkgrid-witness-state"
_FILE_VERSION = 1


class WitnessRefusal(WitnessError, VerificationError):
    """(W7) The witness refuses to co-sign: the checkpoint is not consistent with its memory.

    ``CHECKPOINT_INCONSISTENT``: a smaller tree, another root at the same size, or a
    larger tree whose consistency proof from the last co-signed one does not verify;
    :class:`OriginMismatch` for another log.
    """

    reason = Reason.CHECKPOINT_INCONSISTENT


class OriginMismatch(WitnessRefusal):
    """(W7) The checkpoint is for another log origin than the witness's memory."""

    reason = Reason.ORIGIN_MISMATCH


class WitnessState:
    """(W7) A witness's memory: the log's origin and the last co-signed size and root.

    State file (JSON, mode 0600, replaced atomically: temporary file, fsync, rename)::

        {"format": "zkgrid-witness-state", "version": 1,
         "origin": "<origin>", "size": <int>, "root": "<base64 of 32 bytes>"}

    A new witness starts at size 0 (root ``MTH({})``), from which every tree is
    an extension. The order a witness must follow is :meth:`cosign`'s:
    authorize, record (persist), and only then sign and release the cosignature,
    so that a crash can never leave a released cosignature that the memory
    does not cover. One process per state file: the file is not locked.
    """

    __slots__ = ("_authorized", "_origin", "_path", "_root", "_size")

    def __init__(
        self,
        origin: str,
        size: int = 0,
        root: bytes = EMPTY_ROOT,
        *,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        # Checkpoint validates origin, size and root (LedgerFormatError).
        Checkpoint(origin, size, root)
        self._origin = origin
        self._size = size
        self._root = bytes(root)
        self._path = Path(path) if path is not None else None
        self._authorized: Checkpoint | None = None

    @classmethod
    def create(cls, path: str | os.PathLike[str], origin: str) -> WitnessState:
        """A fresh memory (size 0) for ``origin``, saved to a new file (never overwritten:
        resetting a witness's memory would let it co-sign a fork)."""
        state = cls(origin, path=path)
        write_new_private_file(path, state._to_json(), "witness state file")
        return state

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> WitnessState:
        p = Path(path)
        keys = frozenset(("format", "version", "origin", "size", "root"))
        obj = load_json_object(read_private_text(p, "witness state file"), "witness state", keys)
        if obj["format"] != _STATE_FILE_FORMAT or obj["version"] != _FILE_VERSION:
            raise WitnessFormatError("not a version 1 zkgrid witness state file")
        origin, size, root_text = obj["origin"], obj["size"], obj["root"]
        if not isinstance(origin, str):
            raise WitnessFormatError("witness state origin must be a string")
        if isinstance(size, bool) or not isinstance(size, int):
            raise WitnessFormatError("witness state size must be an integer")
        if not isinstance(root_text, str):
            raise WitnessFormatError("witness state root must be base64 text")
        try:
            root = base64.b64decode(root_text.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error, ValueError):
            raise WitnessFormatError("witness state root is not base64") from None
        if base64.b64encode(root).decode("ascii") != root_text or len(root) != HASH_SIZE:
            raise WitnessFormatError(f"witness state root is not canonical {HASH_SIZE}-byte base64")
        try:
            return cls(origin, size, root, path=p)
        except LedgerError as e:
            raise WitnessFormatError(f"witness state: {e}") from None

    def _to_json(self) -> bytes:
        obj = {
            "format": _STATE_FILE_FORMAT,
            "version": _FILE_VERSION,
            "origin": self._origin,
            "size": self._size,
            "root": base64.b64encode(self._root).decode("ascii"),
        }
        return (json.dumps(obj, indent=1) + "\n").encode("utf-8")

    def save(self) -> None:
        """Atomically replace the state file (no-op for an in-memory state)."""
        if self._path is None:
            return
        replace_private_file(self._path, self._to_json(), "witness state file")

    @property
    def origin(self) -> str:
        return self._origin

    @property
    def size(self) -> int:
        return self._size

    @property
    def root(self) -> bytes:
        return self._root

    @property
    def path(self) -> Path | None:
        return self._path

    def authorize(
        self, checkpoint: Checkpoint | SignedCheckpoint, consistency_proof: Sequence[bytes]
    ) -> None:
        """(W7) Raise :class:`WitnessRefusal` unless ``checkpoint`` extends the memory:
        same origin, size >= last size, and ``consistency_proof`` verifies from
        (last size, last root) to (size, root) (equal sizes need equal roots).

        This checks the tree only; the log's signature on the checkpoint is the
        caller's to verify (``ledger.verify_checkpoint``). A malformed proof raises
        :class:`~ledger.errors.LedgerFormatError`.
        """
        new = checkpoint_of(checkpoint)
        if new.origin != self._origin:
            raise OriginMismatch("(W7) checkpoint is for another log origin")
        if new.size < self._size:
            raise WitnessRefusal(
                f"(W7) checkpoint size {new.size} is smaller than the last co-signed {self._size}"
            )
        if new.size == self._size and new.root != self._root:
            raise WitnessRefusal(f"(W7) fork: another root at the last co-signed size {self._size}")
        try:
            verify_consistency(self._size, new.size, consistency_proof, self._root, new.root)
        except VerificationError as e:
            raise WitnessRefusal(
                f"(W7) checkpoint size {new.size} is not consistent with the last co-signed"
                f" size {self._size}: {e}"
            ) from e
        self._authorized = new

    def record(self, checkpoint: Checkpoint | SignedCheckpoint) -> None:
        """Remember ``checkpoint`` as the last co-signed one and persist it.

        It must be the checkpoint the last :meth:`authorize` accepted (or the one
        already remembered); anything else raises :class:`WitnessArgumentError`.
        """
        new = checkpoint_of(checkpoint)
        if (new.origin, new.size, new.root) == (self._origin, self._size, self._root):
            return
        authorized = self._authorized
        if authorized is None or (authorized.origin, authorized.size, authorized.root) != (
            new.origin,
            new.size,
            new.root,
        ):
            raise WitnessArgumentError("record() takes the checkpoint authorize() just accepted")
        previous = (self._size, self._root)
        self._size, self._root = new.size, new.root
        try:
            self.save()
        except BaseException:
            self._size, self._root = previous
            raise
        self._authorized = None

    def cosign(
        self,
        key: WitnessKey,
        checkpoint: Checkpoint | SignedCheckpoint,
        consistency_proof: Sequence[bytes],
    ) -> Cosignature:
        """(W7) authorize, record (persisted), then :func:`cosign`: the safe order."""
        self.authorize(checkpoint, consistency_proof)
        self.record(checkpoint)
        return cosign(key, checkpoint)

    def __repr__(self) -> str:
        return f"WitnessState(origin={self._origin!r}, size={self._size})"
