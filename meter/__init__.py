"""The prosumer side of zkgrid: readings CSV, local opening store, SDK and CLI.

Openings (readings and blindings) never leave this package: what goes to the
service is commitments, proofs, signatures and the bill total.

The names below are imported on first use (PEP 562), so that ``import meter.cli``
(``zkgrid meter --help``) does not load gRPC and the proof system.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zkgrid._internal.lazy import lazy_exports

if TYPE_CHECKING:  # pragma: no cover
    from meter.client import MeterClient, ServiceError, Statement, VerifiedReceipt
    from meter.errors import ReceiptError
    from meter.home import MeterHome
    from meter.market import MarketClient
    from meter.openings import InsecurePermissionsError, OpeningStore
    from meter.readings import (
        DayReadings,
        ReadingsFormatError,
        parse_readings_csv,
        read_readings_csv,
    )

#: exported name -> module defining it
_EXPORTS = {
    "DayReadings": "meter.readings",
    "InsecurePermissionsError": "meter.openings",
    "MarketClient": "meter.market",
    "MeterClient": "meter.client",
    "MeterHome": "meter.home",
    "OpeningStore": "meter.openings",
    "ReadingsFormatError": "meter.readings",
    "ReceiptError": "meter.errors",
    "ServiceError": "meter.client",
    "Statement": "meter.client",
    "VerifiedReceipt": "meter.client",
    "parse_readings_csv": "meter.readings",
    "read_readings_csv": "meter.readings",
}

__all__ = [
    "DayReadings",
    "InsecurePermissionsError",
    "MarketClient",
    "MeterClient",
    "MeterHome",
    "OpeningStore",
    "ReadingsFormatError",
    "ReceiptError",
    "ServiceError",
    "Statement",
    "VerifiedReceipt",
    "parse_readings_csv",
    "read_readings_csv",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
