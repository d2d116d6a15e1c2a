"""Witness side of co-signing (GitHub issue 5): co-sign an audited checkpoint, check finality.

:func:`cosign_after_audit` is what ``zkgrid audit --cosign KEYFILE`` runs after a
clean audit of a running service: fetch the consistency proof from the
witness's last co-signed size to the audited checkpoint
(``LedgerService.GetConsistencyProof``), apply the witness's consistency rule
(:meth:`witness.state.WitnessState.cosign`: authorize, persist, sign — a
checkpoint that does not extend the last co-signed one is refused with
:class:`CosignRefused`), then send the cosignature
(``WitnessService.AddCosignature``).

:func:`check_finality` is the client's check (``zkgrid witness finality``):
fetch the cosigned checkpoint and the registry at its size, check each
registration is in the checkpoint's tree (inclusion proofs against the signed
root), then **one** ``FastAggregateVerify`` (:func:`ledger.cosignature.verify_finality`).

This module imports ``ledger``, ``settlement`` and the generated messages only, never
``service`` or ``verifier`` (``zkgrid audit --cosign`` calls :func:`run_audit_cosign`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ledger.checkpoint import CheckpointVerifier, SignedCheckpoint, verify_checkpoint
from ledger.cosignature import (
    CosignedCheckpoint,
    FinalityReport,
    Quorum,
    QuorumNotMet,
    WitnessRegistration,
    WitnessRegistry,
    verify_finality,
)
from ledger.entries import Entry, EntryKind
from ledger.inclusion import verify_entry_inclusion
from settlement import convert
from witness.keys import WitnessKey
from witness.state import OriginMismatch, WitnessRefusal, WitnessState
from zkgrid._internal.channels import Metadata, TlsMaterial, client_channel, dev_metadata
from zkgrid._internal.files import log_file_stem
from zkgrid._internal.rpc import remote_error
from zkgrid.errors import Reason, ZkgridError

if TYPE_CHECKING:  # pragma: no cover
    import grpc

__all__ = [
    "DEFAULT_WITNESS_DIR",
    "CosignError",
    "CosignOutcome",
    "CosignRefused",
    "CosignRefusedOrigin",
    "CosignedLookup",
    "check_finality",
    "cosign_after_audit",
    "default_witness_state_path",
    "fetch_cosigned",
    "fetch_registry",
    "open_channel",
    "open_witness_state",
    "run_audit_cosign",
]

#: Where a witness keeps its memory (one JSON file per witness name).
DEFAULT_WITNESS_DIR = Path("~/.zkgrid/witness")


class CosignError(ZkgridError):
    """Co-signing or the finality check could not run (service unreachable, bad input): exit 2."""

    reason = Reason.COSIGN_INPUT


class CosignRefused(WitnessRefusal):
    """(W7) The witness refuses: the checkpoint does not extend the last one it co-signed."""

    reason = Reason.CHECKPOINT_INCONSISTENT


class CosignRefusedOrigin(CosignRefused, OriginMismatch):
    """(W7) The witness refuses: the checkpoint is for another log than its memory's."""

    reason = Reason.ORIGIN_MISMATCH


@dataclass(frozen=True, slots=True)
class CosignOutcome:
    """What the service answered to the cosignature."""

    witness: str
    tree_size: int
    recorded: bool
    cosignatures: int
    quorum_threshold: int


def default_witness_state_path(name: str, log_key: CheckpointVerifier) -> Path:
    """``~/.zkgrid/witness/<name>/<log key name>+<log key id>.json`` (expanded): one memory per
    witness and per log, so a witness of two logs never compares one with the other."""
    stem = log_file_stem(log_key.name, log_key.key_id)
    return (DEFAULT_WITNESS_DIR / name / f"{stem}.json").expanduser()


