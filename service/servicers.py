"""gRPC servicers of the settlement API: decode → call the domain → encode.

No checks and no error handling here: the domain (``service.settlement``) and
the store raise typed ``ZkgridError``s, the interceptor
(:mod:`service.interceptors`) authorizes calls and maps errors to statuses.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from ledger.checkpoint import SignedCheckpoint
from ledger.cosignature import Cosignature, WitnessRegistration
from service import codec
from service.auth import Role, current_caller
from service.market import (
    DeliveryStatus,
    Market,
    OrderLine,
    OrderStatus,
    TradeLine,
    TradeSteps,
)
from service.settlement import Settlement, StatementLine
from service.storage import EntryNotFound, LedgerStore
from service.witnesses import Witnesses
from settlement import convert
from settlement.market import DeliveryStep, Side
from settlement.records import CycleBill
from zkgrid.errors import InvalidArgumentError
from zkgrid.settlement.v1 import (
    bills_pb2,
    bills_pb2_grpc,
    ledger_pb2,
    ledger_pb2_grpc,
    market_pb2,
    market_pb2_grpc,
    meters_pb2,
    meters_pb2_grpc,
    readings_pb2,
    readings_pb2_grpc,
    tariffs_pb2,
    tariffs_pb2_grpc,
    witness_pb2,
    witness_pb2_grpc,
)

__all__ = [
    "MAX_INDEX",
    "BillServicer",
    "LedgerServicer",
    "MarketServicer",
    "MeterServicer",
    "ReadingServicer",
    "TariffServicer",
    "WitnessServicer",
    "add_domain_servicers",
    "add_witness_servicer",
    "make_settlement",
]

#: Largest index or size the API accepts (the store's integer columns are signed 64-bit).
MAX_INDEX = 2**63 - 1


def _index(value: int, what: str) -> int:
    if value > MAX_INDEX:
        raise InvalidArgumentError(f"{what} must be below 2^63")
    return int(value)


class LedgerServicer(ledger_pb2_grpc.LedgerServiceServicer):
    """LedgerService: checkpoints, entries and proofs, straight from the store."""

    def __init__(self, store: LedgerStore) -> None:
        self._store = store

    def _checkpoint_at(self, size: int) -> SignedCheckpoint | None:
        try:
            return self._store.checkpoint_at(size)
        except EntryNotFound:
            return None

    def GetCheckpoint(
        self, request: ledger_pb2.GetCheckpointRequest, context: grpc.ServicerContext
    ) -> ledger_pb2.GetCheckpointResponse:
        if request.HasField("tree_size"):
            signed = self._store.checkpoint_at(_index(request.tree_size, "tree_size"))
        else:
            signed = self._store.latest_checkpoint()
        return ledger_pb2.GetCheckpointResponse(
            checkpoint=signed.to_text(),
            tree_size=signed.checkpoint.size,
            root_hash=signed.checkpoint.root,
        )

    def StreamEntries(
        self, request: ledger_pb2.StreamEntriesRequest, context: grpc.ServicerContext
    ) -> Iterator[ledger_pb2.StreamEntriesResponse]:
        start = _index(request.start_index, "start_index")
        end = _index(request.end_index, "end_index") if request.HasField("end_index") else None
        for entry in self._store.entries(start, end):
            if not context.is_active():  # cancelled or past its deadline: stop reading
                return
            yield ledger_pb2.StreamEntriesResponse(
                entry=ledger_pb2.LedgerEntry(
                    index=entry.index,
                    kind=f"ENTRY_KIND_{entry.kind.name}",
                    payload=entry.payload,
                    leaf_hash=entry.leaf_hash,
                )
            )

    def GetInclusionProof(
        self, request: ledger_pb2.GetInclusionProofRequest, context: grpc.ServicerContext
    ) -> ledger_pb2.GetInclusionProofResponse:
        index = _index(request.leaf_index, "leaf_index")
        signed: SignedCheckpoint | None
        if request.HasField("tree_size"):
            size = _index(request.tree_size, "tree_size")
            hashes = self._store.inclusion_proof(index, size)
            signed = self._checkpoint_at(size)
        else:
            signed = self._store.latest_checkpoint()
            size = signed.checkpoint.size
            hashes = self._store.inclusion_proof(index, size)
        return ledger_pb2.GetInclusionProofResponse(
            leaf_index=index,
            tree_size=size,
            leaf_hash=self._store.entry(index).leaf_hash,
            hashes=hashes,
            checkpoint=signed.to_text() if signed is not None else "",
        )

    def GetConsistencyProof(
        self, request: ledger_pb2.GetConsistencyProofRequest, context: grpc.ServicerContext
    ) -> ledger_pb2.GetConsistencyProofResponse:
        first = _index(request.first_size, "first_size")
        signed: SignedCheckpoint | None
        if request.HasField("second_size"):
            second = _index(request.second_size, "second_size")
            hashes = self._store.consistency_proof(first, second)
            signed = self._checkpoint_at(second)
        else:
            signed = self._store.latest_checkpoint()
            second = signed.checkpoint.size
            hashes = self._store.consistency_proof(first, second)
        return ledger_pb2.GetConsistencyProofResponse(
            first_size=first,
            second_size=second,
            hashes=hashes,
            checkpoint=signed.to_text() if signed is not None else "",
        )


def _as_meter() -> str | None:
    """The acting meter's id when the caller has the meter role (the domain re-checks it)."""
    caller = current_caller.get()
    return caller.identity if caller is not None and caller.role is Role.METER else None


