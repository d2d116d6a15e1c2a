"""Who is calling, and may they call this method: the settlement API's authorization.

Roles come from the client certificate of the mutual-TLS connection (verified
against the client CA by the TLS layer): the subject's single
``OU`` (organizational unit) is the role, one of ``utility``, ``meter`` and
``auditor``; the subject's ``CN`` is the identity (for a meter, its meter id).
A certificate with no, several or an unknown OU, or without a CN, is
UNAUTHENTICATED.

Insecure mode (``zkgrid serve --insecure``, **development and demo only**,
loopback listen addresses only): there is no certificate, and the caller's role
and identity are taken on trust from the request metadata ``x-zkgrid-role``
and ``x-zkgrid-identity``. Anyone who can reach the port can claim any role,
which is why the server refuses insecure mode on a non-loopback address.

:data:`POLICY` is the one table of who may call what (settlement-v1.md, "gRPC
API"); it is enforced in one place, :class:`service.interceptors.ZkgridInterceptor`.
Methods of the standard health and reflection services are open to every
caller the transport admits; any other method missing from the table is denied.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from service.errors import PermissionDenied
from zkgrid._internal.channels import IDENTITY_METADATA_KEY, ROLE_METADATA_KEY
from zkgrid.errors import Reason, ZkgridError

if TYPE_CHECKING:  # pragma: no cover - annotations only (``zkgrid certs`` imports this module)
    import grpc

__all__ = [
    "IDENTITY_METADATA_KEY",
    "PACKAGE",
    "POLICY",
    "PUBLIC_METHOD_PREFIXES",
    "ROLE_METADATA_KEY",
    "AuthenticationError",
    "Authorizer",
    "Caller",
    "PermissionDeniedError",
    "Role",
    "Rule",
    "caller_from_certificate",
    "caller_from_metadata",
    "current_caller",
]

PACKAGE = "zkgrid.settlement.v1"
# ROLE_METADATA_KEY / IDENTITY_METADATA_KEY: the dev-only metadata naming the caller's role
# and identity in insecure mode, defined once for the server and the clients in
# zkgrid._internal.channels (re-exported here).
#: Method-name prefixes every admitted caller may call (no role needed).
PUBLIC_METHOD_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
_IDENTITY = re.compile(r"[A-Za-z0-9._@-]{1,128}", re.ASCII)


class AuthenticationError(ZkgridError):
    """The caller presented no usable role or identity."""

    reason = Reason.UNAUTHENTICATED


#: The caller's role (or identity) may not call this method on this subject (one class
#: per reason: the settlement's own refusal is the same class).
PermissionDeniedError = PermissionDenied


class Role(StrEnum):
    """A caller's role: the client certificate's OU."""

    UTILITY = "utility"
    METER = "meter"
    AUDITOR = "auditor"


ANY_ROLE = frozenset(Role)


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: a role and an identity (the certificate's CN)."""

    role: Role
    identity: str


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may call one method.

    ``meter_id``: for methods acting on one meter, how to read that meter's id
    from the request; a caller with the ``meter`` role may then act only on
    its own id (its identity).
    """

    roles: frozenset[Role]
    meter_id: Callable[[Any], str] | None = field(default=None)


#: The authorized caller of the RPC running in this thread (set by the interceptor;
#: ``None`` for public methods and outside RPCs). Servicers read it to tell the
#: domain which meter is acting.
current_caller: ContextVar[Caller | None] = ContextVar("zkgrid_current_caller", default=None)


def _method(service: str, name: str) -> str:
    return f"/{PACKAGE}.{service}/{name}"


def _cycle_bill_meter_id(request: Any) -> str:
    """The meter id inside a SubmitCycleBill request's record bytes (decoded strictly: bytes
    that are not a cycle bill raise ``RECORD_MALFORMED`` here, after the role check)."""
    from settlement.convert import cycle_bill_from_bytes  # here: `zkgrid certs` imports auth

    return cycle_bill_from_bytes(bytes(request.cycle_bill)).meter_id


def _enrolment_meter_id(request: Any) -> str:
    """The meter id inside an Enrol request's record bytes, decoded strictly (bytes that are
    not an enrolment raise ``RECORD_MALFORMED`` here, after the role check)."""
    from settlement.convert import enrolment_from_bytes  # here: `zkgrid certs` imports auth

    return enrolment_from_bytes(bytes(request.enrolment)).meter_id


def _order_meter_id(request: Any) -> str:
    """The meter id inside a SubmitOrder request's order bytes, decoded strictly."""
    from settlement.convert import order_from_bytes

    return order_from_bytes(bytes(request.order)).meter_id


