"""circuits: arithmetic-circuit proofs over committed values, and their gadgets.

* :mod:`circuits.r1cs`: zero-knowledge proofs for rank-1 constraint systems with
  committed inputs (Bünz et al. 2018, section 5; docs/notes/r1cs.md).
* :mod:`circuits.gadgets`: boolean, ranges, comparisons, min/max, selection, the
  maximum of a list, piecewise-linear functions (docs/notes/r1cs.md, "Gadgets").
"""