class MeterServicer(meters_pb2_grpc.MeterServiceServicer):
    """MeterService over the settlement domain."""

    def __init__(self, settlement: Settlement) -> None:
        self._settlement = settlement

    def RegisterMeter(
        self, request: meters_pb2.RegisterMeterRequest, context: grpc.ServicerContext
    ) -> meters_pb2.RegisterMeterResponse:
        receipt = self._settlement.register_meter(
            convert.registration_from_proto(request.registration)
        )
        return meters_pb2.RegisterMeterResponse(receipt=codec.receipt_to_proto(receipt))

    def RevokeMeter(
        self, request: meters_pb2.RevokeMeterRequest, context: grpc.ServicerContext
    ) -> meters_pb2.RevokeMeterResponse:
        receipt = self._settlement.revoke_meter(request.meter_id, request.reason)
        return meters_pb2.RevokeMeterResponse(receipt=codec.receipt_to_proto(receipt))

    def GetMeter(
        self, request: meters_pb2.GetMeterRequest, context: grpc.ServicerContext
    ) -> meters_pb2.GetMeterResponse:
        info = self._settlement.get_meter(request.meter_id)
        receipt = self._settlement.get_meter_receipt(request.meter_id)
        return meters_pb2.GetMeterResponse(
            registration=convert.registration_to_proto(info.registration),
            status=(
                meters_pb2.METER_STATUS_REVOKED if info.revoked else meters_pb2.METER_STATUS_ACTIVE
            ),
            revocation_reason=info.revocation_reason or "",
            receipt=codec.receipt_to_proto(receipt),
            next_sequence=info.next_sequence,
            last_batch_hash=info.last_batch_hash,
        )


class ReadingServicer(readings_pb2_grpc.ReadingServiceServicer):
    """ReadingService over the settlement domain."""

    def __init__(self, settlement: Settlement) -> None:
        self._settlement = settlement

    def SubmitReadings(
        self, request: readings_pb2.SubmitReadingsRequest, context: grpc.ServicerContext
    ) -> readings_pb2.SubmitReadingsResponse:
        batch = convert.reading_batch_from_proto(request.batch)
        receipt = self._settlement.submit_readings(batch, as_meter=_as_meter())
        return readings_pb2.SubmitReadingsResponse(
            receipt=codec.receipt_to_proto(receipt), batch_hash=batch.batch_hash()
        )

    def GetReceipt(
        self, request: readings_pb2.GetReceiptRequest, context: grpc.ServicerContext
    ) -> readings_pb2.GetReceiptResponse:
        as_meter = _as_meter()
        receipt, batch_hash = self._settlement.get_batch_receipt(
            request.meter_id, request.period, as_meter=as_meter
        )
        return readings_pb2.GetReceiptResponse(
            receipt=codec.receipt_to_proto(receipt), batch_hash=batch_hash
        )


