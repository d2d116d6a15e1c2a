"""The zkgrid settlement API.

``zkgrid.settlement.v1`` is generated from ``proto/`` by scripts/gen_proto.py
(``make proto``; never edited by hand). ``settlement.convert`` is the
hand-written mapping between the ledger records and those messages.
"""
