"""The meter's delivery steps of its market trades (docs/design/market-v1.md, "Delivery and
settlement over commitments"; the equations docs/notes/market.md (D1)-(D10)).

For each of the meter's trades of a period, interval by interval and in trade order
within an interval (a step needs the delivered openings of the party's earlier trades of
the interval, rule M13):

* **as seller**, once its batch of the period is accepted and its earlier trades of the
  interval are settled (delivered, the opening known here, or defaulted): ``a = min(q, E -
  Σ d_j)`` from its own export opening ``E`` of the interval and the earlier ``d_j``,
  proven with :func:`settlement.market_circuits.prove_allocation`, the opening ``(a,
  alpha)`` sealed to the buyer's enrolment key, signed and submitted; then it waits for
  the buyer. Once the buyer delivered, it opens the buyer's sealed ``(d, delta)`` with its
  ``market.key`` (checked to open ``D``: (D10)) and keeps it.
* **as buyer**, once the seller's allocation is on the ledger, its batch accepted and its
  earlier trades settled: it opens the seller's sealed ``(a, alpha)`` (checked to open
  ``A``), computes ``d = min(a, I - Σ d_j)``, proves it
  (:func:`~settlement.market_circuits.prove_delivery`), seals ``(d, delta)`` to the
  seller, signs and submits; the trade is settled and its next trade of the interval can
  follow in the same run.

Every record is stored in the opening store (``trade_deliveries``) before it is sent, so
a retry after a lost answer resends the same bytes (a proof and a signature are
randomised: a second record would be another step); every opening made or learned is
kept there, for the meter's later trades and its bills. A step that cannot be made yet is
``waiting`` (not an error): its inputs are not on the ledger yet
(``DELIVERY_NOT_READY``), the counterparty has not acted, or the batch is not accepted.

This module is transport-free: :func:`run_steps` takes what the service says of each
trade (:class:`TradeSteps`) and a :class:`StepSubmitter`; ``meter.market`` wires it to
``MarketService``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Literal, Protocol

from meter.openings import OpeningStore, StoredBatch, StoredTradeDelivery
from settlement.market import Delivery, DeliveryAllocation, DeliveryStep, trade_id
from settlement.market_circuits import (
    ALLOCATION,
    DELIVERY,
    allocation_of,
    delivery_context,
    delivery_of,
    prove_allocation,
    prove_delivery,
)
from settlement.records import MeterKey, ReadingBatch, RecordFormatError
from settlement.sealed import EncryptionKey, open_sealed, seal
from zkgrid.errors import Reason, ZkgridError
from zkp.pedersen import commit

__all__ = [
    "StepOutcome",
    "StepSubmitter",
    "TradeRef",
    "TradeState",
    "TradeSteps",
    "run_steps",
]

#: Refusals after which a step may succeed later: its inputs are not on the ledger yet.
_RETRY_LATER = frozenset({Reason.DELIVERY_NOT_READY})


class TradeState(Enum):
    """Where a trade's delivery stands on the ledger."""

    OPEN = "open"  # no step yet
    ALLOCATED = "allocated"  # the seller's allocation, no delivery yet
    DELIVERED = "delivered"  # both steps
    ALLOCATION_DEFAULTED = "allocation_defaulted"  # the seller missed its step: d = 0
    DELIVERY_DEFAULTED = "delivery_defaulted"  # the buyer missed its step: d = 0

    @property
    def defaulted(self) -> DeliveryStep | None:
        if self is TradeState.ALLOCATION_DEFAULTED:
            return DeliveryStep.ALLOCATION
        if self is TradeState.DELIVERY_DEFAULTED:
            return DeliveryStep.DELIVERY
        return None


@dataclass(frozen=True)
class TradeRef:
    """One of the meter's trades: interval, index, its side, the counterparty, ``q``."""

    interval: int
    index: int
    side: Literal["seller", "buyer"]
    counterparty: str
    quantity_wh: int


@dataclass(frozen=True)
class TradeSteps:
    """What the service says of one of the meter's trades: its state, the counterparty's
    record addressed to the meter (the seller's allocation for a buyer, the buyer's
    delivery for a seller) and the counterparty's enrolment (encryption) key."""

    state: TradeState
    allocation: bytes | None = None
    delivery: bytes | None = None
    counterparty_key: bytes | None = None


class StepSubmitter(Protocol):
    """Sends a step (raises :class:`~zkgrid.errors.ZkgridError` on a refusal)."""

    def submit_allocation(self, record: DeliveryAllocation) -> None: ...

    def submit_delivery(self, record: Delivery) -> None: ...


