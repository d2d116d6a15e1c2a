"""The closed set of reasons (zkgrid.errors.Reason): every error class, every finding, every
documented reason and every status row belongs to it, and each reason has one class."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import grpc
import pytest

from ledger.entries import EntryKind
from meter.client import ServiceError
from service.interceptors import STATUS_FOR_REASON, rpc_status_for, status_for_reason
from zkgrid.errors import Reason, ZkgridError, error_classes

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = [
    "zkgrid",
    "zkp",
    "ledger",
    "settlement",
    "service",
    "meter",
    "verifier",
    "cli",
    "witness",
]
#: Documents that name reasons (in backticks); every such name must be a member.
DOCUMENTS = [
    "docs/design/settlement-v1.md",
    "docs/notes/audit.md",
    "docs/notes/settlement.md",
    "docs/notes/witness.md",
    "README.md",
]
#: Upper-case identifiers in those documents that are not reasons.
NOT_REASONS = {
    "CIPHERSUITE_ID",
    "POP_CIPHERSUITE_ID",
    "STATUS_FOR_REASON",
    "ZKGRID_TEST_PG_URL",
} | {kind.name for kind in EntryKind}


def _project_modules() -> list[str]:
    names = []
    for package in PACKAGES:
        if not (ROOT / package / "__init__.py").exists():
            continue
        names.append(package)
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            if info.name.startswith("zkgrid.settlement.v1") or info.name.endswith("__main__"):
                continue
            names.append(info.name)
    return names


MODULES = _project_modules()
for _name in MODULES:
    importlib.import_module(_name)

#: The error classes of the project (tests define their own; they are not counted).
CLASSES = [c for c in error_classes() if c.__module__.split(".")[0] in PACKAGES]


def test_members_are_their_wire_strings() -> None:
    for member in Reason:
        assert member.value == member.name
        assert member == member.name  # a StrEnum: string comparisons keep working
        assert Reason.decode(member.name) is member
    assert Reason.decode("NO_SUCH_REASON") is None


def test_every_error_class_is_bound_to_one_member() -> None:
    assert len(CLASSES) > 50
    for cls in CLASSES:
        assert type(cls.reason) is Reason, cls


@pytest.mark.parametrize("bad", ["NO_SUCH_REASON", "PROOF_INVALID", None, 3])
def test_a_class_with_a_reason_outside_the_set_cannot_be_defined(bad: object) -> None:
    with pytest.raises(TypeError, match=r"must be a zkgrid\.errors\.Reason member"):
        type("Bad", (ZkgridError,), {"reason": bad})


def test_every_exception_class_of_the_project_is_a_zkgrid_error() -> None:
    """Public exception classes only; private ones (``_GroupRetry``) are control flow."""
    outside = []
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
                and not attr.startswith("_")
                and not issubclass(value, ZkgridError)
            ):
                outside.append(f"{name}.{attr}")
    assert outside == []


def test_one_class_per_reason() -> None:
    """Classes sharing a reason are one class and its subclasses (or aliases)."""
    by_reason: dict[Reason, list[type[ZkgridError]]] = {}
    for cls in CLASSES:
        by_reason.setdefault(cls.reason, []).append(cls)
    for reason, classes in by_reason.items():
        roots = [c for c in classes if not any(c is not o and issubclass(c, o) for o in classes)]
        assert len(roots) == 1, f"{reason}: unrelated classes {roots}"


def test_every_member_has_a_status_row() -> None:
    missing = [r for r in Reason if r not in STATUS_FOR_REASON]
    assert missing == []
    assert all(isinstance(code, grpc.StatusCode) for code in STATUS_FOR_REASON.values())


@pytest.mark.parametrize("document", DOCUMENTS)
def test_documented_reasons_exist(document: str) -> None:
    text = (ROOT / document).read_text(encoding="utf-8")
    named = set(re.findall(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`", text))
    patterns = re.findall(r"`([A-Z_]*\*[A-Z_]*)`", text)
    assert patterns == [], "reasons map by an explicit table, not by name patterns"
    unknown = sorted(n for n in named - NOT_REASONS if Reason.decode(n) is None)
    assert unknown == []


def test_the_audit_notes_list_every_finding_the_auditor_makes() -> None:
    """The reasons the auditor flags (literals in verifier/audit.py) are in docs/notes/audit.md."""
    source = (ROOT / "verifier/audit.py").read_text(encoding="utf-8")
    flagged = set(re.findall(r"Reason\.([A-Z_]+)", source))
    flagged |= set(_literal_reasons(ast.parse(source)))
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", (ROOT / "docs/notes/audit.md").read_text()))
    assert flagged - {"AUDIT_INPUT"} <= documented


def _literal_reasons(tree: ast.AST) -> list[str]:
    """String literals used as reasons: ``_flag(index, "X", ...)``, ``reason="X"``, and the
    class attribute ``reason = "X"``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "_flag" and len(node.args) >= 2:
                arg = node.args[1]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.append(arg.value)
            for keyword in node.keywords:
                value = keyword.value
                if (
                    keyword.arg == "reason"
                    and isinstance(value, ast.Constant)
                    and isinstance(value.value, str)
                ):
                    found.append(value.value)
        elif (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "reason" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            found.append(node.value.value)
    return found


def test_reason_literals_in_the_source_are_members() -> None:
    """Findings and legacy ``reason=`` arguments given as strings are still in the set."""
    unknown = []
    for name in MODULES:
        module = importlib.import_module(name)
        path = getattr(module, "__file__", None)
        if path is None or not path.endswith(".py"):
            continue
        for literal in _literal_reasons(ast.parse(Path(path).read_text(encoding="utf-8"))):
            if Reason.decode(literal) is None:
                unknown.append(f"{name}: {literal}")
    assert unknown == []


def test_the_meter_client_decodes_what_the_service_sends() -> None:
    """Interceptor -> ErrorInfo reason -> ServiceError.reason is the same member, for every
    error class; reasons outside the set and bare status codes decode into the set too."""
    for cls in CLASSES:
        error = cls.__new__(cls)
        Exception.__init__(error, "message")
        status = rpc_status_for(error, "/zkgrid.settlement.v1.MeterService/GetMeter")
        assert status.code is status_for_reason(cls.reason)
        decoded = ServiceError(status.code, str(cls.reason), "message")
        assert decoded.reason is cls.reason
    assert ServiceError(grpc.StatusCode.UNAVAILABLE, "", "").reason is Reason.UNAVAILABLE
    late = ServiceError(grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED", "")
    assert late.reason is Reason.DEADLINE_EXCEEDED
    newer = ServiceError(grpc.StatusCode.FAILED_PRECONDITION, "FROM_A_NEWER_SERVICE", "x")
    assert newer.reason is Reason.SERVICE_ERROR
    assert "FROM_A_NEWER_SERVICE" in str(newer)
