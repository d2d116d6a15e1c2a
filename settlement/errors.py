"""Errors of the settlement rules (settlement-v1.md, "Service rules"): one class per reason.

The service raises them when it refuses a record, the meter client raises the
same classes for the same conflicts in its local store, and the auditor reports
their :class:`~zkgrid.errors.Reason` members as findings. Messages carry public
facts only (ids, periods, sequence numbers, indices), never readings, blindings
or keys.

:class:`RecordFormatError` (``RECORD_MALFORMED``) is the format error of the records
and of the period vocabulary (:mod:`settlement.records` and :mod:`settlement.periods`
re-export it); :class:`settlement.records.SignatureError` (``SIGNATURE_INVALID``) stays
beside the records.
"""

from __future__ import annotations

from zkgrid.errors import ProofFormatError, Reason, VerificationError, ZkgridError

__all__ = [
    "BillExists",
    "ChainBroken",
    "ClearingExists",
    "ClearingMismatch",
    "CycleIncomplete",
    "DeadlineNotPassed",
    "DeadlinePassed",
    "DeliveryExists",
    "DeliveryNotReady",
    "DuplicatePeriod",
    "EnrolmentExists",
    "GateClosed",
    "GateNotClosed",
    "IntervalsMismatch",
    "MarketDayExists",
    "MeterExists",
    "MeterRevoked",
    "NotEnrolled",
    "PeriodClosed",
    "PeriodNotEnded",
    "PriceOutOfBounds",
    "ProofInvalid",
    "ProofMalformed",
    "RecordFormatError",
    "SelfTrade",
    "SettlementError",
    "TariffExists",
    "UnknownBatch",
    "UnknownMarketDay",
    "UnknownMeter",
    "UnknownOrder",
    "UnknownTariff",
    "UnknownTrade",
]


class SettlementError(ZkgridError):
    """Root of the settlement domain's errors."""

    reason = Reason.SETTLEMENT_ERROR


class RecordFormatError(SettlementError, ProofFormatError):
    """Bytes (or fields) that are not a canonical settlement record: among them a period
    that is not a canonical ``YYYY-MM-DD`` date or an interval that does not divide a day."""

    reason = Reason.RECORD_MALFORMED


class MeterExists(SettlementError):
    """A registration for a meter id that is already registered (ids are never reused)."""

    reason = Reason.METER_EXISTS


class UnknownMeter(SettlementError):
    """No registration for this meter id."""

    reason = Reason.UNKNOWN_METER


class MeterRevoked(SettlementError):
    """The meter is revoked: it can submit nothing more (and cannot be revoked twice)."""

    reason = Reason.METER_REVOKED


class IntervalsMismatch(SettlementError):
    """The batch (or the tariff a bill uses) has another interval length than the meter."""

    reason = Reason.INTERVALS_MISMATCH


class ChainBroken(SettlementError):
    """The batch's sequence is not the meter's next one, or prev_hash is not its last batch."""

    reason = Reason.CHAIN_BROKEN


class DuplicatePeriod(SettlementError):
    """A different batch for a period this meter already submitted."""

    reason = Reason.DUPLICATE_PERIOD


class PeriodNotEnded(SettlementError):
    """Readings for a period (a UTC day) that has not ended yet: there is nothing final to
    settle; submit after 00:00 UTC of the next day."""

    reason = Reason.PERIOD_NOT_ENDED


class PeriodClosed(SettlementError):
    """Readings for a period that ended longer ago than the service's late-submission
    window (``zkgrid serve --late-days``)."""

    reason = Reason.PERIOD_CLOSED


class ProofMalformed(SettlementError, ProofFormatError):
    """A range proof, bill proof or commitment that cannot be parsed."""

    reason = Reason.PROOF_MALFORMED


class ProofInvalid(SettlementError, VerificationError):
    """A well-formed range proof or bill proof that does not verify."""

    reason = Reason.PROOF_INVALID


class TariffExists(SettlementError):
    """A different tariff for a period that already has one."""

    reason = Reason.TARIFF_EXISTS


