"""Where the auditor reads the ledger from: an export archive, or a running service over gRPC.

Both yield :class:`verifier.audit.SourceEntry` / :class:`verifier.audit.SourceCheckpoint`
in log order. A source that cannot be read raises :class:`verifier.audit.AuditError`
(a truncated or malformed archive, unusable TLS files) or, for a failed call to the
service (unreachable, a refused TLS handshake, a refusal), the
:class:`zkgrid._internal.rpc.RemoteError` that names the status code and the
service's reason: both exit 2. What the bytes *say* is the engine's business.
The channel is :func:`zkgrid._internal.channels.client_channel`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ledger.archive import ArchiveCheckpoint, ArchiveFormatError, ArchiveReader
from verifier.audit import AuditError, SourceCheckpoint, SourceEntry
from zkgrid._internal.channels import (
    ChannelConfigError,
    TlsMaterial,
    client_channel,
    dev_metadata,
    is_loopback_target,
)
from zkgrid._internal.files import PrivateFileError
from zkgrid._internal.rpc import RemoteError, remote_error

if TYPE_CHECKING:  # pragma: no cover
    import grpc

__all__ = ["ArchiveSource", "GrpcSource", "TlsFiles", "is_loopback"]

#: Insecure (loopback development) servers take the caller's role from this metadata;
#: with TLS the role is the client certificate's OU and no metadata is sent.
_DEV_METADATA = dev_metadata("auditor")

#: The one loopback parser (:mod:`zkgrid._internal.channels`); kept under this name for
#: the witness tools that still import it from here.
is_loopback = is_loopback_target


class ArchiveSource:
    """An archive written by ``zkgrid ledger export`` (:mod:`ledger.archive`)."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self.description = f"archive {self._path}"
        try:
            self._file: BinaryIO = self._path.open("rb")
        except OSError as exc:
            raise AuditError(f"cannot open the archive {self._path}: {exc.strerror}") from None
        try:
            self._reader = ArchiveReader(self._file)
        except ArchiveFormatError as exc:
            self._file.close()
            raise AuditError(f"{self._path}: {exc}") from None

    def close(self) -> None:
        self._file.close()

    def origin(self) -> str | None:
        return self._reader.header.origin

    def early_head(self) -> str | None:
        return None

    def consistency_proof(self, first: int, second: int) -> list[bytes] | None:
        return None  # the engine rebuilds the tree itself

    def items(self, start: int) -> Iterator[SourceEntry | SourceCheckpoint]:
        self._reader.skip_payloads_below = start
        try:
            for item in self._reader.items():
                if isinstance(item, ArchiveCheckpoint):
                    yield SourceCheckpoint(item.size, item.text)
                else:
                    yield SourceEntry(item.index, item.kind, item.payload)
        except ArchiveFormatError as exc:
            raise AuditError(f"{self._path}: {exc}") from None
        except OSError as exc:
            raise AuditError(f"cannot read the archive {self._path}: {exc.strerror}") from None

    def skipped(self) -> int:
        return self._reader.skipped

    def head(self) -> str:
        return self._reader.trailer.final_checkpoint


class TlsFiles:
    """The auditor's client credentials: CA bundle, client certificate and key (PEM files;
    the key must be private to its owner, ``chmod 600``)."""

    def __init__(self, ca: str | Path, cert: str | Path, key: str | Path) -> None:
        try:
            self.material = TlsMaterial.from_files(ca, cert, key, role="auditor")
        except (PrivateFileError, ChannelConfigError) as exc:
            raise AuditError(f"cannot read a TLS file: {exc}") from None


class GrpcSource:
    """A running service: ``LedgerService`` GetCheckpoint, StreamEntries, GetConsistencyProof.

    ``tls`` is required unless ``insecure`` (plaintext, loopback targets only).
    The latest checkpoint is fetched once, first; entries are streamed up to its size.
    """

    def __init__(
        self,
        target: str,
        *,
        tls: TlsFiles | None = None,
        insecure: bool = False,
        timeout: float = 30.0,
    ) -> None:
        from zkgrid.settlement.v1 import ledger_pb2_grpc

        self.description = f"service {target}"
        self._target = target
        self._timeout = timeout
        if not insecure and tls is None:
            raise AuditError("--target needs --ca, --cert and --key (or --insecure)")
        try:
            channel = client_channel(
                target, tls=None if insecure or tls is None else tls.material, insecure=insecure
            )
        except ChannelConfigError as exc:
            raise AuditError(str(exc)) from None
        self._channel: grpc.Channel = channel
        self._metadata = _DEV_METADATA if insecure else ()
        self._stub = ledger_pb2_grpc.LedgerServiceStub(channel)
        self._head: str | None = None
        self._head_size = 0
        self._skipped = 0

    def close(self) -> None:
        self._channel.close()

    def _rpc_error(self, exc: grpc.RpcError, what: str) -> RemoteError:
        """The failed call as a typed error (:func:`zkgrid._internal.rpc.remote_error`),
        its message prefixed with the target."""
        return remote_error(exc, f"{self._target}: {what}")

    def origin(self) -> str | None:
        return None  # the checkpoint names it

    def early_head(self) -> str | None:
        import grpc

        from zkgrid.settlement.v1 import ledger_pb2

        if self._head is None:
            try:
                response = self._stub.GetCheckpoint(
                    ledger_pb2.GetCheckpointRequest(),
                    timeout=self._timeout,
                    metadata=self._metadata,
                )
            except grpc.RpcError as exc:
                raise self._rpc_error(exc, "GetCheckpoint") from None
            self._head = response.checkpoint
            self._head_size = int(response.tree_size)
        return self._head

    def consistency_proof(self, first: int, second: int) -> list[bytes] | None:
        import grpc

        from zkgrid.settlement.v1 import ledger_pb2

        try:
            response = self._stub.GetConsistencyProof(
                ledger_pb2.GetConsistencyProofRequest(first_size=first, second_size=second),
                timeout=self._timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as exc:
            raise self._rpc_error(exc, "GetConsistencyProof") from None
        return [bytes(h) for h in response.hashes]

    def items(self, start: int) -> Iterator[SourceEntry | SourceCheckpoint]:
        import grpc

        from zkgrid.settlement.v1 import ledger_pb2

        if self._head is None:
            self.early_head()
        end = self._head_size
        self._skipped = start
        if start >= end:
            return
        try:
            stream = self._stub.StreamEntries(
                ledger_pb2.StreamEntriesRequest(start_index=start, end_index=end),
                metadata=self._metadata,
            )
            for message in stream:
                e = message.entry
                yield SourceEntry(int(e.index), int(e.kind), bytes(e.payload), bytes(e.leaf_hash))
        except grpc.RpcError as exc:
            raise self._rpc_error(exc, "StreamEntries") from None

    def skipped(self) -> int:
        return self._skipped

    def head(self) -> str:
        return self._head if self._head is not None else (self.early_head() or "")