class TariffServicer(tariffs_pb2_grpc.TariffServiceServicer):
    """TariffService over the settlement domain."""

    def __init__(self, settlement: Settlement) -> None:
        self._settlement = settlement

    def PublishTariff(
        self, request: tariffs_pb2.PublishTariffRequest, context: grpc.ServicerContext
    ) -> tariffs_pb2.PublishTariffResponse:
        tariff = convert.tariff_from_proto(request.tariff)
        receipt = self._settlement.publish_tariff(tariff)
        return tariffs_pb2.PublishTariffResponse(
            receipt=codec.receipt_to_proto(receipt), tariff_hash=tariff.tariff_hash()
        )

    def GetTariff(
        self, request: tariffs_pb2.GetTariffRequest, context: grpc.ServicerContext
    ) -> tariffs_pb2.GetTariffResponse:
        tariff, receipt = self._settlement.get_tariff(request.period)
        return tariffs_pb2.GetTariffResponse(
            tariff=convert.tariff_to_proto(tariff),
            tariff_hash=tariff.tariff_hash(),
            receipt=codec.receipt_to_proto(receipt),
        )

    def PublishCycleTariff(
        self, request: tariffs_pb2.PublishCycleTariffRequest, context: grpc.ServicerContext
    ) -> tariffs_pb2.PublishTariffResponse:
        tariff = convert.cycle_tariff_from_bytes(request.cycle_tariff)
        receipt = self._settlement.publish_cycle_tariff(tariff)
        return tariffs_pb2.PublishTariffResponse(
            receipt=codec.receipt_to_proto(receipt), tariff_hash=tariff.tariff_hash()
        )

    def GetCycleTariff(
        self, request: tariffs_pb2.GetCycleTariffRequest, context: grpc.ServicerContext
    ) -> tariffs_pb2.GetCycleTariffResponse:
        tariff, receipt = self._settlement.get_cycle_tariff(
            request.meter_id, request.period, as_meter=_as_meter()
        )
        return tariffs_pb2.GetCycleTariffResponse(
            cycle_tariff=convert.cycle_tariff_to_bytes(tariff),
            tariff_hash=tariff.tariff_hash(),
            receipt=codec.receipt_to_proto(receipt),
        )


class BillServicer(bills_pb2_grpc.BillServiceServicer):
    """BillService over the settlement domain."""

    def __init__(self, settlement: Settlement) -> None:
        self._settlement = settlement

    def SubmitBill(
        self, request: bills_pb2.SubmitBillRequest, context: grpc.ServicerContext
    ) -> bills_pb2.SubmitBillResponse:
        bill = convert.bill_from_proto(request.bill)
        receipt = self._settlement.submit_bill(bill, as_meter=_as_meter())
        return bills_pb2.SubmitBillResponse(receipt=codec.receipt_to_proto(receipt))

    def SubmitCycleBill(
        self, request: bills_pb2.SubmitCycleBillRequest, context: grpc.ServicerContext
    ) -> bills_pb2.SubmitBillResponse:
        bill = convert.cycle_bill_from_bytes(request.cycle_bill)
        receipt = self._settlement.submit_cycle_bill(bill, as_meter=_as_meter())
        return bills_pb2.SubmitBillResponse(receipt=codec.receipt_to_proto(receipt))

    def GetStatement(
        self, request: bills_pb2.GetStatementRequest, context: grpc.ServicerContext
    ) -> bills_pb2.GetStatementResponse:
        statement = self._settlement.get_statement(
            request.meter_id, request.period or None, as_meter=_as_meter()
        )
        return bills_pb2.GetStatementResponse(
            meter_id=statement.meter_id,
            lines=[_statement_line(line) for line in statement.lines],
            total=statement.total,
        )


def _statement_line(line: StatementLine) -> bills_pb2.StatementLine:
    """A statement line: a day's bill in ``bill``, a cycle bill's bytes in ``cycle_bill``."""
    receipt = codec.receipt_to_proto(line.receipt)
    if isinstance(line.bill, CycleBill):
        return bills_pb2.StatementLine(
            cycle_bill=convert.cycle_bill_to_bytes(line.bill),
            receipt=receipt,
            currency=line.currency,
        )
    return bills_pb2.StatementLine(
        bill=convert.bill_to_proto(line.bill), receipt=receipt, currency=line.currency
    )