def _cancellation_meter_id(request: Any) -> str:
    """The meter id inside a CancelOrder request's cancellation bytes, decoded strictly."""
    from settlement.convert import cancellation_from_bytes

    return cancellation_from_bytes(bytes(request.cancellation)).meter_id


def _allocation_meter_id(request: Any) -> str:
    """The meter id inside a SubmitAllocation request's record bytes, decoded strictly."""
    from settlement.convert import allocation_from_bytes

    return allocation_from_bytes(bytes(request.allocation)).meter_id


def _delivery_meter_id(request: Any) -> str:
    """The meter id inside a SubmitDelivery request's record bytes, decoded strictly."""
    from settlement.convert import delivery_from_bytes

    return delivery_from_bytes(bytes(request.delivery)).meter_id


#: settlement-v1.md, "gRPC API": full method name -> who may call it.
POLICY: Mapping[str, Rule] = {
    _method("MeterService", "RegisterMeter"): Rule(frozenset({Role.UTILITY})),
    _method("MeterService", "RevokeMeter"): Rule(frozenset({Role.UTILITY})),
    _method("MeterService", "GetMeter"): Rule(ANY_ROLE),
    _method("ReadingService", "SubmitReadings"): Rule(
        frozenset({Role.METER}), lambda r: str(r.batch.meter_id)
    ),
    _method("ReadingService", "GetReceipt"): Rule(ANY_ROLE, lambda r: str(r.meter_id)),
    _method("TariffService", "PublishTariff"): Rule(frozenset({Role.UTILITY})),
    _method("TariffService", "GetTariff"): Rule(ANY_ROLE),
    _method("TariffService", "PublishCycleTariff"): Rule(frozenset({Role.UTILITY})),
    _method("TariffService", "GetCycleTariff"): Rule(ANY_ROLE, lambda r: str(r.meter_id)),
    _method("BillService", "SubmitBill"): Rule(
        frozenset({Role.METER}), lambda r: str(r.bill.meter_id)
    ),
    _method("BillService", "GetStatement"): Rule(ANY_ROLE, lambda r: str(r.meter_id)),
    _method("BillService", "SubmitCycleBill"): Rule(frozenset({Role.METER}), _cycle_bill_meter_id),
    _method("LedgerService", "GetCheckpoint"): Rule(ANY_ROLE),
    _method("LedgerService", "StreamEntries"): Rule(frozenset({Role.AUDITOR, Role.UTILITY})),
    _method("LedgerService", "GetInclusionProof"): Rule(ANY_ROLE),
    _method("LedgerService", "GetConsistencyProof"): Rule(ANY_ROLE),
    _method("WitnessService", "RegisterWitness"): Rule(frozenset({Role.UTILITY})),
    _method("WitnessService", "AddCosignature"): Rule(frozenset({Role.AUDITOR})),
    _method("WitnessService", "GetCosignedCheckpoint"): Rule(ANY_ROLE),
    _method("WitnessService", "ListWitnesses"): Rule(ANY_ROLE),
    # the neighbourhood market (docs/design/market-v1.md); a meter's id is its CN
    _method("MarketService", "Enrol"): Rule(frozenset({Role.METER}), _enrolment_meter_id),
    _method("MarketService", "PublishMarketDay"): Rule(frozenset({Role.UTILITY})),
    _method("MarketService", "SubmitOrder"): Rule(frozenset({Role.METER}), _order_meter_id),
    _method("MarketService", "CancelOrder"): Rule(frozenset({Role.METER}), _cancellation_meter_id),
    _method("MarketService", "ListOrders"): Rule(ANY_ROLE, lambda r: str(r.meter_id)),
    _method("MarketService", "GetMarketResult"): Rule(ANY_ROLE),
    _method("MarketService", "ListTrades"): Rule(ANY_ROLE, lambda r: str(r.meter_id)),
    _method("MarketService", "Clear"): Rule(frozenset({Role.UTILITY})),
    _method("MarketService", "SubmitAllocation"): Rule(
        frozenset({Role.METER}), _allocation_meter_id
    ),
    _method("MarketService", "SubmitDelivery"): Rule(frozenset({Role.METER}), _delivery_meter_id),
    _method("MarketService", "RecordDefaults"): Rule(frozenset({Role.UTILITY})),
    _method("MarketService", "GetMessages"): Rule(ANY_ROLE, lambda r: str(r.meter_id)),
}


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise AuthenticationError(f"unknown role {value[:32]!r}") from None


