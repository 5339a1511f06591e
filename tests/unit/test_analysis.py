"""bench.analysis against independent computations: scipy's Wilson interval, a hand-written
Benjamini-Hochberg, Monte Carlo coverage of the stratified and paired intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from bench import analysis
from bench.analysis import TaskStat, macro_interval, metric_interval, newcombe_paired, wilson
from bench.metrics.stats import summarize


def _scipy_wilson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    ci = binomtest(k, n).proportion_ci(confidence_level=1 - alpha, method="wilson")
    return float(ci.low), float(ci.high)


@pytest.mark.parametrize(("k", "n"), [(0, 10), (10, 10), (1, 10), (5, 10), (37, 120), (0, 1), (999, 1000)])
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_wilson_matches_scipy(k: int, n: int, alpha: float) -> None:
    assert wilson(k, n, alpha) == pytest.approx(_scipy_wilson(k, n, alpha), abs=1e-12)


def test_zero_and_all_correct_are_not_a_point() -> None:
    lo, hi = metric_interval(np.zeros(10)).ci_low, metric_interval(np.zeros(10)).ci_high
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)  # the bootstrap said [0, 0]
    top = metric_interval(np.ones(10))
    assert top.ci_high == 1.0 and top.ci_low == pytest.approx(1 - 0.2775, abs=1e-4)
    assert top.method == analysis.WILSON


def test_continuous_scores_keep_the_seeded_bootstrap() -> None:
    x = np.random.default_rng(0).random(50)
    iv = metric_interval(x, seed=5)
    est = summarize(x, seed=5)
    assert (iv.mean, iv.stderr, iv.ci_low, iv.ci_high, iv.n) == (
        est.mean,
        est.stderr,
        est.ci_low,
        est.ci_high,
        50,
    )
    assert iv.method == analysis.BOOTSTRAP
    assert metric_interval([]).method == "none" and metric_interval([]).n == 0


def _stat(k: int, n: int) -> TaskStat:
    iv = metric_interval(np.r_[np.ones(k), np.zeros(n - k)])
    return TaskStat(iv.mean, iv.stderr, iv.n, iv.method, iv.ci_low, iv.ci_high)


def test_macro_of_one_task_is_that_task() -> None:
    one = _stat(3, 10)
    iv = macro_interval([one])
    assert (iv.ci_low, iv.ci_high) == (one.ci_low, one.ci_high) == pytest.approx(_scipy_wilson(3, 10))


def test_stratified_wilson_of_equal_tasks_is_the_pooled_wilson() -> None:
    """Equal sizes and equal proportions: the effective size is the total, so it is Wilson on 3n."""
    iv = macro_interval([_stat(6, 20)] * 3)
    assert iv.method == analysis.STRATIFIED_WILSON
    assert (iv.ci_low, iv.ci_high) == pytest.approx(_scipy_wilson(18, 60), abs=1e-12)
    zero = macro_interval([_stat(0, 10), _stat(0, 10)])
    assert zero.ci_low == 0.0 and zero.ci_high == pytest.approx(_scipy_wilson(0, 20)[1])


def test_stratified_wilson_covers_the_macro_average() -> None:
    rng = np.random.default_rng(1)
    ps, ns = np.array([0.1, 0.5, 0.95]), np.array([10, 30, 60])
    truth, hits, reps = ps.mean(), 0, 3000
    ks = rng.binomial(ns, ps, size=(reps, 3))
    for row in ks:
        iv = macro_interval([_stat(int(k), int(n)) for k, n in zip(row, ns, strict=True)])
        hits += iv.ci_low <= truth <= iv.ci_high
    assert 0.94 <= hits / reps <= 0.995  # 0.987 here; the raw-proportion variance gave 0.924


def test_macro_with_a_continuous_task_is_normal_from_stored_stderrs() -> None:
    parts = [TaskStat(0.4, 0.05, 100, "bootstrap"), TaskStat(0.6, 0.03, 50, "wilson")]
    iv = macro_interval(parts)
    se = math.sqrt(0.05**2 + 0.03**2) / 2
    assert iv.method == analysis.NORMAL
    assert (iv.ci_low, iv.ci_high) == pytest.approx(
        (0.5 - 1.959963984540054 * se, 0.5 + 1.959963984540054 * se)
    )
    with pytest.raises(ValueError, match="at least one task"):
        macro_interval([])


def test_newcombe_is_honest_for_identical_models_and_covers() -> None:
    lo, hi = newcombe_paired(5, 0, 0, 5)  # two identical models on 10 items
    assert lo < -0.1 and hi > 0.1 and lo == pytest.approx(-hi)
    rng = np.random.default_rng(2)
    n, reps, hits = 40, 3000, 0
    truth = 0.7 - _p_b(0.6)
    for _ in range(reps):
        z = rng.random(n)
        a = (z < 0.7).astype(float)
        b = ((z + rng.normal(0, 0.25, n)) < 0.6).astype(float)  # correlated with a
        n11, n10 = int((a * b).sum()), int((a * (1 - b)).sum())
        n01, n00 = int(((1 - a) * b).sum()), int(((1 - a) * (1 - b)).sum())
        lo, hi = newcombe_paired(n11, n10, n01, n00)
        hits += lo <= truth <= hi
    assert 0.92 <= hits / reps <= 0.99


def _p_b(threshold: float) -> float:
    """P(U + N(0, 0.25) < t) for U uniform(0, 1), by quadrature (the true rate of model b)."""
    from scipy.stats import norm

    u = np.linspace(0, 1, 200_001)
    return float(np.trapezoid(norm.cdf((threshold - u) / 0.25), u))


def test_paired_binary_uses_mcnemar_and_newcombe() -> None:
    a = np.array([1, 1, 1, 1, 0, 0, 1, 0, 1, 1], dtype=float)
    b = np.array([1, 0, 0, 1, 0, 1, 0, 0, 0, 1], dtype=float)
    r = analysis.paired(a, b)
    n11, n10, n01, n00 = 3, 4, 1, 2
    assert (r.n10, r.n01, r.test) == (n10, n01, "mcnemar_exact")
    assert r.p_value == pytest.approx(binomtest(1, 5, 0.5).pvalue)
    assert (r.ci_low, r.ci_high) == newcombe_paired(n11, n10, n01, n00)
    assert r.diff == pytest.approx(0.3) and r.ci_low < r.diff < r.ci_high


def _bh(p: list[float]) -> list[float]:
    """Benjamini-Hochberg by its definition: min over j >= i of p_(j) * m / j, capped at 1."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out = [0.0] * m
    for rank, i in enumerate(order, start=1):
        out[i] = min(1.0, min(p[order[j - 1]] * m / j for j in range(rank, m + 1)))
    return out