StepStatus = Literal["made", "settled", "waiting", "refused"]


@dataclass(frozen=True)
class StepOutcome:
    """What :func:`run_steps` did for one trade: ``made`` (a step submitted now),
    ``settled`` (nothing left to do), ``waiting`` (``detail`` says for what) or
    ``refused`` (``detail`` says why; ``reason`` the refusal's). ``delivered_wh``: the
    trade's delivered energy when known here."""

    trade: TradeRef
    status: StepStatus
    detail: str
    delivered_wh: int | None = None
    reason: str | None = None


class _Waiting(Exception):
    def __init__(self, detail: str) -> None:
        self.detail = detail


class _Refused(Exception):
    def __init__(self, detail: str, reason: str) -> None:
        self.detail = detail
        self.reason = reason


def _check_record(
    record: DeliveryAllocation | Delivery,
    period: str,
    trade: TradeRef,
    clearing_hash: bytes,
    meter_id: str,
) -> None:
    if (
        record.period != period
        or (record.interval, record.trade_index) != (trade.interval, trade.index)
        or record.clearing_hash != clearing_hash
        or record.meter_id != meter_id
    ):
        raise _Refused(
            f"the service sent a {type(record).__name__} of another trade or party",
            Reason.RECORD_MALFORMED.value,
        )


def _decode(
    record_type: type[DeliveryAllocation] | type[Delivery], data: bytes
) -> Delivery | DeliveryAllocation:
    try:
        return record_type.decode(data)
    except RecordFormatError as exc:
        raise _Refused(
            f"the counterparty's record does not decode: {exc}", exc.reason.value
        ) from None


def _open(
    record: DeliveryAllocation | Delivery, market_key: EncryptionKey, tid: bytes, step: str
) -> tuple[int, int]:
    """(D10) the counterparty's sealed opening of ``record``'s commitment; a box that does
    not open it is refused (and reported: only the recipient can tell)."""
    try:
        opening = open_sealed(
            record.sealed_opening, market_key, record.commitment, delivery_context(tid, step)
        )
    except ZkgridError as exc:
        raise _Refused(
            f"the counterparty's sealed {step} does not open its commitment ({exc}):"
            " report it to the utility",
            exc.reason.value,
        ) from None
    return opening.value, opening.blinding


def _check_opens(commitment: bytes, value: int, blinding: int) -> None:
    if commit(value, blinding).to_bytes() != commitment:  # the prover's own output
        raise _Refused("the step's opening does not open its commitment", Reason.INTERNAL.value)


def _accepted(batch: StoredBatch | None, period: str) -> StoredBatch:
    if batch is None:
        raise _Waiting(f"no readings of {period} were submitted from this home")
    if batch.status != "accepted":
        raise _Waiting(f"the batch of {period} is not accepted yet: submit it first")
    return batch


def _delivered_opening(row: StoredTradeDelivery) -> tuple[int, int]:
    if row.delivered is None or row.delivery_blinding is None:
        raise _Refused("the store holds no delivered opening", Reason.OPENING_STORE.value)
    return row.delivered, row.delivery_blinding


def _delivery_commitment(row: StoredTradeDelivery) -> bytes:
    if row.delivery is None:
        raise _Refused(
            "the store holds a delivered opening without its record", Reason.OPENING_STORE.value
        )
    return Delivery.decode(row.delivery).commitment


def _submit(send: Callable[[], None]) -> None:
    """Send a step; a refusal a retry can lift is waiting, another is refused."""
    try:
        send()
    except ZkgridError as exc:
        if exc.reason in _RETRY_LATER:
            raise _Waiting(
                f"the service says its inputs are not on the ledger yet ({exc})"
            ) from None
        if getattr(exc, "transient", False):
            raise
        raise _Refused(f"the service refused the step: {exc}", exc.reason.value) from None