_ORDER_STATUS = {
    OrderStatus.LIVE: market_pb2.ORDER_STATUS_LIVE,
    OrderStatus.CANCELLED: market_pb2.ORDER_STATUS_CANCELLED,
    OrderStatus.WITHDRAWN: market_pb2.ORDER_STATUS_WITHDRAWN,
}
_SIDE = {
    None: market_pb2.SIDE_UNSPECIFIED,
    Side.OFFER: market_pb2.SIDE_OFFER,
    Side.BID: market_pb2.SIDE_BID,
}


def _market_order(line: OrderLine) -> market_pb2.MarketOrder:
    return market_pb2.MarketOrder(
        order=convert.order_to_bytes(line.order),
        order_hash=line.order_hash,
        ledger_index=line.index,
        status=_ORDER_STATUS[line.status],
        cancellation_index=line.cancellation_index or 0,
    )


def _market_trade(line: TradeLine) -> market_pb2.MarketTrade:
    return market_pb2.MarketTrade(
        interval=line.interval,
        index=line.index,
        side=_SIDE[line.side],
        counterparty=line.counterparty or "",
        seller=line.seller,
        buyer=line.buyer,
        quantity_wh=line.quantity,
        price=line.price,
    )


_DELIVERY_STATUS = {
    DeliveryStatus.PENDING: market_pb2.DELIVERY_STATUS_PENDING,
    DeliveryStatus.ALLOCATED: market_pb2.DELIVERY_STATUS_ALLOCATED,
    DeliveryStatus.DELIVERED: market_pb2.DELIVERY_STATUS_DELIVERED,
    DeliveryStatus.DEFAULTED: market_pb2.DELIVERY_STATUS_DEFAULTED,
}
_DELIVERY_STEP = {
    None: market_pb2.DELIVERY_STEP_UNSPECIFIED,
    DeliveryStep.ALLOCATION: market_pb2.DELIVERY_STEP_ALLOCATION,
    DeliveryStep.DELIVERY: market_pb2.DELIVERY_STEP_DELIVERY,
}


def _trade_messages(steps: TradeSteps) -> market_pb2.TradeMessages:
    line = steps.trade
    return market_pb2.TradeMessages(
        interval=line.interval,
        index=line.index,
        side=_SIDE[line.side],
        counterparty=line.counterparty or "",
        quantity_wh=line.quantity,
        price=line.price,
        status=_DELIVERY_STATUS[steps.status],
        allocation=b"" if steps.allocation is None else steps.allocation.encode(),
        allocation_index=steps.allocation_index or 0,
        delivery=b"" if steps.delivery is None else steps.delivery.encode(),
        delivery_index=steps.delivery_index or 0,
        defaulted_step=_DELIVERY_STEP[steps.defaulted_step],
        trade_id=steps.trade_id,
    )


