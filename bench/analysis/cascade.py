"""A cascade: a small model answers, a large one takes the items the small one is unsure of."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt


def cascade(
    slm_scores: npt.ArrayLike,
    llm_scores: npt.ArrayLike,
    slm_confidence: npt.ArrayLike,
    slm_cost_per_item: float,
    llm_cost_per_item: float,
    thresholds: Sequence[float] | npt.ArrayLike,
) -> list[dict[str, Any]]:
    """Accuracy and cost per threshold, on aligned items.

    At threshold t the SLM's answer is kept where its confidence >= t (NaN confidence defers),
    else the LLM's. Cost per item = SLM cost + deferral rate x LLM cost: the SLM runs on every
    item, the LLM only on the deferred ones.
    """
    s_slm = np.asarray(slm_scores, dtype=np.float64)
    s_llm = np.asarray(llm_scores, dtype=np.float64)
    conf = np.asarray(slm_confidence, dtype=np.float64)
    n = int(s_slm.size)
    rows = []
    for t in np.asarray(thresholds, dtype=np.float64).ravel():
        keep = conf >= float(t)  # NaN >= t is False: no confidence, defer
        acc = float(np.where(keep, s_slm, s_llm).mean()) if n else math.nan
        defer = float(1.0 - keep.mean()) if n else math.nan
        cost = slm_cost_per_item + defer * llm_cost_per_item
        rows.append(
            {
                "threshold": float(t),
                "accuracy": acc,
                "deferral_rate": defer,
                "cost_per_item": cost,
                "usd_per_1k_items": cost * 1000.0,
                "n": n,
            }
        )
    return rows
