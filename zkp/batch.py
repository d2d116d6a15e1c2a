"""Batch verification with blame: verify many statements at once, then name the bad ones.

Written once for every proof type with a batch verifier (range proofs (B2),
bill proofs (S4)); docs/notes/batch-verification.md, (B3). A proof type supplies

* ``prepare(statement) -> P``: the statement's parsed, transcript-replayed form
  (everything but the random batch weight); it raises
  :class:`~zkgrid.errors.VerificationError` or
  :class:`~zkgrid.errors.InvalidArgumentError` for a statement that is wrong
  on its own (a bad shape, a claim outside its domain), which is invalid
  without a group operation;
* ``holds(prepared) -> bool``: whether the randomly weighted sum of their
  verification equations is the identity (fresh weights on every call), so a
  batch of valid statements always holds and a batch with a wrong one fails
  except with probability about ``1/q``.

:func:`find_invalid` returns the indices of the statements that do not verify:
one batch check when they all hold, bisection (B3) when not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from zkgrid.errors import InvalidArgumentError, VerificationError

__all__ = ["find_invalid"]

S = TypeVar("S")
P = TypeVar("P")


def find_invalid(
    statements: Sequence[S],
    prepare: Callable[[S], P],
    holds: Callable[[Sequence[P]], bool],
) -> list[int]:
    """Indices (ascending) of the ``statements`` that do not verify (B3).

    A statement ``prepare`` refuses (:class:`VerificationError`,
    :class:`InvalidArgumentError`) is invalid; the others are checked as one
    batch and, if it fails, bisected. Any other exception propagates: it is
    not the statement's fault.
    """
    bad: list[int] = []
    prepared: list[tuple[int, P]] = []
    for index, statement in enumerate(statements):
        try:
            prepared.append((index, prepare(statement)))
        except (VerificationError, InvalidArgumentError):
            bad.append(index)
    bad += _bisect(prepared, holds, failing=False)
    return sorted(bad)


def _bisect(
    part: Sequence[tuple[int, P]], holds: Callable[[Sequence[P]], bool], *, failing: bool
) -> list[int]:
    """(B3) The failing indices of ``part``; ``failing``: ``part`` is already known to fail.

    When a failing set's left half holds, its right half must fail (a set of
    valid statements always holds): the right half is then split without being
    checked as a whole.
    """
    if not part:
        return []
    if not failing and holds([p for _, p in part]):
        return []
    if len(part) == 1:
        return [part[0][0]]
    mid = len(part) // 2
    left = _bisect(part[:mid], holds, failing=False)
    right = _bisect(part[mid:], holds, failing=not left)
    return left + right
