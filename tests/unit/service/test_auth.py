"""Roles from certificates and metadata, and the one policy table (settlement-v1.md)."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from service import pki
from service.auth import (
    POLICY,
    AuthenticationError,
    Authorizer,
    Caller,
    PermissionDeniedError,
    Role,
    caller_from_certificate,
    caller_from_metadata,
)
from settlement.market import (
    Delivery,
    DeliveryAllocation,
    MarketEnrolment,
    Order,
    OrderCancellation,
    Side,
)
from settlement.records import CycleBill, MeterKey, RecordFormatError
from settlement.sealed import EncryptionKey, seal
from zkgrid.settlement.v1 import (
    bills_pb2,
    ledger_pb2,
    market_pb2,
    meters_pb2,
    readings_pb2,
    tariffs_pb2,
    witness_pb2,
)
from zkp.pedersen import commit

U, M, A = Role.UTILITY, Role.METER, Role.AUDITOR
ANY = {U, M, A}

#: The doc's table, written out independently of service.auth.POLICY.
DOC_TABLE: dict[str, set[Role]] = {
    "MeterService/RegisterMeter": {U},
    "MeterService/RevokeMeter": {U},
    "MeterService/GetMeter": ANY,
    "ReadingService/SubmitReadings": {M},
    "ReadingService/GetReceipt": ANY,
    "TariffService/PublishTariff": {U},
    "TariffService/GetTariff": ANY,
    "TariffService/PublishCycleTariff": {U},
    "TariffService/GetCycleTariff": ANY,
    "BillService/SubmitBill": {M},
    "BillService/GetStatement": ANY,
    "BillService/SubmitCycleBill": {M},
    "LedgerService/GetCheckpoint": ANY,
    "LedgerService/GetInclusionProof": ANY,
    "LedgerService/GetConsistencyProof": ANY,
    "LedgerService/StreamEntries": {A, U},
    "WitnessService/RegisterWitness": {U},
    "WitnessService/AddCosignature": {A},
    "WitnessService/GetCosignedCheckpoint": ANY,
    "WitnessService/ListWitnesses": ANY,
    "MarketService/Enrol": {M},
    "MarketService/PublishMarketDay": {U},
    "MarketService/SubmitOrder": {M},
    "MarketService/CancelOrder": {M},
    "MarketService/ListOrders": ANY,
    "MarketService/GetMarketResult": ANY,
    "MarketService/ListTrades": ANY,
    "MarketService/Clear": {U},
    "MarketService/SubmitAllocation": {M},
    "MarketService/SubmitDelivery": {M},
    "MarketService/RecordDefaults": {U},
    "MarketService/GetMessages": ANY,
}
OWN_ID_ONLY = {
    "ReadingService/SubmitReadings",
    "ReadingService/GetReceipt",
    "BillService/SubmitBill",
    "BillService/GetStatement",
    "BillService/SubmitCycleBill",
    "TariffService/GetCycleTariff",
    "MarketService/Enrol",
    "MarketService/SubmitOrder",
    "MarketService/CancelOrder",
    "MarketService/ListOrders",
    "MarketService/ListTrades",
    "MarketService/SubmitAllocation",
    "MarketService/SubmitDelivery",
    "MarketService/GetMessages",
}


def _full(short: str) -> str:
    return f"/zkgrid.settlement.v1.{short}"


def test_policy_is_the_doc_table_and_covers_every_method() -> None:
    methods = {
        f"{service.name}/{method.name}"
        for module in (
            meters_pb2,
            readings_pb2,
            tariffs_pb2,
            bills_pb2,
            ledger_pb2,
            witness_pb2,
            market_pb2,
        )
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert methods == set(DOC_TABLE)
    assert {m.removeprefix("/zkgrid.settlement.v1.") for m in POLICY} == set(DOC_TABLE)
    for short, roles in DOC_TABLE.items():
        rule = POLICY[_full(short)]
        assert set(rule.roles) == roles, short
        assert (rule.meter_id is not None) == (short in OWN_ID_ONLY), short


# ----------------------------------------------------------------------------- certificates


@pytest.fixture(scope="module")
def ca() -> pki.Issued:
    return pki.create_ca()


def test_client_certificate_gives_role_and_identity(ca: pki.Issued) -> None:
    for role, identity in [(M, "meter-0001"), (U, "utility"), (A, "auditor.eu")]:
        issued = pki.issue_client(ca, role, identity)
        assert caller_from_certificate(issued.cert_pem) == Caller(role, identity)


def _cert(ca: pki.Issued, attributes: list[x509.NameAttribute[Any]]) -> bytes:
    key = pki.issue_client(ca, M, "x").key
    now = pki._now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attributes))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + pki._VALIDITY)
        .sign(ca.key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize(
    "attributes",
    [
        [x509.NameAttribute(NameOID.COMMON_NAME, "m1")],
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "meter"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "utility"),
            x509.NameAttribute(NameOID.COMMON_NAME, "m1"),
        ],
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "admin"),
            x509.NameAttribute(NameOID.COMMON_NAME, "m1"),
        ],
        [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "meter")],
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "meter"),
            x509.NameAttribute(NameOID.COMMON_NAME, "m 1/../x"),
        ],
    ],
    ids=["no-ou", "two-ous", "unknown-role", "no-cn", "bad-cn"],
)
def test_unusable_certificates_are_unauthenticated(
    ca: pki.Issued, attributes: list[x509.NameAttribute[Any]]
) -> None:
    with pytest.raises(AuthenticationError):
        caller_from_certificate(_cert(ca, attributes))


def test_garbage_certificate_is_unauthenticated() -> None:
    with pytest.raises(AuthenticationError):
        caller_from_certificate(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


def test_pki_rejects_unknown_roles_and_bad_identities(ca: pki.Issued) -> None:
    with pytest.raises(ValueError, match="role"):
        pki.issue_client(ca, "admin", "x")
    with pytest.raises(ValueError, match="identity"):
        pki.issue_client(ca, M, "bad id")


# ----------------------------------------------------------------------------- metadata (dev only)


def test_metadata_caller() -> None:
    assert caller_from_metadata({"x-zkgrid-role": "meter", "x-zkgrid-identity": "m1"}) == Caller(
        M, "m1"
    )
    assert caller_from_metadata({"x-zkgrid-role": "utility"}) == Caller(U, "utility")
    with pytest.raises(AuthenticationError):
        caller_from_metadata({})
    with pytest.raises(AuthenticationError):
        caller_from_metadata({"x-zkgrid-role": "root"})


# ----------------------------------------------------------------------------- authorize()


class _Ctx:
    def __init__(self, metadata: dict[str, str] | None = None, pem: bytes | None = None) -> None:
        # Duck-typed grpc.ServicerContext: only what Authorizer reads.
        self._metadata = metadata or {}
        self._pem = pem

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return list(self._metadata.items())

    def auth_context(self) -> dict[str, list[bytes]]:
        return {"x509_pem_cert": [self._pem]} if self._pem else {}


def Ctx(metadata: dict[str, str] | None = None, pem: bytes | None = None) -> Any:
    return _Ctx(metadata, pem)


def _md(role: Role, identity: str) -> Any:
    return _Ctx({"x-zkgrid-role": role.value, "x-zkgrid-identity": identity})


SUBMIT = _full("ReadingService/SubmitReadings")
BILL = _full("BillService/SubmitBill")
RECEIPT = _full("ReadingService/GetReceipt")


def _batch(meter_id: str) -> readings_pb2.SubmitReadingsRequest:
    return readings_pb2.SubmitReadingsRequest(batch=readings_pb2.ReadingBatch(meter_id=meter_id))


CYCLE_BILL = _full("BillService/SubmitCycleBill")
CYCLE_TARIFF = _full("TariffService/GetCycleTariff")


def _cycle_bill(meter_id: str) -> bills_pb2.SubmitCycleBillRequest:
    """A SubmitCycleBill request: the meter id is inside the record's bytes (the proof is
    not looked at by authorization)."""
    bill = CycleBill(meter_id, "2025-01-01", "2025-01-02", (b"\1" * 32, b"\2" * 32),
                     b"\3" * 32, 1_000, b"\4" * 64)  # fmt: skip
    return bills_pb2.SubmitCycleBillRequest(cycle_bill=bill.encode())


def test_a_meter_submits_and_reads_cycle_bills_and_tariffs_only_for_its_own_id() -> None:
    auth = Authorizer(insecure=True)
    assert auth.authorize(CYCLE_BILL, _cycle_bill("m1"), _md(M, "m1")) == Caller(M, "m1")
    with pytest.raises(PermissionDeniedError, match="own meter id"):
        auth.authorize(CYCLE_BILL, _cycle_bill("m2"), _md(M, "m1"))
    # bytes that are no cycle bill: the role first, then RECORD_MALFORMED (never a pass)
    with pytest.raises(PermissionDeniedError):
        auth.authorize(CYCLE_BILL, bills_pb2.SubmitCycleBillRequest(cycle_bill=b"x"), _md(U, "u"))
    for junk in (b"", b"\x01junk", _cycle_bill("m1").cycle_bill[:-1]):
        request = bills_pb2.SubmitCycleBillRequest(cycle_bill=junk)
        with pytest.raises(RecordFormatError):
            auth.authorize(CYCLE_BILL, request, _md(M, "m1"))
    mine = tariffs_pb2.GetCycleTariffRequest(meter_id="m1", period="2025-01-01")
    other = tariffs_pb2.GetCycleTariffRequest(meter_id="m2", period="2025-01-01")
    assert auth.authorize(CYCLE_TARIFF, mine, _md(M, "m1")) == Caller(M, "m1")
    with pytest.raises(PermissionDeniedError):
        auth.authorize(CYCLE_TARIFF, other, _md(M, "m1"))
    assert auth.authorize(CYCLE_TARIFF, other, _md(A, "aud")) == Caller(A, "aud")
    assert auth.authorize(CYCLE_TARIFF, other, _md(U, "grid")) == Caller(U, "grid")


def test_meter_acts_only_on_its_own_id() -> None:
    auth = Authorizer(insecure=True)
    assert auth.authorize(SUBMIT, _batch("m1"), _md(M, "m1")) == Caller(M, "m1")
    with pytest.raises(PermissionDeniedError, match="own meter id"):
        auth.authorize(SUBMIT, _batch("m2"), _md(M, "m1"))
    bill = bills_pb2.SubmitBillRequest(bill=bills_pb2.Bill(meter_id="m2"))
    with pytest.raises(PermissionDeniedError):
        auth.authorize(BILL, bill, _md(M, "m1"))
    other = readings_pb2.GetReceiptRequest(meter_id="m2", period="2025-01-01")
    with pytest.raises(PermissionDeniedError):
        auth.authorize(RECEIPT, other, _md(M, "m1"))
    # utility and auditor read any meter's receipt; they cannot submit readings
    assert auth.authorize(RECEIPT, other, _md(A, "auditor")) == Caller(A, "auditor")
    with pytest.raises(PermissionDeniedError):
        auth.authorize(SUBMIT, _batch("m1"), _md(U, "m1"))


_KEY = MeterKey.generate()


def _market_request(short: str, meter_id: str) -> Any:
    """A request of a MarketService method that names ``meter_id`` (inside its record's
    bytes for the records a meter signs)."""
    if short == "MarketService/Enrol":
        enrolment = MarketEnrolment.create(_KEY, meter_id, EncryptionKey.generate().public_key)
        return market_pb2.EnrolRequest(enrolment=enrolment.encode())
    if short == "MarketService/SubmitOrder":
        order = Order.create(
            _KEY, meter_id=meter_id, period="2025-01-02", side=Side.OFFER, first_interval=0,
            last_interval=3, quantity_wh=500, limit_price=120, nonce=7,
        )  # fmt: skip
        return market_pb2.SubmitOrderRequest(order=order.encode())
    if short == "MarketService/CancelOrder":
        cancellation = OrderCancellation.create(_KEY, meter_id, b"\7" * 32)
        return market_pb2.CancelOrderRequest(cancellation=cancellation.encode())
    if short == "MarketService/ListTrades":
        return market_pb2.ListTradesRequest(meter_id=meter_id, period="2025-01-02")
    if short == "MarketService/GetMessages":
        return market_pb2.GetMessagesRequest(meter_id=meter_id, period="2025-01-02")
    if short in ("MarketService/SubmitAllocation", "MarketService/SubmitDelivery"):
        kind = DeliveryAllocation if short.endswith("Allocation") else Delivery
        step = kind.create(
            _KEY, meter_id=meter_id, period="2025-01-02", interval=0, trade_index=0,
            clearing_hash=b"\7" * 32, commitment=commit(5, 7).to_bytes(), proof=b"\1",
            sealed_opening=seal(5, 7, EncryptionKey.generate().public_key, b"ad"),
        )  # fmt: skip
        if kind is DeliveryAllocation:
            return market_pb2.SubmitAllocationRequest(allocation=step.encode())
        return market_pb2.SubmitDeliveryRequest(delivery=step.encode())
    return market_pb2.ListOrdersRequest(meter_id=meter_id, period="2025-01-02")


MARKET_OWN = (
    "Enrol",
    "SubmitOrder",
    "CancelOrder",
    "ListOrders",
    "ListTrades",
    "SubmitAllocation",
    "SubmitDelivery",
    "GetMessages",
)


@pytest.mark.parametrize("name", MARKET_OWN)
def test_a_meter_acts_in_the_market_only_for_its_own_id(name: str) -> None:
    """The id inside a signed record's bytes (or the request's meter_id) is the meter's CN;
    a meter never lists every meter's orders or trades (an empty meter_id)."""
    auth = Authorizer(insecure=True)
    method = _full(f"MarketService/{name}")
    assert auth.authorize(method, _market_request(f"MarketService/{name}", "m1"), _md(M, "m1"))
    with pytest.raises(PermissionDeniedError, match="own meter id"):
        auth.authorize(method, _market_request(f"MarketService/{name}", "m2"), _md(M, "m1"))
    if name == "GetMessages":
        return
    if name in ("ListOrders", "ListTrades"):
        everyone = _market_request(f"MarketService/{name}", "")
        with pytest.raises(PermissionDeniedError):
            auth.authorize(method, everyone, _md(M, "m1"))
        for role in (U, A):
            assert auth.authorize(method, everyone, _md(role, "x")) == Caller(role, "x")
    else:  # bytes that are not the record: RECORD_MALFORMED after the role check
        field = {
            "Enrol": "enrolment",
            "SubmitOrder": "order",
            "CancelOrder": "cancellation",
            "SubmitAllocation": "allocation",
            "SubmitDelivery": "delivery",
        }
        request = type(_market_request(f"MarketService/{name}", "m1"))(**{field[name]: b"\x01x"})
        with pytest.raises(RecordFormatError):
            auth.authorize(method, request, _md(M, "m1"))
        with pytest.raises(PermissionDeniedError):
            auth.authorize(method, request, _md(U, "u"))