def open_witness_state(path: str | os.PathLike[str], origin: str) -> WitnessState:
    """The witness's memory in ``path``; a fresh one (size 0) for ``origin`` if the file
    does not exist (its directory is created with mode 0700)."""
    p = Path(path)
    if p.exists():
        return WitnessState.load(p)
    try:
        p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise CosignError(
            f"cannot create the witness state directory {p.parent}: {exc.strerror}"
        ) from None
    return WitnessState.create(p, origin)


def open_channel(
    target: str,
    *,
    ca: str | None,
    cert: str | None,
    key: str | None,
    insecure: bool,
    role: str,
) -> tuple[grpc.Channel, Metadata]:
    """A channel to ``target`` and the metadata to send: mutual TLS with the given files, or
    (``insecure``, loopback only) plaintext with ``role`` as dev metadata
    (:func:`zkgrid._internal.channels.client_channel`). A refused or unreadable
    configuration is a :class:`CosignError`."""
    try:
        if insecure:
            if ca or cert or key:
                raise CosignError("--insecure cannot be combined with --ca/--cert/--key")
            return client_channel(target, insecure=True), dev_metadata(role)
        if not (ca and cert and key):
            raise CosignError("--target needs --ca, --cert and --key (or --insecure)")
        tls = TlsMaterial.from_files(ca, cert, key, role=role)
        return client_channel(target, tls=tls), ()
    except CosignError:
        raise
    except ZkgridError as exc:  # ChannelConfigError, PrivateFileError (a TLS file)
        raise CosignError(str(exc)) from exc


def cosign_after_audit(
    channel: grpc.Channel,
    key: WitnessKey,
    witness_state_path: str | os.PathLike[str],
    audited_checkpoint: str,
    *,
    log_key: CheckpointVerifier | str | None = None,
    metadata: Metadata = (),
    timeout: float = 30.0,
) -> CosignOutcome:
    """Co-sign ``audited_checkpoint`` (the signed note the audit accepted) and send it.

    With ``log_key`` the note's signature is checked first. Raises
    :class:`CosignRefused` (nothing signed, nothing sent) when the checkpoint does
    not extend the last one this witness co-signed, :class:`CosignError` when the
    service cannot be reached or refuses the cosignature.
    """
    import grpc

    from zkgrid.settlement.v1 import ledger_pb2, ledger_pb2_grpc, witness_pb2, witness_pb2_grpc

    try:
        signed = SignedCheckpoint.from_text(audited_checkpoint)
        if log_key is not None:
            verify_checkpoint(signed, log_key)
    except ZkgridError as exc:
        raise CosignError(f"the audited checkpoint: {exc}") from None
    checkpoint = signed.checkpoint
    state = open_witness_state(witness_state_path, checkpoint.origin)
    proof: list[bytes] = []
    if checkpoint.origin == state.origin and state.size < checkpoint.size:
        try:
            response = ledger_pb2_grpc.LedgerServiceStub(channel).GetConsistencyProof(
                ledger_pb2.GetConsistencyProofRequest(
                    first_size=state.size, second_size=checkpoint.size
                ),
                metadata=metadata,
                timeout=timeout,
            )
        except grpc.RpcError as exc:
            remote = remote_error(exc, "GetConsistencyProof")
            raise CosignError(str(remote)) from remote
        proof = [bytes(h) for h in response.hashes]
    try:
        cosignature = state.cosign(key, signed, proof)
    except WitnessRefusal as exc:
        refused = CosignRefusedOrigin if isinstance(exc, OriginMismatch) else CosignRefused
        raise refused(
            f"refusing to co-sign size {checkpoint.size}: {exc} (witness state {state.path})"
        ) from exc
    except ZkgridError as exc:  # a malformed proof from the service
        raise CosignRefused(
            f"refusing to co-sign size {checkpoint.size}: the consistency proof from size"
            f" {state.size} is malformed: {exc}"
        ) from exc
    try:
        added = witness_pb2_grpc.WitnessServiceStub(channel).AddCosignature(
            witness_pb2.AddCosignatureRequest(
                checkpoint=signed.to_text(),
                witness_name=cosignature.name,
                signature=cosignature.signature,
            ),
            metadata=metadata,
            timeout=timeout,
        )
    except grpc.RpcError as exc:
        remote = remote_error(exc, "AddCosignature")
        raise CosignError(str(remote)) from remote
    return CosignOutcome(
        witness=cosignature.name,
        tree_size=int(added.tree_size),
        recorded=bool(added.recorded),
        cosignatures=int(added.cosignatures),
        quorum_threshold=int(added.quorum_threshold),
    )


