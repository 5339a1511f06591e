"""Confidence intervals for a task's metric and for the macro average over tasks.

One function decides the interval by what the scores are, so the stored runs rows, the terminal,
nightly and the dashboard all show the same bounds:

- 0/1 scores (accuracy, exact match): the Wilson score interval. It never collapses to a point at
  0/n or n/n (the percentile bootstrap gives [0, 0] for 0/10), its coverage is close to nominal
  even for 10 items (Brown, Cai & DasGupta 2001), and it has a closed form that needs only the
  count and the number of items. Clopper-Pearson was not chosen: it guarantees at least the
  nominal coverage by being wider than needed (often 98-99% at n = 10-50), which would make
  "is a small model enough?" answer yes too often.
- Continuous scores (ROUGE, F1, bits per byte): the seeded percentile bootstrap of
  `bench.metrics.stats.summarize`, which stays inside the score range for skewed data.

The macro average over tasks is computed from the per-task rows alone (mean, stderr, items,
method), so a view needs no per-item rows and gets the same numbers as any other:

- every task Wilson: a stratified Wilson interval, i.e. the Wilson interval of the averaged
  proportion p at its effective sample size n_eff = q(1-q) / Var (the design-effect approach of
  Korn & Graubard 1998), with Var = sum_i q_i (1 - q_i) / n_i / T^2 and q the mean of the q_i.
  The q_i are add-two-successes-and-two-failures proportions (k_i + 2) / (n_i + 4) (Agresti &
  Coull 1998), so a task at 0/n or n/n still has variance: with the raw proportions a macro of
  tasks near 0 and 1 got intervals far too narrow (92% coverage for tasks of 10/30/60 items at
  p = 0.1/0.5/0.95). Simulated coverage of the nominal 95% over nine settings (2-4 tasks of
  10-200 items, p from 0 to 1): 0.950-1.000, conservative only when tasks of ten items sit
  at opposite ends. Equal tasks give the Wilson interval of the pooled items; 0/10 on every
  task gets a non-zero upper bound. One task gives that task's own interval.
- otherwise (a continuous task, or rows stored before `ci_method` existed): the normal interval
  mean +- z * sqrt(sum se_i^2) / T, the stderr of a mean of independent means.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from bench.metrics.stats import summarize

WILSON = "wilson"
BOOTSTRAP = "bootstrap"
RATIO_BOOTSTRAP = "ratio_bootstrap"
STRATIFIED_WILSON = "stratified_wilson"
NORMAL = "normal"


@dataclass(frozen=True, slots=True)
class Interval:
    """A mean with its standard error, (1 - alpha) interval, item count and how it was made.

    `method` is one of "wilson", "bootstrap", "ratio_bootstrap", "stratified_wilson", "normal",
    or "none" without items. `n` is the number of scored items (summed over tasks for a macro).
    """

    mean: float
    stderr: float
    ci_low: float
    ci_high: float
    n: int
    method: str


@dataclass(frozen=True, slots=True)
class TaskStat:
    """What the macro average needs from one task's stored row."""

    mean: float
    stderr: float
    n: int
    method: str | None
    ci_low: float = math.nan
    ci_high: float = math.nan


def z_value(alpha: float = 0.05) -> float:
    """Two-sided normal quantile (1.959964 for alpha 0.05); stdlib, so no scipy import."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return NormalDist().inv_cdf(1.0 - alpha / 2.0)


def wilson(successes: float, n: float, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a proportion successes / n (n may be an effective, non-integer size).

    Exact 0 and 1 are returned at the edges (k = 0, k = n), where rounding would leave 1e-17.
    """
    if n <= 0:
        return math.nan, math.nan
    if not 0.0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n], got {successes!r} of {n!r}")
    z = z_value(alpha)
    p = successes / n
    z2n = z * z / n
    center = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n))
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == n else min(1.0, center + half)
    return low, high


def is_binary(scores: npt.ArrayLike) -> bool:
    """True when every score is exactly 0 or 1 (and there is at least one)."""
    x = np.asarray(scores, dtype=np.float64)
    return bool(x.size) and bool(np.all((x == 0.0) | (x == 1.0)))


def _stderr(x: npt.NDArray[np.float64]) -> float:
    return float(np.std(x, ddof=1) / math.sqrt(x.size)) if x.size > 1 else 0.0


def metric_interval(
    scores: npt.ArrayLike, *, seed: int = 1234, n_boot: int = 1000, alpha: float = 0.05
) -> Interval:
    """The interval of one task's per-item scores: Wilson for 0/1 scores, else seeded bootstrap."""
    x = np.asarray(scores, dtype=np.float64)
    if is_binary(x):
        low, high = wilson(float(x.sum()), x.size, alpha)
        return Interval(float(x.mean()), _stderr(x), low, high, int(x.size), WILSON)
    est = summarize(x, seed=seed, n_boot=n_boot, alpha=alpha)
    return Interval(est.mean, est.stderr, est.ci_low, est.ci_high, est.n, BOOTSTRAP if est.n else "none")


def macro_interval(parts: Sequence[TaskStat], alpha: float = 0.05) -> Interval:
    """Unweighted mean of task means with its interval (see the module docstring for the method)."""
    if not parts:
        raise ValueError("macro_interval needs at least one task")
    t = len(parts)
    mean = float(sum(p.mean for p in parts) / t)
    se = math.sqrt(sum((p.stderr if p.stderr == p.stderr else 0.0) ** 2 for p in parts)) / t
    n = int(sum(p.n for p in parts))
    if t == 1 and not math.isnan(parts[0].ci_low):
        p = parts[0]
        return Interval(p.mean, p.stderr, p.ci_low, p.ci_high, p.n, p.method or NORMAL)
    if all(p.method == WILSON and p.n > 0 for p in parts):
        q = [(p.mean * p.n + 2.0) / (p.n + 4.0) for p in parts]
        var = sum(qi * (1.0 - qi) / p.n for qi, p in zip(q, parts, strict=True)) / (t * t)
        q_mean = sum(q) / t
        n_eff = q_mean * (1.0 - q_mean) / var
        low, high = wilson(min(max(mean, 0.0), 1.0) * n_eff, n_eff, alpha)
        return Interval(mean, se, low, high, n, STRATIFIED_WILSON)
    z = z_value(alpha)
    return Interval(mean, se, mean - z * se, mean + z * se, n, NORMAL)
