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

import secrets
from collections.abc import Callable, Sequence
from typing import TypeVar

from zkgrid.errors import InvalidArgumentError, VerificationError
from zkp.group import ORDER, Point, is_identity, mul

__all__ = ["Summer", "find_invalid"]

S = TypeVar("S")
P = TypeVar("P")

#: ``summer(prepared, combiners)(weights)``: the batch equation's left-hand side
#: ``sum_p weights[p] * E_p`` as a point, where ``E_p`` is statement ``p``'s own equation
#: combined with ``combiners[p]`` (e.g. (B1)'s ``c``): the identity when all hold (B3').
#: One summer serves several weightings of the same statements (it may reuse work).
Summer = Callable[[Sequence[P], Sequence[int]], Callable[[Sequence[int]], Point]]


def _nonzero() -> int:
    return secrets.randbelow(ORDER - 1) + 1


def find_invalid(
    statements: Sequence[S],
    prepare: Callable[[S], P],
    holds: Callable[[Sequence[P]], bool],
    *,
    summer: Summer[P] | None = None,
) -> list[int]:
    """Indices (ascending) of the ``statements`` that do not verify (B3).

    A statement ``prepare`` refuses (:class:`VerificationError`,
    :class:`InvalidArgumentError`) is invalid; the others are checked as one
    batch and, if it fails, the one wrong statement is named from a second
    weighting (B3', with ``summer``) or, when more than one is wrong, by halving
    with the same test in each half (without ``summer``: bisection, (B3)). Any other
    exception propagates: it is not the statement's fault.
    """
    bad: list[int] = []
    prepared: list[tuple[int, P]] = []
    for index, statement in enumerate(statements):
        try:
            prepared.append((index, prepare(statement)))
        except (VerificationError, InvalidArgumentError):
            bad.append(index)
    if summer is None or len(prepared) < 2:
        return sorted(bad + _bisect(prepared, holds, failing=False))
    return sorted(bad + _blame(prepared, summer, known=0))


_ALL_HOLD = object()


def _blame(part: Sequence[tuple[int, P]], summer: Summer[P], *, known: int) -> list[int]:
    """(B3') The wrong statements of ``part``: nothing when its weighted sum is the
    identity, the one culprit a second weighting names, else both halves in turn.

    ``known``: wrong statements ``part`` is already known to hold at least (0, 1, or 2:
    two or more, so no single culprit can be named and it is split without a sum).
    """
    if not part:
        return []
    if len(part) == 1 and known >= 1:
        return [part[0][0]]
    if known < 2:
        verdict = _single_culprit([p for _, p in part], summer)
        if verdict is _ALL_HOLD:
            return []
        if isinstance(verdict, int):
            return [part[verdict][0]]
        if len(part) == 1:  # pragma: no cover - one failing statement is its own culprit
            return [part[0][0]]
    # two or more wrong ones here
    mid = len(part) // 2
    left = _blame(part[:mid], summer, known=0)
    right = _blame(part[mid:], summer, known=max(0, 2 - len(left)))
    return left + right


def _single_culprit(prepared: Sequence[P], summer: Summer[P]) -> int | object | None:
    """(B3') :data:`_ALL_HOLD` when the batch holds; else the position of the one wrong
    statement, or ``None`` when there is not exactly one.

    With fixed combiners each statement ``p`` contributes a fixed point ``E_p``
    (zero iff it holds). Two weightings give ``S1 = sum w_p E_p`` and
    ``S2 = sum w'_p E_p``. If ``p`` alone is wrong, ``S2 = (w'_p / w_p) S1``. If
    ``p`` holds, ``w_p`` and ``w'_p`` appear nowhere else, so ``S2 = (w'_p / w_p) S1``
    with ``S1 != O`` holds for at most one value of the uniform ratio: probability
    ``1/(q-1)``. A statement that holds is named with probability at most
    ``B/(q-1)``; two or more wrong ones match no position (except with the same
    probability) and fall back to bisection (B3).
    """
    combiners = [_nonzero() for _ in prepared]
    weighted_sum = summer(prepared, combiners)
    first = [_nonzero() for _ in prepared]
    s1 = weighted_sum(first)
    if is_identity(s1):
        return _ALL_HOLD
    second = [_nonzero() for _ in prepared]
    s2 = weighted_sum(second)
    matches = [
        k
        for k, (w1, w2) in enumerate(zip(first, second, strict=True))
        if mul(w2 * pow(w1, -1, ORDER) % ORDER, s1) == s2
    ]
    return matches[0] if len(matches) == 1 else None


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
