"""Uncertainty for every number bench reports: means with standard errors and bootstrap CIs,
macro averages over tasks, paired model comparisons and latency percentiles.

These are the primitives; the views (runs rows, terminal, compare, nightly, dashboard) call
bench.analysis, which picks among them (Wilson for 0/1 scores, this bootstrap otherwise) so every
view shows the same interval. All functions are pure: the same inputs and seed give the same outputs, so a report can be
regenerated bit for bit from stored per-item scores. Bootstraps are vectorized and drawn in
chunks, which keeps them fast without a Python loop per resample and bounds memory on large
item counts. The chunking does not change the random stream, so results do not depend on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "AlignedScores",
    "Estimate",
    "PairedResult",
    "align_paired",
    "is_significant",
    "macro_average",
    "paired_comparison",
    "percentiles",
    "summarize",
]

FloatArray = npt.NDArray[np.float64]

# Upper bound on the number of bootstrap indices drawn at once (≈16 MiB of int64 per chunk).
_MAX_DRAW_ELEMENTS = 1 << 21


@dataclass(frozen=True, slots=True)
class Estimate:
    """A mean with its standard error and a (1 - alpha) bootstrap confidence interval.

    `n` is the number of items behind the estimate (summed over tasks for a macro average).
    """

    mean: float
    stderr: float
    ci_low: float
    ci_high: float
    n: int


@dataclass(frozen=True, slots=True)
class PairedResult:
    """Model a versus model b on the same items; `diff` is mean(a - b), so > 0 means a is better.

    `p_value` comes from `test`: "mcnemar_exact" when both score arrays are 0/1, else "paired_t".
    `n10` counts items a got right and b wrong, `n01` the reverse; both are None for non-binary
    scores. `p_bootstrap` is a two-sided paired-bootstrap p-value for a zero mean difference.
    """

    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    n: int
    n01: int | None
    n10: int | None
    p_bootstrap: float


class AlignedScores(NamedTuple):
    """Scores of two models on their shared items, in the same item order."""

    a: FloatArray
    b: FloatArray
    ids: npt.NDArray[Any]


def _as_scores(values: npt.ArrayLike, name: str = "scores") -> FloatArray:
    """1-D float array of finite scores; a NaN score is a bug upstream, so it is refused, not skipped."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _check_boot_args(n_boot: int, alpha: float) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


def _bootstrap_means(x: FloatArray, n_boot: int, rng: np.random.Generator) -> FloatArray:
    """Means of `n_boot` resamples of `x` with replacement, drawn as index matrices in chunks.

    Generator.integers fills arrays element by element from one stream, so drawing (k, n) then
    (m, n) equals drawing (k + m, n): the chunk size affects memory only, never the result.
    """
    n = x.size
    out = np.empty(n_boot, dtype=np.float64)
    rows = max(1, _MAX_DRAW_ELEMENTS // n)
    for start in range(0, n_boot, rows):
        stop = min(start + rows, n_boot)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = x[idx].mean(axis=1)
    return out


def _percentile_ci(boot: FloatArray, alpha: float) -> tuple[float, float]:
    low, high = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def _stderr(x: FloatArray) -> float:
    """Sample std (ddof=1) / sqrt(n) as lm-eval's mean_stderr; 0.0 for one item (no spread to see)."""
    if x.size < 2:
        return 0.0
    return float(np.std(x, ddof=1) / math.sqrt(x.size))


def summarize(
    scores: npt.ArrayLike, *, n_boot: int = 1000, seed: int = 1234, alpha: float = 0.05
) -> Estimate:
    """Mean, standard error and percentile-bootstrap CI of per-item scores.

    The bootstrap CI is reported alongside the normal-theory stderr because it stays inside the
    score range and is honest for skewed or small samples. No items gives all-NaN with n=0.
    """
    _check_boot_args(n_boot, alpha)
    x = _as_scores(scores)
    if x.size == 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan, 0)
    boot = _bootstrap_means(x, n_boot, np.random.default_rng(seed))
    low, high = _percentile_ci(boot, alpha)
    return Estimate(float(x.mean()), _stderr(x), low, high, int(x.size))


def macro_average(
    per_task: Mapping[str, npt.ArrayLike], *, n_boot: int = 1000, seed: int = 1234, alpha: float = 0.05
) -> Estimate:
    """Unweighted mean of task means, so a large task does not drown out small ones.

    The CI is a stratified bootstrap: each replicate resamples items within every task
    independently (tasks are fixed, items are the random part) and averages the task means.
    Tasks are processed in sorted name order, so the result does not depend on mapping order.
    stderr = sqrt(sum of squared task stderrs) / T, the stderr of a mean of independent means.
    """
    _check_boot_args(n_boot, alpha)
    if not per_task:
        raise ValueError("macro_average needs at least one task")
    names = sorted(per_task)
    arrays = [_as_scores(per_task[name], name=f"scores of task {name!r}") for name in names]
    for name, arr in zip(names, arrays, strict=True):
        if arr.size == 0:
            raise ValueError(f"task {name!r} has no scores")
    n_tasks = len(arrays)
    rng = np.random.default_rng(seed)
    boot = np.zeros(n_boot, dtype=np.float64)
    for arr in arrays:
        boot += _bootstrap_means(arr, n_boot, rng)
    boot /= n_tasks
    low, high = _percentile_ci(boot, alpha)
    mean = float(np.mean([arr.mean() for arr in arrays]))
    stderr = math.sqrt(sum(_stderr(arr) ** 2 for arr in arrays)) / n_tasks
    return Estimate(mean, stderr, low, high, sum(int(arr.size) for arr in arrays))


