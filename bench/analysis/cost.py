"""Cost of a run: machine time at the suite's $/hour plus per-token prices of hosted APIs, and
the per-item, per-1k-items and per-correct-answer figures every view shows.

Each figure has one formula here, applied to a whole task (sums) or to single items (arrays),
so the runs rows, nightly's per-item cost and the dashboard's cascade agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


def cost_usd(
    wall_s: npt.ArrayLike,
    usd_per_hour: float,
    input_tokens: npt.ArrayLike = 0,
    output_tokens: npt.ArrayLike = 0,
    price: tuple[float, float] | Sequence[float] | None = None,
) -> npt.NDArray[np.float64]:
    """Dollars: wall seconds x $/hour / 3600 + tokens x ($ per million input, output) / 1e6.

    Works element-wise (per item) and on totals; missing values (None, NaN) count as 0.
    """
    wall = np.nan_to_num(np.asarray(wall_s, dtype=np.float64))
    out = wall * float(usd_per_hour) / 3600.0
    if price is not None:
        tin = np.nan_to_num(np.asarray(input_tokens, dtype=np.float64))
        tout = np.nan_to_num(np.asarray(output_tokens, dtype=np.float64))
        out = out + (tin * float(price[0]) + tout * float(price[1])) / 1e6
    return np.asarray(out, dtype=np.float64)


def per_item(cost: float, n_items: int | float) -> float:
    """Cost of one item; NaN without items (a gap, not a zero)."""
    return float(cost) / float(n_items) if n_items and n_items > 0 else math.nan


def per_1k_items(cost: float, n_items: int | float) -> float | None:
    """Cost of 1,000 items; None without items."""
    c = per_item(cost, n_items)
    return None if math.isnan(c) else c * 1000.0


def per_correct(cost: float, correct: float) -> float | None:
    """Cost per correct answer (sum of 0/1 credit); None when nothing was right or it is unknown."""
    if correct is None or math.isnan(correct) or correct <= 0:
        return None
    return float(cost) / float(correct)