def run_steps(
    *,
    meter_id: str,
    key: MeterKey,
    market_key: EncryptionKey,
    store: OpeningStore,
    period: str,
    clearing_hash: bytes,
    trades: Sequence[TradeRef],
    steps: Mapping[tuple[int, int], TradeSteps],
    batch: StoredBatch | None,
    submitter: StepSubmitter,
    progress: Callable[[str], None] | None = None,
) -> list[StepOutcome]:
    """Make every step of the meter's ``trades`` of ``period`` that is possible now (module
    docstring), in trade order per interval; one outcome per trade, in trade order."""
    by_interval: dict[int, list[TradeRef]] = {}
    for t in sorted(trades, key=lambda t: (t.interval, t.index)):
        by_interval.setdefault(t.interval, []).append(t)
    outcomes: list[StepOutcome] = []
    for interval, in_interval in by_interval.items():
        # The meter's earlier trades of the interval: their D and its opening (d, delta).
        earlier: list[tuple[bytes, tuple[int, int]]] = []
        blocked: str | None = None
        for trade in in_interval:
            if blocked is not None:
                outcomes.append(StepOutcome(trade, "waiting", blocked, None))
                continue
            try:
                outcome, opening = _trade_step(
                    meter_id=meter_id, key=key, market_key=market_key, store=store,
                    period=period, clearing_hash=clearing_hash, trade=trade,
                    steps=steps.get((trade.interval, trade.index)), batch=batch,
                    earlier=earlier, submitter=submitter, progress=progress,
                )  # fmt: skip
            except _Waiting as w:
                outcome, opening = StepOutcome(trade, "waiting", w.detail), None
            except _Refused as r:
                outcome, opening = StepOutcome(trade, "refused", r.detail, None, r.reason), None
            outcomes.append(outcome)
            if opening is not None:
                if opening[0] is not None:
                    earlier.append((opening[0], opening[1]))
            else:
                blocked = f"its earlier trade #{trade.index} of interval {interval} is not settled"
    return outcomes