def _is_binary(x: FloatArray) -> bool:
    return bool(np.all((x == 0.0) | (x == 1.0)))


def _paired_t_pvalue(a: FloatArray, b: FloatArray) -> float:
    """Two-sided paired t-test p-value on differences, defined where scipy's would be NaN or warn.

    All-zero differences give 1.0; one item gives NaN; differences that are constant up to
    rounding (t is infinite) give 0.0. scipy warns on that last case, which bench treats as error.
    """
    d = a - b
    if not np.any(d):
        return 1.0
    if d.size < 2:
        return math.nan
    mean = float(d.mean())
    spread = float(np.max(np.abs(d - mean)))
    if spread <= 100.0 * np.finfo(np.float64).eps * abs(mean):
        return 0.0
    from scipy import stats as sps  # 0.7 s to import: only when a test is computed

    return float(sps.ttest_rel(a, b).pvalue)


def _mcnemar_exact(n01: int, n10: int) -> float:
    """Exact McNemar: two-sided binomial test of the discordant pairs against p = 0.5."""
    if n01 + n10 == 0:
        return 1.0
    from scipy import stats as sps

    return float(sps.binomtest(n01, n01 + n10, 0.5).pvalue)


def paired_comparison(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    n_boot: int = 1000,
    seed: int = 1234,
    alpha: float = 0.05,
) -> PairedResult:
    """Compare two models on the same items (arrays aligned by item; see `align_paired`).

    Pairing removes the item-difficulty variance both models share, so it detects differences
    that two independent CIs would call overlapping. The bootstrap resamples item indices once
    per replicate and applies them to both models, which is the same as resampling a - b.
    p_bootstrap shifts the bootstrap distribution to the null (mean difference 0) and counts
    replicates at least as extreme as the observed difference, with the +1 correction so it is
    never exactly 0.
    """
    _check_boot_args(n_boot, alpha)
    xa = _as_scores(a, name="a")
    xb = _as_scores(b, name="b")
    if xa.size != xb.size:
        raise ValueError(f"a and b must score the same items, got lengths {xa.size} and {xb.size}")
    if xa.size == 0:
        raise ValueError("paired_comparison needs at least one item")
    d = xa - xb
    diff = float(d.mean())
    boot = _bootstrap_means(d, n_boot, np.random.default_rng(seed))
    low, high = _percentile_ci(boot, alpha)
    extreme = int(np.count_nonzero(np.abs(boot - diff) >= abs(diff)))
    p_boot = (extreme + 1) / (n_boot + 1)

    n01: int | None
    n10: int | None
    if _is_binary(xa) and _is_binary(xb):
        n10 = int(np.count_nonzero((xa == 1.0) & (xb == 0.0)))
        n01 = int(np.count_nonzero((xa == 0.0) & (xb == 1.0)))
        p_value, test = _mcnemar_exact(n01, n10), "mcnemar_exact"
    else:
        n01 = n10 = None
        p_value, test = _paired_t_pvalue(xa, xb), "paired_t"
    return PairedResult(diff, low, high, p_value, test, int(xa.size), n01, n10, p_boot)


def align_paired(
    df_a: pd.DataFrame, df_b: pd.DataFrame, key: str = "item_id", value: str = "score"
) -> AlignedScores:
    """Inner-join two per-item frames on `key` so models are compared only on items both scored.

    Keeps the row order of `df_a`. Duplicate ids are refused: a join would silently multiply
    rows and weight those items twice.
    """
    for label, df in (("df_a", df_a), ("df_b", df_b)):
        missing = [col for col in (key, value) if col not in df.columns]
        if missing:
            raise ValueError(f"{label} lacks column(s) {missing}")
        dupes = df[key][df[key].duplicated()]
        if len(dupes):
            raise ValueError(f"{label} has duplicate {key} values, e.g. {dupes.iloc[0]!r}")
    merged = df_a[[key, value]].merge(df_b[[key, value]], on=key, how="inner", suffixes=("_a", "_b"))
    return AlignedScores(
        merged[f"{value}_a"].to_numpy(dtype=np.float64),
        merged[f"{value}_b"].to_numpy(dtype=np.float64),
        merged[key].to_numpy(),
    )


def is_significant(result: PairedResult, alpha: float = 0.05) -> bool:
    """True when the test's p-value is below alpha; a NaN p-value (untestable) is not significant."""
    return bool(result.p_value < alpha)


def percentiles(values: npt.ArrayLike, qs: Sequence[float] = (50, 90, 99)) -> dict[str, float]:
    """Latency percentiles keyed "p50", "p99.9", ...; NaNs (failed requests) are skipped.

    With no values left every percentile is NaN, so a report shows a gap rather than a zero.
    """
    qs_arr = np.asarray(qs, dtype=np.float64)
    if qs_arr.ndim != 1 or np.any(~np.isfinite(qs_arr)) or np.any((qs_arr < 0) | (qs_arr > 100)):
        raise ValueError(f"percentiles must be numbers in [0, 100], got {qs!r}")
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    keys = [f"p{q:g}" for q in qs_arr]
    if x.size == 0:
        return dict.fromkeys(keys, math.nan)
    return {k: float(v) for k, v in zip(keys, np.percentile(x, qs_arr), strict=True)}
