"""The prosumer side of zkgrid: readings CSV, local opening store, SDK and CLI.

Openings (readings and blindings) never leave this package: what goes to the
service is commitments, proofs, signatures and the bill total.
"""

from meter.client import MeterClient, ReceiptError, ServiceError, Statement, VerifiedReceipt
from meter.home import MeterHome
from meter.openings import InsecurePermissionsError, OpeningStore
from meter.readings import DayReadings, ReadingsFormatError, parse_readings_csv, read_readings_csv

__all__ = [
    "DayReadings",
    "InsecurePermissionsError",
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
