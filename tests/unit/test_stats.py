"""Known answers and properties of bench.metrics.stats: every reported number goes through it."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from bench.metrics import stats
from bench.metrics.stats import (
    Estimate,
    PairedResult,
    align_paired,
    is_significant,
    macro_average,
    paired_comparison,
    percentiles,
    summarize,
)


def _binary(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    return (rng.random(n) < p).astype(float)


def _pairs(n01: int, n10: int, both_right: int = 5, both_wrong: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """0/1 arrays with the given discordant counts (n10: a right, b wrong) plus concordant pairs."""
    a = [0] * n01 + [1] * n10 + [1] * both_right + [0] * both_wrong
    b = [1] * n01 + [0] * n10 + [1] * both_right + [0] * both_wrong
    return np.array(a, dtype=float), np.array(b, dtype=float)


def _mcnemar_closed_form(n01: int, n10: int) -> float:
    """Two-sided exact binomial p at 0.5: twice the smaller tail, capped at 1 (symmetric null)."""
    n = n01 + n10
    if n == 0:
        return 1.0
    k = min(n01, n10)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2.0 * tail)


# --- summarize -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "mean", "stderr"),
    [
        ([1, 0, 1, 1], 0.75, 0.25),  # var(ddof=1) = 0.75 / 3 = 0.25, std 0.5, / sqrt(4)
        ([0.2, 0.4], 0.3, 0.1),  # std(ddof=1) = sqrt(0.02), / sqrt(2) = 0.1
        ([1, 1, 1], 1.0, 0.0),
        ([0, 0, 1, 1, 1, 1, 1, 1, 1, 1], 0.8, math.sqrt(0.8 * 0.2 * 10 / 9 / 10)),
        ([0.7], 0.7, 0.0),  # one item: no spread to measure, stderr 0 rather than NaN
    ],
)
def test_summarize_known_answers(scores: list[float], mean: float, stderr: float) -> None:
    est = summarize(scores)
    assert est.n == len(scores)
    assert est.mean == pytest.approx(mean, abs=1e-12)
    assert est.stderr == pytest.approx(stderr, abs=1e-12)
    assert est.ci_low <= est.mean <= est.ci_high


def test_summarize_single_item_ci_is_the_item() -> None:
    est = summarize(np.array([0.7]))
    assert (est.ci_low, est.ci_high) == (0.7, 0.7)


def test_summarize_empty_is_all_nan() -> None:
    est = summarize(np.array([]))
    assert est.n == 0
    assert all(math.isnan(v) for v in (est.mean, est.stderr, est.ci_low, est.ci_high))


def test_summarize_ci_contains_mean_and_narrows_with_n() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n in (50, 500, 5000):
        est = summarize(_binary(rng, n, 0.7))
        assert est.ci_low < est.mean < est.ci_high
        widths.append(est.ci_high - est.ci_low)
    assert widths[0] > widths[1] > widths[2]


def test_summarize_ci_matches_normal_theory_for_large_n() -> None:
    """The percentile bootstrap of a mean should be close to mean ± 1.96·stderr at n = 2000."""
    est = summarize(_binary(np.random.default_rng(1), 2000, 0.6), n_boot=2000)
    assert est.ci_high - est.ci_low == pytest.approx(2 * 1.959964 * est.stderr, rel=0.15)
    assert (est.ci_low + est.ci_high) / 2 == pytest.approx(est.mean, abs=0.01)


def test_summarize_alpha_widens_interval() -> None:
    x = _binary(np.random.default_rng(2), 300, 0.5)
    narrow, wide = summarize(x, alpha=0.5), summarize(x, alpha=0.01)
    assert wide.ci_low < narrow.ci_low and narrow.ci_high < wide.ci_high


def test_summarize_is_deterministic_per_seed() -> None:
    x = _binary(np.random.default_rng(3), 101, 0.4)
    assert summarize(x, seed=7) == summarize(x, seed=7)
    other = summarize(x, seed=8)
    assert (other.ci_low, other.ci_high) != (summarize(x, seed=7).ci_low, summarize(x, seed=7).ci_high)
    assert other.mean == summarize(x, seed=7).mean


def test_bootstrap_chunking_does_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.random.default_rng(4).random(37)
    whole = summarize(x, n_boot=500)
    paired_whole = paired_comparison(x, x[::-1], n_boot=500)
    monkeypatch.setattr(stats, "_MAX_DRAW_ELEMENTS", 37 * 3)  # 3 resamples per chunk, ragged tail
    assert summarize(x, n_boot=500) == whole
    assert paired_comparison(x, x[::-1], n_boot=500) == paired_whole


def test_estimate_is_frozen() -> None:
    est = summarize([1, 0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        est.mean = 0.0  # type: ignore[misc]


# --- macro_average ---------------------------------------------------------------------------


def test_macro_average_is_mean_of_task_means_not_micro() -> None:
    rng = np.random.default_rng(5)
    tasks = {"big": _binary(rng, 400, 0.9), "small": _binary(rng, 20, 0.2), "mid": rng.random(80)}
    est = macro_average(tasks)
    means = [v.mean() for v in tasks.values()]
    assert est.mean == pytest.approx(np.mean(means), abs=1e-12)
    assert est.mean != pytest.approx(np.concatenate(list(tasks.values())).mean(), abs=1e-3)
    ses = [summarize(v).stderr for v in tasks.values()]
    assert est.stderr == pytest.approx(math.sqrt(sum(s * s for s in ses)) / 3, abs=1e-12)
    assert est.n == 500
    assert est.ci_low < est.mean < est.ci_high


def test_macro_average_one_task_equals_summarize() -> None:
    x = _binary(np.random.default_rng(6), 60, 0.5)
    assert macro_average({"only": x}, seed=11) == summarize(x, seed=11)


def test_macro_average_ignores_mapping_order_and_follows_seed() -> None:
    rng = np.random.default_rng(7)
    a, b = _binary(rng, 50, 0.3), _binary(rng, 70, 0.6)
    assert macro_average({"a": a, "b": b}) == macro_average({"b": b, "a": a})
    assert macro_average({"a": a, "b": b}, seed=1) != macro_average({"a": a, "b": b}, seed=2)


def test_macro_average_stratified_ci_is_narrower_than_a_single_task() -> None:
    """Averaging T independent task means shrinks the spread roughly by sqrt(T)."""
    rng = np.random.default_rng(8)
    tasks = {f"t{i}": _binary(rng, 200, 0.5) for i in range(4)}
    macro = macro_average(tasks)
    single = summarize(tasks["t0"])
    ratio = (macro.ci_high - macro.ci_low) / (single.ci_high - single.ci_low)
    assert 0.35 < ratio < 0.7


# --- paired_comparison -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n01", "n10", "expected"),
    [
        (8, 2, 0.109375),  # 2 · (C(10,0) + C(10,1) + C(10,2)) / 2^10 = 2 · 56 / 1024
        (2, 8, 0.109375),
        (0, 6, 0.03125),  # 2 / 2^6
        (5, 5, 1.0),
        (1, 0, 1.0),
        (0, 0, 1.0),  # no discordant pairs: nothing to test
        (3, 17, None),
        (40, 25, None),
    ],
)
def test_mcnemar_exact_matches_hand_and_closed_form(n01: int, n10: int, expected: float | None) -> None:
    a, b = _pairs(n01, n10)
    res = paired_comparison(a, b)
    assert res.test == "mcnemar_exact"
    assert (res.n01, res.n10) == (n01, n10)
    assert res.n == n01 + n10 + 8
    assert res.p_value == pytest.approx(_mcnemar_closed_form(n01, n10), rel=1e-9)
    if expected is not None:
        assert res.p_value == pytest.approx(expected, rel=1e-9)
    assert res.diff == pytest.approx((n10 - n01) / res.n, abs=1e-12)


@pytest.mark.parametrize(
    "scores",
    [
        np.array([1.0, 0.0, 1.0, 1.0, 0.0]),
        np.array([0.25, 0.5, 0.75, 0.1]),
        np.array([1.0]),
    ],
)
def test_identical_arrays_are_not_different(scores: np.ndarray) -> None:
    res = paired_comparison(scores, scores.copy())
    assert res.p_value == 1.0
    assert res.p_bootstrap == 1.0
    assert (res.diff, res.ci_low, res.ci_high) == (0.0, 0.0, 0.0)
    assert not is_significant(res)


def test_clearly_better_model_is_significant() -> None:
    """500 items: b right on 50%; a right wherever b is, plus 60% of b's misses (≈80%)."""
    rng = np.random.default_rng(9)
    b = _binary(rng, 500, 0.5)
    a = np.where(b == 1.0, 1.0, _binary(rng, 500, 0.6))
    res = paired_comparison(a, b)
    assert res.test == "mcnemar_exact"
    assert res.diff == pytest.approx(a.mean() - b.mean())
    assert 0.2 < res.diff < 0.4
    assert 0.0 < res.ci_low <= res.diff <= res.ci_high
    assert res.n01 == 0 and res.n10 is not None and res.n10 > 100
    assert res.p_value < 1e-10
    assert res.p_bootstrap == pytest.approx(1 / 1001)
    assert is_significant(res)
    flipped = paired_comparison(b, a)
    assert flipped.diff == pytest.approx(-res.diff)
    assert flipped.ci_high < 0.0
    assert (flipped.n01, flipped.n10) == (res.n10, res.n01)


