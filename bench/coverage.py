"""Coverage: how many of the items a task asked were answered (stored without an error).

An accuracy is computed over the answered items only, so "0.000 on 8 items" after 6 errors is an
accuracy over 2 items. Every view that prints an accuracy prints its coverage beside it, from the
`n` (items asked, one row each) and `n_errors` of the task's runs row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LOW_COVERAGE = 0.9  # below this share of answered items a figure is flagged


@dataclass(frozen=True)
class Coverage:
    answered: int
    asked: int

    @property
    def share(self) -> float:
        return self.answered / self.asked if self.asked else 0.0

    @property
    def low(self) -> bool:
        return self.share < LOW_COVERAGE

    def __str__(self) -> str:
        return f"{self.answered}/{self.asked}"


def _count(x: Any) -> int:
    """A count from a runs row, where pandas may have turned a missing one into NaN."""
    try:
        return 0 if x is None or x != x else int(x)
    except (TypeError, ValueError):
        return 0


def coverage(n: Any, n_errors: Any) -> Coverage:
    """Coverage of one (model, task) from its runs row's `n` and `n_errors`."""
    asked = _count(n)
    return Coverage(max(asked - _count(n_errors), 0), asked)