def _trade_step(
    *,
    meter_id: str,
    key: MeterKey,
    market_key: EncryptionKey,
    store: OpeningStore,
    period: str,
    clearing_hash: bytes,
    trade: TradeRef,
    steps: TradeSteps | None,
    batch: StoredBatch | None,
    earlier: list[tuple[bytes, tuple[int, int]]],
    submitter: StepSubmitter,
    progress: Callable[[str], None] | None,
) -> tuple[StepOutcome, tuple[bytes | None, tuple[int, int]] | None]:
    """One trade's step; returns its outcome and, when the trade is settled, its delivered
    commitment (``None`` for a default) and opening."""
    tid = trade_id(clearing_hash, trade.interval, trade.index)
    row = store.trade_delivery(period, trade.interval, trade.index)
    base = StoredTradeDelivery(
        period=period, interval=trade.interval, trade_index=trade.index,
        clearing_hash=clearing_hash, side=trade.side, counterparty=trade.counterparty,
        quantity_wh=trade.quantity_wh,
    )  # fmt: skip
    row = store.put_trade_delivery(base) if row is None else row
    if row.clearing_hash != clearing_hash or row.side != trade.side:
        raise _Refused("the store holds this trade of another clearing", Reason.OPENING_STORE.value)
    if steps is None:
        raise _Waiting("the service lists no delivery state for it yet")
    label = f"interval {trade.interval} #{trade.index}"

    defaulted = steps.state.defaulted
    if defaulted is not None:
        row = store.put_trade_delivery(replace(base, defaulted=int(defaulted)))
        return StepOutcome(trade, "settled", f"defaulted ({defaulted.context_name})", 0), (
            None,
            (0, 0),
        )

    if trade.side == "seller":
        if steps.state is TradeState.DELIVERED:
            if row.delivered is None or row.delivery_blinding is None:
                if steps.delivery is None:
                    raise _Waiting("the buyer's delivery is not among the messages yet")
                record = _decode(Delivery, steps.delivery)
                _check_record(record, period, trade, clearing_hash, trade.counterparty)
                opening = _open(record, market_key, tid, DELIVERY)
                row = store.put_trade_delivery(
                    replace(
                        base,
                        delivery=steps.delivery,
                        delivered=opening[0],
                        delivery_blinding=opening[1],
                    )
                )
            d = _delivery_commitment(row)
            opening = _delivered_opening(row)
            return StepOutcome(trade, "settled", "delivered", opening[0]), (d, opening)
        if steps.state is TradeState.ALLOCATED and row.allocation is not None:
            return StepOutcome(trade, "waiting", "for the buyer's delivery", None), None
        if steps.state is TradeState.ALLOCATED:
            raise _Refused(
                "the ledger holds an allocation of this trade that this store did not make"
                " (restore the opening store from a backup)",
                Reason.OPENING_STORE.value,
            )
        # OPEN: make (or resend) the allocation.
        if row.allocation is None:
            stored_batch = _accepted(batch, period)
            t = trade.interval
            if 2 * t + 1 >= len(stored_batch.values):
                raise _Refused(
                    f"the batch of {period} has no interval {t}", Reason.INTERVALS_MISMATCH.value
                )
            if steps.counterparty_key is None:
                raise _Waiting("the buyer's enrolment key is not known")
            if progress is not None:
                progress(f"{label}: proving the allocation")
            commitments = ReadingBatch.decode(stored_batch.batch).commitments
            step = prove_allocation(
                tid,
                commitments[2 * t + 1],
                (stored_batch.values[2 * t + 1], stored_batch.blindings[2 * t + 1]),
                [c for c, _ in earlier],
                [o for _, o in earlier],
                trade.quantity_wh,
            )
            allocated = allocation_of(
                stored_batch.values[2 * t + 1], [o[0] for _, o in earlier], trade.quantity_wh
            )
            _check_opens(step.commitment, allocated, step.blinding)
            box = seal(
                allocated, step.blinding, steps.counterparty_key, delivery_context(tid, ALLOCATION)
            )
            record_a = DeliveryAllocation.create(
                key, meter_id=meter_id, period=period, interval=t, trade_index=trade.index,
                clearing_hash=clearing_hash, commitment=step.commitment, proof=step.proof,
                sealed_opening=box,
            )  # fmt: skip
            row = store.put_trade_delivery(
                replace(
                    base,
                    allocation=record_a.encode(),
                    allocated=allocated,
                    allocation_blinding=step.blinding,
                )
            )
        allocation_bytes = row.allocation
        if allocation_bytes is None:
            raise _Refused("the store lost the allocation it made", Reason.OPENING_STORE.value)
        _submit(lambda: submitter.submit_allocation(DeliveryAllocation.decode(allocation_bytes)))
        return StepOutcome(trade, "made", "allocated; waiting for the buyer's delivery", None), None

    # --- the buyer
    if steps.state is TradeState.DELIVERED:
        if row.delivered is None or row.delivery_blinding is None or row.delivery is None:
            raise _Refused(
                "the ledger holds a delivery of this trade that this store did not make"
                " (restore the opening store from a backup)",
                Reason.OPENING_STORE.value,
            )
        return StepOutcome(trade, "settled", "delivered", row.delivered), (
            _delivery_commitment(row),
            (row.delivered, row.delivery_blinding),
        )
    if steps.state is TradeState.OPEN:
        raise _Waiting("for the seller's allocation")
    # ALLOCATED: make (or resend) the delivery.
    if row.delivery is None:
        if steps.allocation is None:
            raise _Waiting("the seller's allocation is not among the messages yet")
        stored_batch = _accepted(batch, period)
        t = trade.interval
        if 2 * t >= len(stored_batch.values):
            raise _Refused(
                f"the batch of {period} has no interval {t}", Reason.INTERVALS_MISMATCH.value
            )
        if steps.counterparty_key is None:
            raise _Waiting("the seller's enrolment key is not known")
        allocation = _decode(DeliveryAllocation, steps.allocation)
        _check_record(allocation, period, trade, clearing_hash, trade.counterparty)
        a_opening = _open(allocation, market_key, tid, ALLOCATION)
        row = store.put_trade_delivery(
            replace(
                base,
                allocation=steps.allocation,
                allocated=a_opening[0],
                allocation_blinding=a_opening[1],
            )
        )
        if progress is not None:
            progress(f"{label}: proving the delivery")
        commitments = ReadingBatch.decode(stored_batch.batch).commitments
        step = prove_delivery(
            tid,
            allocation.commitment,
            a_opening,
            commitments[2 * t],
            (stored_batch.values[2 * t], stored_batch.blindings[2 * t]),
            [c for c, _ in earlier],
            [o for _, o in earlier],
        )
        delivered = delivery_of(
            a_opening[0], stored_batch.values[2 * t], [o[0] for _, o in earlier]
        )
        _check_opens(step.commitment, delivered, step.blinding)
        box = seal(
            delivered, step.blinding, steps.counterparty_key, delivery_context(tid, DELIVERY)
        )
        record_d = Delivery.create(
            key, meter_id=meter_id, period=period, interval=t, trade_index=trade.index,
            clearing_hash=clearing_hash, commitment=step.commitment, proof=step.proof,
            sealed_opening=box,
        )  # fmt: skip
        row = store.put_trade_delivery(
            replace(
                base,
                delivery=record_d.encode(),
                delivered=delivered,
                delivery_blinding=step.blinding,
            )
        )
    d = _delivery_commitment(row)
    delivery_bytes = row.delivery or b""
    _submit(lambda: submitter.submit_delivery(Delivery.decode(delivery_bytes)))
    opening = _delivered_opening(row)
    return StepOutcome(trade, "made", "delivered", opening[0]), (d, opening)