@pytest.mark.parametrize("short", sorted(DOC_TABLE))
@pytest.mark.parametrize("role", list(Role))
def test_every_method_and_role(short: str, role: Role) -> None:
    auth = Authorizer(insecure=True)
    request: Any = _batch("m1") if short == "ReadingService/SubmitReadings" else None
    if short == "BillService/SubmitBill":
        request = bills_pb2.SubmitBillRequest(bill=bills_pb2.Bill(meter_id="m1"))
    elif short == "BillService/SubmitCycleBill":
        request = _cycle_bill("m1")
    elif short.startswith("MarketService/") and short in OWN_ID_ONLY:
        request = _market_request(short, "m1")
    elif short in OWN_ID_ONLY and request is None:
        request = readings_pb2.GetReceiptRequest(meter_id="m1")
    if role in DOC_TABLE[short]:
        assert auth.authorize(_full(short), request, _md(role, "m1")) == Caller(role, "m1")
    else:
        with pytest.raises(PermissionDeniedError):
            auth.authorize(_full(short), request, _md(role, "m1"))


def test_health_and_reflection_are_public_and_unknown_methods_denied() -> None:
    auth = Authorizer(insecure=False)
    assert auth.authorize("/grpc.health.v1.Health/Check", None, Ctx()) is None
    assert (
        auth.authorize(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", None, Ctx()
        )
        is None
    )
    with pytest.raises(PermissionDeniedError):
        auth.authorize("/zkgrid.settlement.v1.MeterService/DeleteEverything", None, _md(U, "u"))


def test_tls_mode_ignores_role_metadata(ca: pki.Issued) -> None:
    auth = Authorizer(insecure=False)
    with pytest.raises(AuthenticationError):
        auth.authorize(_full("MeterService/RegisterMeter"), None, _md(U, "utility"))
    meter = pki.issue_client(ca, M, "m1").cert_pem
    context = Ctx({"x-zkgrid-role": "utility"}, pem=meter)
    with pytest.raises(PermissionDeniedError):
        auth.authorize(_full("MeterService/RegisterMeter"), None, context)