def test_nearly_identical_models_are_not_significant() -> None:
    rng = np.random.default_rng(10)
    b = _binary(rng, 500, 0.7)
    a = b.copy()
    flip = rng.choice(500, size=6, replace=False)
    a[flip] = 1.0 - a[flip]
    res = paired_comparison(a, b)
    assert res.ci_low <= 0.0 <= res.ci_high
    assert res.p_value > 0.05
    assert res.p_bootstrap > 0.05
    assert not is_significant(res)


def test_paired_ci_is_narrower_than_unpaired_for_correlated_models() -> None:
    """Pairing cancels shared item difficulty; the paired CI must beat the two separate CIs."""
    rng = np.random.default_rng(11)
    b = _binary(rng, 400, 0.5)
    a = np.where(b == 1.0, 1.0, _binary(rng, 400, 0.2))
    res = paired_comparison(a, b)
    ea, eb = summarize(a), summarize(b)
    assert res.ci_high - res.ci_low < 0.5 * ((ea.ci_high - ea.ci_low) + (eb.ci_high - eb.ci_low))


def test_non_binary_uses_paired_t() -> None:
    rng = np.random.default_rng(12)
    b = rng.random(60)
    a = np.clip(b + rng.normal(0.05, 0.1, 60), 0, 1)
    res = paired_comparison(a, b)
    assert res.test == "paired_t"
    assert res.n01 is None and res.n10 is None
    assert res.p_value == pytest.approx(sps.ttest_rel(a, b).pvalue, rel=1e-12)