class MarketServicer(market_pb2_grpc.MarketServiceServicer):
    """MarketService over the market's domain (:mod:`service.market`)."""

    def __init__(self, market: Market) -> None:
        self._market = market

    def Enrol(
        self, request: market_pb2.EnrolRequest, context: grpc.ServicerContext
    ) -> market_pb2.EnrolResponse:
        enrolment = convert.enrolment_from_bytes(request.enrolment)
        receipt = self._market.enrol(enrolment, as_meter=_as_meter())
        return market_pb2.EnrolResponse(receipt=codec.receipt_to_proto(receipt))

    def PublishMarketDay(
        self, request: market_pb2.PublishMarketDayRequest, context: grpc.ServicerContext
    ) -> market_pb2.PublishMarketDayResponse:
        day = convert.market_day_from_bytes(request.market_day)
        receipt = self._market.publish_market_day(day)
        return market_pb2.PublishMarketDayResponse(receipt=codec.receipt_to_proto(receipt))

    def SubmitOrder(
        self, request: market_pb2.SubmitOrderRequest, context: grpc.ServicerContext
    ) -> market_pb2.SubmitOrderResponse:
        order = convert.order_from_bytes(request.order)
        receipt = self._market.submit_order(order, as_meter=_as_meter())
        return market_pb2.SubmitOrderResponse(
            receipt=codec.receipt_to_proto(receipt), order_hash=order.order_hash()
        )

    def CancelOrder(
        self, request: market_pb2.CancelOrderRequest, context: grpc.ServicerContext
    ) -> market_pb2.CancelOrderResponse:
        cancellation = convert.cancellation_from_bytes(request.cancellation)
        receipt = self._market.cancel_order(cancellation, as_meter=_as_meter())
        return market_pb2.CancelOrderResponse(receipt=codec.receipt_to_proto(receipt))

    def ListOrders(
        self, request: market_pb2.ListOrdersRequest, context: grpc.ServicerContext
    ) -> market_pb2.ListOrdersResponse:
        lines = self._market.list_orders(
            request.period, request.meter_id or None, as_meter=_as_meter()
        )
        return market_pb2.ListOrdersResponse(orders=[_market_order(line) for line in lines])

    def GetMarketResult(
        self, request: market_pb2.GetMarketResultRequest, context: grpc.ServicerContext
    ) -> market_pb2.GetMarketResultResponse:
        result = self._market.result(request.period, as_meter=_as_meter())
        return market_pb2.GetMarketResultResponse(
            market_day=convert.market_day_to_bytes(result.day),
            cleared=result.cleared,
            intervals=[
                market_pb2.IntervalResult(interval=t, price=price, volume=volume)
                for t, (price, volume) in enumerate(result.intervals or ())
            ],
            clearing=b"" if result.clearing is None else convert.clearing_to_bytes(result.clearing),
            receipt=None if result.receipt is None else codec.receipt_to_proto(result.receipt),
        )

    def ListTrades(
        self, request: market_pb2.ListTradesRequest, context: grpc.ServicerContext
    ) -> market_pb2.ListTradesResponse:
        found = self._market.trades(request.period, request.meter_id or None, as_meter=_as_meter())
        return market_pb2.ListTradesResponse(
            cleared=found.cleared,
            trades=[_market_trade(line) for line in found.trades],
            clearing_hash=found.clearing_hash or b"",
        )

    def Clear(
        self, request: market_pb2.ClearRequest, context: grpc.ServicerContext
    ) -> market_pb2.ClearResponse:
        cleared = self._market.clear(request.period)
        return market_pb2.ClearResponse(
            receipt=codec.receipt_to_proto(cleared.receipt),
            clearing=convert.clearing_to_bytes(cleared.clearing),
            appended=cleared.appended,
        )

    def SubmitAllocation(
        self, request: market_pb2.SubmitAllocationRequest, context: grpc.ServicerContext
    ) -> market_pb2.SubmitAllocationResponse:
        allocation = convert.allocation_from_bytes(request.allocation)
        receipt = self._market.submit_allocation(allocation, as_meter=_as_meter())
        return market_pb2.SubmitAllocationResponse(receipt=codec.receipt_to_proto(receipt))

    def SubmitDelivery(
        self, request: market_pb2.SubmitDeliveryRequest, context: grpc.ServicerContext
    ) -> market_pb2.SubmitDeliveryResponse:
        delivery = convert.delivery_from_bytes(request.delivery)
        receipt = self._market.submit_delivery(delivery, as_meter=_as_meter())
        return market_pb2.SubmitDeliveryResponse(receipt=codec.receipt_to_proto(receipt))

    def RecordDefaults(
        self, request: market_pb2.RecordDefaultsRequest, context: grpc.ServicerContext
    ) -> market_pb2.RecordDefaultsResponse:
        recorded = self._market.record_defaults(request.period)
        return market_pb2.RecordDefaultsResponse(
            defaults=[
                market_pb2.RecordedDefault(
                    delivery_default=convert.delivery_default_to_bytes(item.default),
                    receipt=codec.receipt_to_proto(item.receipt),
                )
                for item in recorded
            ]
        )

    def GetMessages(
        self, request: market_pb2.GetMessagesRequest, context: grpc.ServicerContext
    ) -> market_pb2.GetMessagesResponse:
        found = self._market.messages(request.period, request.meter_id, as_meter=_as_meter())
        return market_pb2.GetMessagesResponse(
            cleared=found.cleared,
            clearing_hash=found.clearing_hash or b"",
            trades=[_trade_messages(steps) for steps in found.trades],
        )


def make_settlement(
    store: LedgerStore, verify_processes: int = 0, late_days: int | None = None
) -> Settlement:
    """The domain over ``store`` (replays the ledger; owns its proof verifier)."""
    return Settlement(store, verify_processes=verify_processes, late_days=late_days)