def _identity(value: str) -> str:
    if not _IDENTITY.fullmatch(value):
        raise AuthenticationError("the caller's identity is not 1..128 of [A-Za-z0-9._@-]")
    return value


def caller_from_certificate(pem: bytes) -> Caller:
    """The caller named by a (TLS-verified) client certificate: OU = role, CN = identity."""
    from cryptography import x509  # here: `zkgrid certs --help` imports this module
    from cryptography.x509.oid import NameOID

    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise AuthenticationError("the client certificate cannot be parsed") from None
    units = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(units) != 1:
        raise AuthenticationError("the client certificate must name exactly one OU (the role)")
    if len(names) != 1:
        raise AuthenticationError("the client certificate must name exactly one CN (identity)")
    return Caller(_role(str(units[0].value)), _identity(str(names[0].value)))


def caller_from_metadata(metadata: Mapping[str, str]) -> Caller:
    """Dev-only (insecure mode): the caller named by ``x-zkgrid-role``/``x-zkgrid-identity``."""
    role = metadata.get(ROLE_METADATA_KEY)
    if not role:
        raise AuthenticationError(f"insecure mode: send the {ROLE_METADATA_KEY} metadata")
    return Caller(_role(role), _identity(metadata.get(IDENTITY_METADATA_KEY) or role))


class Authorizer:
    """Authenticates the caller of a request and applies :data:`POLICY`.

    ``insecure``: take the caller from metadata (dev only) instead of the
    client certificate.
    """

    #: The policy applied (a class attribute so tests can check it covers the API).
    policy: ClassVar[Mapping[str, Rule]] = POLICY

    def __init__(self, *, insecure: bool) -> None:
        self._insecure = insecure

    @property
    def insecure(self) -> bool:
        return self._insecure

    def is_public(self, method: str) -> bool:
        return method.startswith(PUBLIC_METHOD_PREFIXES)

    def caller(self, context: grpc.ServicerContext) -> Caller:
        """Who is calling (raises :class:`AuthenticationError`)."""
        if self._insecure:
            metadata = {
                str(k).lower(): v for k, v in context.invocation_metadata() if isinstance(v, str)
            }
            return caller_from_metadata(metadata)
        auth: Mapping[str, Any] = context.auth_context()
        certs = auth.get("x509_pem_cert") or []
        if not certs:
            raise AuthenticationError("no client certificate")
        return caller_from_certificate(bytes(certs[0]))

    def authorize(
        self,
        method: str,
        request: Any,
        context: grpc.ServicerContext,
        *,
        role_only: bool = False,
    ) -> Caller | None:
        """Check the caller may call ``method`` with ``request``; return it (None if public).

        ``request`` is the decoded request message (``None`` for a
        client-streaming method, which must then not need a meter id).
        ``role_only``: check the caller's role and nothing of the request (a request
        that did not decode is refused as malformed after this).
        """
        if self.is_public(method):
            return None
        rule = self.policy.get(method)
        short = method.rsplit("/", 1)[-1]
        if rule is None:
            raise PermissionDeniedError(f"{short} is not open to any role")
        caller = self.caller(context)
        if caller.role not in rule.roles:
            raise PermissionDeniedError(f"the {caller.role} role may not call {short}")
        if (
            caller.role is Role.METER
            and not role_only
            and rule.meter_id is not None
            and (request is None or rule.meter_id(request) != caller.identity)
        ):
            raise PermissionDeniedError(f"a meter may call {short} only for its own meter id")
        return caller