def test_one_binary_one_graded_array_uses_paired_t() -> None:
    res = paired_comparison([1.0, 0.0, 1.0, 0.0], [0.9, 0.1, 0.5, 0.2])
    assert res.test == "paired_t"


@pytest.mark.parametrize(
    ("a", "b", "p"),
    [
        ([0.3, 0.7, 0.5], [0.2, 0.6, 0.4], 0.0),  # constant shift up to rounding: t is infinite
        ([0.3, 0.7], [0.3, 0.7], 1.0),
        ([0.3], [0.2], math.nan),  # one item cannot be t-tested
    ],
)
def test_paired_t_edge_cases_do_not_warn(a: list[float], b: list[float], p: float) -> None:
    res = paired_comparison(a, b)
    assert res.test == "paired_t"
    if math.isnan(p):
        assert math.isnan(res.p_value)
        assert not is_significant(res)
    else:
        assert res.p_value == p


def test_paired_comparison_is_deterministic_per_seed() -> None:
    rng = np.random.default_rng(13)
    a, b = _binary(rng, 80, 0.6), _binary(rng, 80, 0.5)
    assert paired_comparison(a, b, seed=3) == paired_comparison(a, b, seed=3)
    r1, r2 = paired_comparison(a, b, seed=3), paired_comparison(a, b, seed=4)
    assert (r1.ci_low, r1.ci_high, r1.p_bootstrap) != (r2.ci_low, r2.ci_high, r2.p_bootstrap)
    assert (r1.diff, r1.p_value) == (r2.diff, r2.p_value)


