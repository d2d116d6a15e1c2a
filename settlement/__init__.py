"""settlement: the pure settlement domain.

The records a meter, the utility and the service write to the ledger
(:mod:`settlement.records`), their mapping to the gRPC API messages
(:mod:`settlement.convert`), one vocabulary for periods and intervals
(:mod:`settlement.periods`) and the rules every party applies to them, one pure
state machine (:mod:`settlement.rules`). No I/O
and no network: the service, the meter client and the auditor all call this
package, so a rule is written once. See docs/design/settlement-v1.md.
"""
