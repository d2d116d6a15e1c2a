"""zkgrid: privacy-preserving settlement for electricity prosumers.

This package holds what every other package may share: the error root
(:mod:`zkgrid.errors`) and the command-line entry point (:mod:`cli.main`).
It imports nothing from the rest of the tree at import time.
"""

__version__ = "0.1.0"
