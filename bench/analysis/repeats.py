"""Statistics of repeated sampling (issue 18, part 1): k answers per item at temperature > 0.

Pure functions over per-item arrays, the building blocks the repeats feature reports per task:
pass@k by the unbiased estimator of Chen et al. (2021, "Evaluating Large Language Models Trained on
Code"), majority-vote accuracy maj@k over extracted answers, the mean of per-item means with an
interval that treats the repeats of an item as one cluster (they are not independent draws: the
naive interval over all n x k scores is too narrow), and the between-repeat variance (how stable a
model's answer to the same item is). Not wired into runs yet: see the repeats notes in the report.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ClusteredMean", "between_repeat_variance", "clustered_mean", "maj_at_k", "pass_at_k"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """P(at least one of k answers drawn without replacement from n is correct), c of n correct:
    1 - C(n - c, k) / C(n, k), as a product so large n stays exact enough."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def maj_at_k(answers: Sequence[Hashable | None], gold: Hashable, k: int | None = None) -> float:
    """1.0 when the most frequent of the first k extracted answers is the gold one, else 0.0.
    Unextractable answers (None) do not vote; a tie goes to the answer given first; no vote is 0."""
    votes = [a for a in (answers if k is None else answers[:k]) if a is not None]
    if not votes:
        return 0.0
    counts = Counter(votes)
    top = max(counts.values())
    winner = next(a for a in votes if counts[a] == top)
    return float(winner == gold)


@dataclass(frozen=True)
class ClusteredMean:
    mean: float
    stderr: float  # over items: sd of the per-item means / sqrt(items)
    ci_low: float
    ci_high: float
    n_items: int
    n_scores: int


def clustered_mean(scores: Sequence[Sequence[float]], z: float = 1.959963984540054) -> ClusteredMean:
    """Mean score over items (each item's repeats averaged first, so every item weighs the same)
    with the cluster-robust interval: items are the independent units, repeats are not."""
    means = np.asarray([np.mean(s) for s in scores if len(s)], dtype=np.float64)
    n_scores = sum(len(s) for s in scores)
    if means.size == 0:
        return ClusteredMean(math.nan, math.nan, math.nan, math.nan, 0, 0)
    m = float(means.mean())
    se = float(means.std(ddof=1) / math.sqrt(means.size)) if means.size > 1 else math.nan
    return ClusteredMean(m, se, m - z * se, m + z * se, int(means.size), n_scores)


def between_repeat_variance(scores: Sequence[Sequence[float]]) -> float:
    """Mean over items of the variance of an item's repeated scores (ddof=1): 0 when every item gets
    the same score on every repeat. NaN without an item of two or more repeats."""
    vs = [float(np.var(s, ddof=1)) for s in scores if len(s) > 1]
    return float(np.mean(vs)) if vs else math.nan