# ----------------------------------------------------------------------------- finality


@dataclass(frozen=True, slots=True)
class CosignedLookup:
    """A ``GetCosignedCheckpoint`` answer, decoded (``cosigned`` is ``None`` without signers)."""

    checkpoint: SignedCheckpoint
    cosigned: CosignedCheckpoint | None
    quorum_threshold: int
    quorum_total: int
    final: bool


def fetch_cosigned(
    channel: grpc.Channel,
    *,
    tree_size: int | None = None,
    metadata: Metadata = (),
    timeout: float = 30.0,
) -> CosignedLookup:
    """``WitnessService.GetCosignedCheckpoint``, decoded strictly (nothing verified)."""
    import grpc

    from zkgrid.settlement.v1 import witness_pb2, witness_pb2_grpc

    request = witness_pb2.GetCosignedCheckpointRequest()
    if tree_size is not None:
        request.tree_size = tree_size
    try:
        response = witness_pb2_grpc.WitnessServiceStub(channel).GetCosignedCheckpoint(
            request, metadata=metadata, timeout=timeout
        )
    except grpc.RpcError as exc:
        remote = remote_error(exc, "GetCosignedCheckpoint")
        raise CosignError(str(remote)) from remote
    try:
        signed = SignedCheckpoint.from_text(response.checkpoint)
        cosigned = (
            CosignedCheckpoint.decode(bytes(response.cosigned_checkpoint))
            if response.cosigned_checkpoint
            else None
        )
    except ZkgridError as exc:
        raise CosignError(f"the service's cosigned checkpoint is malformed: {exc}") from None
    if cosigned is not None and cosigned.checkpoint.to_text() != signed.to_text():
        raise CosignError("the cosigned checkpoint is not the checkpoint the service returned")
    return CosignedLookup(
        signed,
        cosigned,
        int(response.quorum_threshold),
        int(response.quorum_total),
        bool(response.final),
    )


def fetch_registry(
    channel: grpc.Channel,
    checkpoint: SignedCheckpoint,
    *,
    metadata: Metadata = (),
    timeout: float = 30.0,
) -> WitnessRegistry:
    """The witnesses registered in ``checkpoint``'s tree (``ListWitnesses``), each checked to
    be a ``WITNESS_KEY`` leaf of that tree (inclusion proof against its root) and its proof
    of possession verified. The caller checks the checkpoint's signature."""
    import grpc

    from zkgrid.settlement.v1 import ledger_pb2, ledger_pb2_grpc, witness_pb2, witness_pb2_grpc

    size = checkpoint.checkpoint.size
    ledger = ledger_pb2_grpc.LedgerServiceStub(channel)
    try:
        listed = witness_pb2_grpc.WitnessServiceStub(channel).ListWitnesses(
            witness_pb2.ListWitnessesRequest(tree_size=size), metadata=metadata, timeout=timeout
        )
        registrations: list[WitnessRegistration] = []
        for w in listed.witnesses:
            reg = convert.witness_from_proto(w)
            entry = Entry(EntryKind.WITNESS_KEY, reg.encode())
            proof = ledger.GetInclusionProof(
                ledger_pb2.GetInclusionProofRequest(leaf_index=w.ledger_index, tree_size=size),
                metadata=metadata,
                timeout=timeout,
            )
            verify_entry_inclusion(  # against the checkpoint's root; its signature: the caller's
                index=int(w.ledger_index),
                leaf_hash=entry.leaf_hash(),
                checkpoint=checkpoint,
                tree_size=size,
                inclusion_proof=[bytes(h) for h in proof.hashes],
                log_key=None,
                entry=entry,
            )
            registrations.append(reg)
        return WitnessRegistry(registrations)  # verifies each proof of possession
    except grpc.RpcError as exc:
        remote = remote_error(exc, "ListWitnesses/GetInclusionProof")
        raise CosignError(str(remote)) from remote


