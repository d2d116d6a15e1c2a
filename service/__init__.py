"""zkgrid service: the settlement service's server-side packages (storage of the ledger first)."""
