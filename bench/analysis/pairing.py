"""Paired comparison of two score vectors on the same items, and the multiple-comparison
adjustment every view applies when it tests many task x metric pairs at once.

- 0/1 scores: McNemar's exact test (p-value) and Newcombe's hybrid score interval for a
  difference of paired proportions (Newcombe 1998, method 10, with the correction of phi used in
  Altman et al. 2000), built from the two Wilson intervals, so it is honest at the edges like the per-task intervals (two identical models
  on 10 items get [-0.28, 0.28], not [0, 0]).
- Other scores: a paired t-test and the seeded paired bootstrap of
  `bench.metrics.stats.paired_comparison`.
- Many tests: Benjamini-Hochberg adjusted p-values (`scipy.stats.false_discovery_control`);
  verdicts use the adjusted value, the raw one is reported beside it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from bench.analysis.intervals import wilson
from bench.metrics.stats import PairedResult, paired_comparison


def newcombe_paired(n11: int, n10: int, n01: int, n00: int, alpha: float = 0.05) -> tuple[float, float]:
    """Interval of p_a - p_b for paired 0/1 scores; n10 counts items a got right and b wrong."""
    n = n11 + n10 + n01 + n00
    if n == 0:
        return math.nan, math.nan
    pa, pb = (n11 + n10) / n, (n11 + n01) / n
    la, ua = wilson(n11 + n10, n, alpha)
    lb, ub = wilson(n11 + n01, n, alpha)
    margins = (n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00)
    # phi with Newcombe's correction as in Altman et al., Statistics with Confidence (2000), ch. 6
    ad_bc = n11 * n00 - n10 * n01
    corrected = ad_bc - n / 2 if ad_bc > n / 2 else min(ad_bc, 0)
    phi = corrected / math.sqrt(margins) if margins > 0 else 0.0
    d = pa - pb
    low = d - math.sqrt(max(0.0, (pa - la) ** 2 - 2 * phi * (pa - la) * (ub - pb) + (ub - pb) ** 2))
    high = d + math.sqrt(max(0.0, (ua - pa) ** 2 - 2 * phi * (ua - pa) * (pb - lb) + (pb - lb) ** 2))
    return max(-1.0, low), min(1.0, high)


def paired(
    a: npt.ArrayLike, b: npt.ArrayLike, *, seed: int = 1234, n_boot: int = 1000, alpha: float = 0.05
) -> PairedResult:
    """Model a against model b on aligned items; `diff` = mean(a - b), so > 0 means a scored more."""
    r = paired_comparison(a, b, seed=seed, n_boot=n_boot, alpha=alpha)
    if r.test != "mcnemar_exact":
        return r
    assert r.n10 is not None and r.n01 is not None
    xa = np.asarray(a, dtype=np.float64)
    xb = np.asarray(b, dtype=np.float64)
    n11 = int(np.count_nonzero((xa == 1.0) & (xb == 1.0)))
    n00 = r.n - n11 - r.n10 - r.n01
    low, high = newcombe_paired(n11, r.n10, r.n01, n00, alpha)
    return dataclasses.replace(r, ci_low=low, ci_high=high)


def adjust_pvalues(p_values: Sequence[float | None] | npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Benjamini-Hochberg adjusted p-values in the input order; NaN or None (untested) stays NaN
    and is not counted as a test."""
    if not isinstance(p_values, np.ndarray):
        p_values = np.array([math.nan if v is None else v for v in p_values], dtype=np.float64)
    p = np.asarray(p_values, dtype=np.float64).ravel()
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        from scipy.stats import false_discovery_control  # 0.7 s import: only when there is a test

        out[ok] = false_discovery_control(np.clip(p[ok], 0.0, 1.0), method="bh")
    return out


def verdict(diff: float, p_adjusted: float, alpha: float, higher_is_better: bool = True) -> str:
    """ "better", "worse" (for side a) or "same": significant only when the adjusted p < alpha."""
    if not (p_adjusted < alpha) or diff == 0 or math.isnan(diff):
        return "same"
    return "better" if (diff > 0) == higher_is_better else "worse"