def check_finality(
    channel: grpc.Channel,
    *,
    tree_size: int | None = None,
    log_key: CheckpointVerifier | str | None = None,
    threshold: int | None = None,
    metadata: Metadata = (),
    timeout: float = 30.0,
) -> FinalityReport:
    """Check that the service's cosigned checkpoint (of ``tree_size``, default its latest
    cosigned one) is final: registry from the ledger (inclusion-checked), then one
    ``FastAggregateVerify``. ``threshold`` overrides the service's ``k``.

    Raises :class:`ledger.cosignature.FinalityError` (``QUORUM_NOT_MET`` also when nobody
    signed, ``UNKNOWN_WITNESS``, ``AGGREGATE_INVALID``), a
    :class:`~ledger.errors.CheckpointSignatureError` for a bad log signature
    (with ``log_key``), :class:`CosignError` when it cannot run.
    """

    lookup = fetch_cosigned(channel, tree_size=tree_size, metadata=metadata, timeout=timeout)
    if log_key is not None:
        verify_checkpoint(lookup.checkpoint, log_key)
    registry = fetch_registry(channel, lookup.checkpoint, metadata=metadata, timeout=timeout)
    n = len(registry)
    k = threshold if threshold is not None else lookup.quorum_threshold
    size = lookup.checkpoint.checkpoint.size
    if lookup.cosigned is None:
        raise QuorumNotMet(f"(W6) no witness co-signed size {size}")
    if n == 0 or not 1 <= k <= n:
        raise QuorumNotMet(f"(W6) quorum {k} of {n} registered witnesses cannot be met")
    return verify_finality(registry, lookup.cosigned, Quorum(k, n))


def run_audit_cosign(
    *,
    keyfile: str,
    witness_state: str | None,
    audited_checkpoint: str,
    log_key: CheckpointVerifier,
    target: str,
    ca: str | None,
    cert: str | None,
    key: str | None,
    insecure: bool,
    prog: str = "zkgrid audit",
) -> int:
    """``zkgrid audit --cosign KEYFILE [--witness-state PATH]`` after a clean audit of a
    running service: 0 co-signed, 1 refused (the checkpoint does not extend the witness's
    last co-signed one), 2 could not run. Messages go to stderr (stdout may be JSON)."""
    try:
        witness = WitnessKey.load(keyfile)
        path = (
            Path(witness_state).expanduser()
            if witness_state
            else default_witness_state_path(witness.name, log_key)
        )
        channel, metadata = open_channel(
            target, ca=ca, cert=cert, key=key, insecure=insecure, role="auditor"
        )
        try:
            outcome = cosign_after_audit(
                channel, witness, path, audited_checkpoint, log_key=log_key, metadata=metadata
            )
        finally:
            channel.close()
    except CosignRefused as exc:
        print(f"{prog}: NOT co-signing ({exc.reason}): {exc}", file=sys.stderr)
        return 1
    except ZkgridError as exc:
        print(f"{prog}: co-signing could not run: {exc}", file=sys.stderr)
        return 2
    print(
        f"{prog}: co-signed size {outcome.tree_size} as witness {outcome.witness}"
        f"{'' if outcome.recorded else ' (already recorded)'}: {outcome.cosignatures}"
        f" cosignature(s), quorum {outcome.quorum_threshold}",
        file=sys.stderr,
    )
    return 0