# --- is_significant --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "alpha", "expected"),
    [
        (0.01, 0.05, True),
        (0.05, 0.05, False),
        (0.2, 0.05, False),
        (0.04, 0.01, False),
        (math.nan, 0.05, False),
    ],
)
def test_is_significant(p: float, alpha: float, expected: bool) -> None:
    res = PairedResult(0.1, 0.0, 0.2, p, "paired_t", 10, None, None, p)
    assert is_significant(res, alpha=alpha) is expected


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: paired_comparison([1, 0, 1], [1, 0]), "same items"),
        (lambda: paired_comparison([], []), "at least one item"),
        (lambda: paired_comparison([1, math.nan], [1, 0]), "NaN"),
        (lambda: summarize([[1, 0], [0, 1]]), "1-D"),
        (lambda: summarize([1, math.inf]), "NaN or infinite"),
        (lambda: summarize([1, 0], n_boot=0), "n_boot"),
        (lambda: summarize([1, 0], n_boot=True), "n_boot"),
        (lambda: summarize([1, 0], alpha=0.0), "alpha"),
        (lambda: summarize([1, 0], alpha=1.5), "alpha"),
        (lambda: macro_average({}), "at least one task"),
        (lambda: macro_average({"a": [1, 0], "b": []}), "'b' has no scores"),
        (lambda: macro_average({"a": [1, math.nan]}), "task 'a'"),
        (lambda: percentiles([1, 2], qs=(50, 101)), r"\[0, 100\]"),
        (lambda: percentiles([1, 2], qs=(math.nan,)), r"\[0, 100\]"),
    ],
)
def test_errors(call: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


# --- align_paired ----------------------------------------------------------------------------


def test_align_paired_keeps_only_shared_items_in_matching_order() -> None:
    df_a = pd.DataFrame({"item_id": ["q1", "q2", "q3", "q4"], "score": [1.0, 0.0, 1.0, 1.0]})
    df_b = pd.DataFrame({"item_id": ["q4", "q9", "q2", "q1"], "score": [0.0, 1.0, 1.0, 0.5]})
    aligned = align_paired(df_a, df_b)
    assert list(aligned.ids) == ["q1", "q2", "q4"]
    np.testing.assert_array_equal(aligned.a, [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(aligned.b, [0.5, 1.0, 0.0])
    a, _b, ids = aligned  # plain tuple unpacking works too
    assert a.dtype == np.float64 and len(ids) == 3


def test_align_paired_custom_columns_and_no_overlap() -> None:
    df_a = pd.DataFrame({"id": [1, 2], "acc": [1, 0]})
    df_b = pd.DataFrame({"id": [3, 4], "acc": [0, 1]})
    aligned = align_paired(df_a, df_b, key="id", value="acc")
    assert aligned.a.size == aligned.b.size == aligned.ids.size == 0
    with pytest.raises(ValueError, match="at least one item"):
        paired_comparison(aligned.a, aligned.b)


@pytest.mark.parametrize(
    ("df_a", "df_b", "match"),
    [
        (
            pd.DataFrame({"item_id": [1, 1], "score": [1, 0]}),
            pd.DataFrame({"item_id": [1], "score": [1]}),
            "df_a has duplicate",
        ),
        (
            pd.DataFrame({"item_id": [1], "score": [1]}),
            pd.DataFrame({"item_id": [2, 2], "score": [1, 0]}),
            "df_b has duplicate",
        ),
        (
            pd.DataFrame({"item_id": [1], "acc": [1]}),
            pd.DataFrame({"item_id": [1], "score": [1]}),
            "df_a lacks",
        ),
    ],
)
def test_align_paired_rejects_bad_frames(df_a: pd.DataFrame, df_b: pd.DataFrame, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        align_paired(df_a, df_b)


# --- percentiles -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "qs", "expected"),
    [
        (np.arange(1, 101), (50, 90, 99), {"p50": 50.5, "p90": 90.1, "p99": 99.01}),
        ([np.nan, 3.0, 1.0, np.nan, 2.0], (50, 90, 99), {"p50": 2.0, "p90": 2.8, "p99": 2.98}),
        ([5.0], (0, 99.9), {"p0": 5.0, "p99.9": 5.0}),
        ([0.0, 10.0], (25, 100), {"p25": 2.5, "p100": 10.0}),
    ],
)
def test_percentiles_known_answers(values: Any, qs: tuple[float, ...], expected: dict[str, float]) -> None:
    got = percentiles(values, qs=qs)
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-9)


@pytest.mark.parametrize("values", [[], [np.nan, np.nan]])
def test_percentiles_without_values_are_nan(values: list[float]) -> None:
    got = percentiles(values)
    assert list(got) == ["p50", "p90", "p99"]
    assert all(math.isnan(v) for v in got.values())


def test_result_fields_are_stable() -> None:
    assert [f.name for f in dataclasses.fields(Estimate)] == ["mean", "stderr", "ci_low", "ci_high", "n"]
    assert [f.name for f in dataclasses.fields(PairedResult)] == [
        "diff",
        "ci_low",
        "ci_high",
        "p_value",
        "test",
        "n",
        "n01",
        "n10",
        "p_bootstrap",
    ]