def test_adjust_pvalues_is_benjamini_hochberg_and_skips_nan() -> None:
    p = [0.01, 0.04, 0.03, 0.2, 0.005]
    assert list(analysis.adjust_pvalues(p)) == pytest.approx(_bh(p))
    got = analysis.adjust_pvalues([0.01, math.nan, 0.04])
    assert math.isnan(got[1]) and list(got[[0, 2]]) == pytest.approx(_bh([0.01, 0.04]))
    assert analysis.adjust_pvalues([]).size == 0


@pytest.mark.parametrize(
    ("diff", "p", "hib", "expected"),
    [(0.2, 0.01, True, "better"), (0.2, 0.01, False, "worse"), (-0.2, 0.01, True, "worse"),
     (0.2, 0.06, True, "same"), (0.0, 0.0, True, "same"), (0.2, math.nan, True, "same")],
)  # fmt: skip
def test_verdict(diff: float, p: float, hib: bool, expected: str) -> None:
    assert analysis.verdict(diff, p, 0.05, hib) == expected


def test_cost_formula_per_item_and_total() -> None:
    # 2 items: 1.8 s and 3.6 s at $3.6/hour, 1,000 / 2,000 input and 10 / 20 output tokens at $1 / $2 per M
    per = analysis.cost_usd([1.8, 3.6], 3.6, [1000, 2000], [10, 20], (1.0, 2.0))
    assert list(per) == pytest.approx([0.0018 + 0.00102, 0.0036 + 0.00204])
    total = float(analysis.cost_usd(5.4, 3.6, 3000, 30, (1.0, 2.0)))
    assert total == pytest.approx(per.sum())
    assert float(analysis.cost_usd([math.nan], 3.6)[0]) == 0.0
    assert analysis.per_1k_items(total, 2) == pytest.approx(total * 500)
    assert analysis.per_1k_items(total, 0) is None and math.isnan(analysis.per_item(total, 0))
    assert analysis.per_correct(total, 0) is None and analysis.per_correct(1.0, 4.0) == 0.25


def test_pareto_and_cascade() -> None:
    assert analysis.pareto_front([("a", 0.5, 1.0), ("b", 0.6, 2.0), ("c", 0.4, 3.0)]) == {"a", "b"}
    rows = analysis.cascade([1, 0], [0, 1], [0.9, math.nan], 0.001, 0.01, [0.5])
    assert rows[0]["accuracy"] == 1.0 and rows[0]["deferral_rate"] == 0.5
    assert rows[0]["cost_per_item"] == pytest.approx(0.001 + 0.5 * 0.01)


def test_public_names() -> None:
    assert sorted(analysis.__all__) == sorted(n for n in analysis.__all__ if hasattr(analysis, n))
