"""acc / acc_norm on hand-made log-likelihoods, as lm-eval defines them."""

from __future__ import annotations

import math

import pytest

from bench.metrics.choice import score_choices


@pytest.mark.parametrize(
    ("lls", "choices", "gold", "acc", "acc_norm", "pred", "pred_norm"),
    [
        # plain argmax
        ([-1.0, -2.0, -3.0], ["a", "b", "c"], 0, 1.0, 1.0, 0, 0),
        # length normalisation flips the choice: -6/12 = -0.5 beats -2/2 = -1.0
        ([-2.0, -6.0], ["ab", "abcdefghijkl"], 1, 0.0, 1.0, 0, 1),
        # and can flip it away from the gold
        ([-6.0, -2.0], ["abcdefghijkl", "ab"], 1, 1.0, 0.0, 1, 0),
        # ties go to the first choice (numpy argmax)
        ([-1.0, -1.0], ["x", "y"], 1, 0.0, 0.0, 0, 0),
        # normalisation is by characters of the choice, not by tokens and not by the delimiter
        ([-3.0, -4.0], ["abc", "abcd"], 1, 0.0, 0.0, 0, 0),
    ],
)
def test_acc_and_acc_norm(lls, choices, gold, acc, acc_norm, pred, pred_norm) -> None:  # type: ignore[no-untyped-def]
    s = score_choices(lls, choices, gold)
    assert (s.acc, s.acc_norm, s.pred, s.pred_norm) == (acc, acc_norm, pred, pred_norm)


def test_confidence_is_the_softmax_probability_of_the_prediction() -> None:
    s = score_choices([math.log(0.5), math.log(0.3), math.log(0.2)], ["a", "b", "c"], 2)
    assert s.confidence == pytest.approx(0.5)
    assert s.gold_prob == pytest.approx(0.2)
    # unnormalised log-likelihoods give the same probabilities among the choices
    s2 = score_choices([math.log(0.05), math.log(0.03), math.log(0.02)], ["a", "b", "c"], 2)
    assert s2.confidence == pytest.approx(0.5) and s2.gold_prob == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("lls", "choices", "gold"), [([-1.0], ["a", "b"], 0), ([-1.0, -2.0], ["a", "b"], 2), ([], [], 0)]
)
def test_bad_inputs_raise(lls, choices, gold) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        score_choices(lls, choices, gold)
