"""witness: the witness party (GitHub issue 5): its BLS key, its memory, its tools.

* :mod:`witness.keys` - the witness's BLS secret key (:class:`~witness.keys.WitnessKey`,
  key file mode 0600) and :func:`~witness.keys.cosign`.
* :mod:`witness.state` - (W7) its memory of the last co-signed checkpoint
  (:class:`~witness.state.WitnessState`, a state file) and the consistency rule.
* :mod:`witness.cosign` - the gRPC client side: co-sign an audited checkpoint
  (``zkgrid audit --cosign``), check a cosigned checkpoint is final.
* :mod:`witness.cli` - the ``zkgrid witness`` command.

The scheme itself (encodings, verification, aggregation, finality) is pure and
lives in :mod:`ledger.cosignature`. This package imports ``ledger``,
``settlement`` and ``zkgrid`` only: never ``verifier`` or ``service``.
Nothing is imported here, so ``zkgrid witness --help`` stays fast.
"""
