"""Log-probabilities of chosen tokens from raw logits, shared by the engines that expose logits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def log_softmax_pick(rows: np.ndarray, targets: Sequence[int] | np.ndarray) -> tuple[float, bool]:
    """Sum of log p(target) over rows, and whether every target was the argmax (float64: fp16
    logits would otherwise lose the small differences between choices)."""
    x = rows.astype(np.float64, copy=False)
    m = x.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(x - m).sum(axis=1))
    idx = np.asarray(targets)
    picked = x[np.arange(len(idx)), idx]
    greedy = bool(np.all(x.argmax(axis=1) == idx))
    return float((picked - lse).sum()), greedy