class UnknownTariff(SettlementError):
    """No tariff for the period, or the bill names another tariff than the period's."""

    reason = Reason.UNKNOWN_TARIFF


class UnknownBatch(SettlementError):
    """No batch of this meter for the period, or the bill names another batch."""

    reason = Reason.UNKNOWN_BATCH


class BillExists(SettlementError):
    """A different bill for a (meter, period) that already has one."""

    reason = Reason.BILL_EXISTS


class CycleIncomplete(SettlementError):
    """A cycle bill (record v2) for a billing cycle with a period the meter has no batch for
    (the message names the first such period): the cycle is billed once it is complete."""

    reason = Reason.CYCLE_INCOMPLETE


# --------------------------------------------------------------------------- the market
# docs/design/market-v1.md; the rules M1..M13 (settlement-v1.md, "Rules"). The identical
# market record again (R5: DUPLICATE_ENROLMENT, ..._MARKET_DAY, ..._ORDER, ..._CANCELLATION,
# ..._CLEARING) has no class: it is answered with the original receipt.


class NotEnrolled(SettlementError):
    """An order of a meter that has not enrolled in the market (M1)."""

    reason = Reason.NOT_ENROLLED


class EnrolmentExists(SettlementError):
    """A different enrolment for a meter that is enrolled (M6; one enrolment per meter)."""

    reason = Reason.ENROLMENT_EXISTS


class UnknownMarketDay(SettlementError):
    """An order or a clearing for a period the utility has opened no market day for."""

    reason = Reason.UNKNOWN_MARKET_DAY


class MarketDayExists(SettlementError):
    """A different market day for a period that has one (M7)."""

    reason = Reason.MARKET_DAY_EXISTS


class GateClosed(SettlementError):
    """An order or a cancellation at or after its market day's gate closure, or for a
    period already cleared (M2, M5)."""

    reason = Reason.GATE_CLOSED


class GateNotClosed(SettlementError):
    """A clearing before its market day's gate closure (M8)."""

    reason = Reason.GATE_NOT_CLOSED


class PriceOutOfBounds(SettlementError):
    """An order whose limit price lies outside ``[export credit, import price]`` of the
    period's tariff for an interval it covers (M3; the message names the first)."""

    reason = Reason.PRICE_OUT_OF_BOUNDS


class SelfTrade(SettlementError):
    """An order of a meter with a live order of the other side for a common interval (M4)."""

    reason = Reason.SELF_TRADE


class UnknownOrder(SettlementError):
    """A cancellation that names no live order of its meter (M5)."""

    reason = Reason.UNKNOWN_ORDER


class ClearingMismatch(SettlementError):
    """A clearing that differs from the recomputation from the ledger's live orders (M9)."""

    reason = Reason.CLEARING_MISMATCH


class ClearingExists(SettlementError):
    """A different clearing for a period that is cleared (M8; one clearing per period)."""

    reason = Reason.CLEARING_EXISTS


# The delivery steps (M10..M13). The identical step or default again (R5,
# DUPLICATE_DELIVERY) has no class: it is answered with the original receipt.


class UnknownTrade(SettlementError):
    """A delivery step or default that names no trade of the period's clearing, or a step
    of a meter that is not the trade's party in that role (M10; as M5, another meter's
    trade is not told apart from none)."""

    reason = Reason.UNKNOWN_TRADE


class DeliveryExists(SettlementError):
    """A step or default for a trade whose step is made or which is defaulted (M11)."""

    reason = Reason.DELIVERY_EXISTS


class DeadlinePassed(SettlementError):
    """A delivery step at or after its market day's deadline for that step (M12)."""

    reason = Reason.DEADLINE_PASSED


class DeadlineNotPassed(SettlementError):
    """A default before the deadline of the step it says was missed (M12)."""

    reason = Reason.DEADLINE_NOT_PASSED


class DeliveryNotReady(SettlementError):
    """A delivery step before its inputs are on the ledger (M13): the party's batch of the
    period, the trade's allocation (the buyer's step), the deliveries of the party's
    earlier trades of the interval. Retry once they are."""

    reason = Reason.DELIVERY_NOT_READY