def add_domain_servicers(settlement: Settlement, server: grpc.Server) -> list[str]:
    """Register the Meter, Reading, Tariff, Bill and Market servicers; return their full
    names."""
    meters_pb2_grpc.add_MeterServiceServicer_to_server(MeterServicer(settlement), server)
    readings_pb2_grpc.add_ReadingServiceServicer_to_server(ReadingServicer(settlement), server)
    tariffs_pb2_grpc.add_TariffServiceServicer_to_server(TariffServicer(settlement), server)
    bills_pb2_grpc.add_BillServiceServicer_to_server(BillServicer(settlement), server)
    market_pb2_grpc.add_MarketServiceServicer_to_server(MarketServicer(Market(settlement)), server)
    return [
        str(module.DESCRIPTOR.services_by_name[name].full_name)
        for module, name in (
            (meters_pb2, "MeterService"),
            (readings_pb2, "ReadingService"),
            (tariffs_pb2, "TariffService"),
            (bills_pb2, "BillService"),
            (market_pb2, "MarketService"),
        )
    ]


class WitnessServicer(witness_pb2_grpc.WitnessServiceServicer):
    """WitnessService over :class:`service.witnesses.Witnesses`."""

    def __init__(self, witnesses: Witnesses) -> None:
        self._witnesses = witnesses

    def RegisterWitness(
        self, request: witness_pb2.RegisterWitnessRequest, context: grpc.ServicerContext
    ) -> witness_pb2.RegisterWitnessResponse:
        registration = WitnessRegistration.decode(bytes(request.registration))
        receipt = self._witnesses.register(registration)
        return witness_pb2.RegisterWitnessResponse(receipt=codec.receipt_to_proto(receipt))

    def AddCosignature(
        self, request: witness_pb2.AddCosignatureRequest, context: grpc.ServicerContext
    ) -> witness_pb2.AddCosignatureResponse:
        added = self._witnesses.add_cosignature(
            Cosignature(request.witness_name, bytes(request.signature)),
            tree_size=_index(request.tree_size, "tree_size"),
            root=bytes(request.root_hash),
            checkpoint=request.checkpoint or None,
        )
        return witness_pb2.AddCosignatureResponse(
            tree_size=added.tree_size,
            recorded=added.recorded,
            cosignatures=added.cosignatures,
            quorum_threshold=added.quorum_threshold,
        )

    def GetCosignedCheckpoint(
        self, request: witness_pb2.GetCosignedCheckpointRequest, context: grpc.ServicerContext
    ) -> witness_pb2.GetCosignedCheckpointResponse:
        size = _index(request.tree_size, "tree_size") if request.HasField("tree_size") else None
        view = self._witnesses.cosigned(size)
        cosigned = view.cosigned
        return witness_pb2.GetCosignedCheckpointResponse(
            checkpoint=view.checkpoint.to_text(),
            tree_size=view.checkpoint.checkpoint.size,
            root_hash=view.checkpoint.checkpoint.root,
            aggregate_signature=b"" if cosigned is None else cosigned.aggregate_signature,
            signers=list(view.signers),
            quorum_threshold=view.quorum_threshold,
            quorum_total=view.quorum_total,
            final=view.final,
            cosigned_checkpoint=b"" if cosigned is None else cosigned.encode(),
        )

    def ListWitnesses(
        self, request: witness_pb2.ListWitnessesRequest, context: grpc.ServicerContext
    ) -> witness_pb2.ListWitnessesResponse:
        size = _index(request.tree_size, "tree_size") if request.HasField("tree_size") else None
        members, tree_size = self._witnesses.members(size)
        return witness_pb2.ListWitnessesResponse(
            witnesses=[convert.witness_to_proto(m.registration, m.index) for m in members],
            tree_size=tree_size,
        )


def add_witness_servicer(witnesses: Witnesses, server: grpc.Server) -> str:
    """Register the WitnessService servicer; return its full name."""
    witness_pb2_grpc.add_WitnessServiceServicer_to_server(WitnessServicer(witnesses), server)
    return str(witness_pb2.DESCRIPTOR.services_by_name["WitnessService"].full_name)
