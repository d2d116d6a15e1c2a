"""verifier: the standalone auditor of a zkgrid ledger (GitHub issue 5).

Reads the ledger from an export archive or a running service and checks,
against a pinned log key, the signed checkpoints, the recomputed Merkle tree,
consistency with the auditor's previous view, and every settlement record:
registrations, reading batches (signature, hash chain, range proofs), tariffs
and bills (bill proofs), cycle tariffs and cycle bills (circuit proofs).
Imports :mod:`zkp`, :mod:`circuits`, :mod:`ledger`, :mod:`settlement` and the
generated gRPC messages only, never the service. See docs/notes/audit.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zkgrid._internal.lazy import lazy_exports

if TYPE_CHECKING:  # pragma: no cover
    from verifier.audit import AuditOptions, Auditor, AuditResult, Figures, Violation
    from verifier.state import AuditorState, StateError

__all__ = [
    "AuditOptions",
    "AuditResult",
    "Auditor",
    "AuditorState",
    "Figures",
    "StateError",
    "Violation",
]

#: Imported on first use (PEP 562): ``import verifier.cli`` (``zkgrid audit --help``) must
#: not load the audit engine and the proof system.
_EXPORTS = {
    "AuditOptions": "verifier.audit",
    "AuditResult": "verifier.audit",
    "Auditor": "verifier.audit",
    "AuditorState": "verifier.state",
    "Figures": "verifier.audit",
    "StateError": "verifier.state",
    "Violation": "verifier.audit",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)
