"""Repeats statistics checked against independent computations: pass@k against enumerating every
k-subset, maj@k on hand-made votes, the clustered interval against the naive one."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from bench.analysis.repeats import between_repeat_variance, clustered_mean, maj_at_k, pass_at_k


@pytest.mark.parametrize(
    ("n", "c", "k"), [(5, 2, 1), (5, 2, 2), (5, 2, 4), (8, 0, 3), (8, 8, 3), (10, 3, 10), (7, 1, 6)]
)
def test_pass_at_k_is_the_share_of_k_subsets_with_a_correct_answer(n: int, c: int, k: int) -> None:
    answers = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    expected = sum(any(answers[i] for i in s) for s in subsets) / len(subsets)
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_1_is_the_share_correct_and_bad_arguments_fail() -> None:
    assert pass_at_k(200, 37, 1) == pytest.approx(37 / 200)
    assert pass_at_k(200, 37, 50) == pytest.approx(1 - math.comb(163, 50) / math.comb(200, 50), rel=1e-9)
    for bad in ((5, 6, 1), (5, 2, 0), (5, 2, 6)):
        with pytest.raises(ValueError):
            pass_at_k(*bad)


@pytest.mark.parametrize(
    ("answers", "gold", "k", "expected"),
    [
        (["18", "18", "7"], "18", None, 1.0),
        (["7", "18", "7"], "18", None, 0.0),
        (["7", "18", "18", "7"], "18", None, 0.0),  # a tie goes to the answer given first
        (["18", "7", "7", "18"], "18", None, 1.0),
        ([None, None, "18"], "18", None, 1.0),  # unextractable answers do not vote
        ([None, None], "18", None, 0.0),
        (["18", "7", "7"], "18", 1, 1.0),  # only the first k vote
    ],
)
def test_maj_at_k(answers: list[str | None], gold: str, k: int | None, expected: float) -> None:
    assert maj_at_k(answers, gold, k) == expected


def test_the_clustered_interval_counts_items_not_repeats() -> None:
    # four items, each answered the same way on all five repeats: there are 4 independent units
    scores = [[1.0] * 5, [0.0] * 5, [1.0] * 5, [0.0] * 5]
    cm = clustered_mean(scores)
    flat = np.asarray([x for s in scores for x in s])
    naive_se = flat.std(ddof=1) / math.sqrt(flat.size)
    assert cm.mean == 0.5 and (cm.n_items, cm.n_scores) == (4, 20)
    assert cm.stderr == pytest.approx(np.std([1, 0, 1, 0], ddof=1) / 2)
    assert cm.stderr > 1.9 * naive_se  # the naive interval over 20 scores is far too narrow
    assert cm.ci_low == pytest.approx(0.5 - 1.959963984540054 * cm.stderr)
    # unequal repeats: every item weighs the same
    assert clustered_mean([[1.0], [0.0, 0.0, 0.0]]).mean == 0.5
    assert math.isnan(clustered_mean([]).mean) and math.isnan(clustered_mean([[1.0]]).stderr)


def test_between_repeat_variance_is_zero_for_stable_answers() -> None:
    assert between_repeat_variance([[1.0, 1.0, 1.0], [0.0, 0.0]]) == 0.0
    assert between_repeat_variance([[1.0, 0.0], [1.0, 1.0]]) == pytest.approx((0.5 + 0.0) / 2)
    assert math.isnan(between_repeat_variance([[1.0], [0.0]]))
