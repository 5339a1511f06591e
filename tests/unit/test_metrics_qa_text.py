"""SQuAD exact match / F1 and summarization scores, cross-checked with lm-eval and rouge-score."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from bench.metrics import text as text_metrics
from bench.metrics.qa import exact_match, f1, normalize_answer, score_qa
from bench.metrics.text import bits_per_byte, score_summary, word_count, word_perplexity

# --------------------------------------------------------------------------------------------------
# SQuAD
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The Eiffel Tower", "eiffel tower"),
        ("  an   apple ", "apple"),
        ("A.D. 1066", "ad 1066"),
        ("Paris!", "paris"),
        ("the the the", ""),
        ("Theatre", "theatre"),  # articles only as whole words
        ("Anne and a friend", "anne and friend"),
        ("Denver Broncos'", "denver broncos"),
        ("1,000", "1000"),
        ("rock-n-roll", "rocknroll"),  # punctuation is removed, not replaced by a space
        ("“Curly” quotes", "“curly” quotes"),  # only ASCII punctuation, as in SQuAD v1.1
        ("TAB\tand\nnewline", "tab and newline"),
        ("", ""),
    ],
)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


@pytest.mark.parametrize(
    ("pred", "golds", "em", "f1_score"),
    [
        ("Denver Broncos", ["Denver Broncos"], 1.0, 1.0),
        ("the denver broncos.", ["Denver Broncos"], 1.0, 1.0),
        ("Broncos", ["Denver Broncos"], 0.0, 2 * (1.0 * 0.5) / 1.5),
        ("Denver Broncos won", ["Denver Broncos"], 0.0, 0.8),
        ("Carolina Panthers", ["Denver Broncos"], 0.0, 0.0),
        ("Broncos", ["Denver Broncos", "Broncos", "the Broncos"], 1.0, 1.0),
        ("in 1066", ["1066", "the year 1066"], 0.0, 2 / 3),
        ("a a b", ["b b a"], 0.0, 2 / 3),  # "a" is an article: "b" vs "b b"
        ("x x y", ["x y y"], 0.0, 2 / 3),  # token bags: min counts
        ("", ["Denver"], 0.0, 0.0),
        ("", [""], 1.0, 0.0),  # SQuAD v1.1: empty vs empty is EM 1 but F1 0
        ("The", ["the"], 1.0, 0.0),  # both normalize to "": same as above
        ("Denver", "Denver", 1.0, 1.0),  # one gold as a plain string
    ],
)
def test_squad_scores(pred: str, golds: list[str] | str, em: float, f1_score: float) -> None:
    assert exact_match(pred, golds) == em
    assert f1(pred, golds) == pytest.approx(f1_score)
    assert score_qa(pred, golds) == {"exact_match": em, "f1": pytest.approx(f1_score)}


def test_squad_needs_a_gold() -> None:
    with pytest.raises(ValueError):
        score_qa("x", [])


QA_CROSS_CHECK = [
    ("Denver Broncos", ["Denver Broncos", "Broncos"]),
    ("the Denver Broncos!", ["Denver Broncos"]),
    ("Broncos of Denver", ["Denver Broncos"]),
    ("Carolina", ["Denver Broncos", "Carolina Panthers"]),
    ("in the year 1066 AD", ["1066", "1066 AD"]),
    ("Saint Bernadette Soubirous", ["Saint Bernadette Soubirous"]),
    ("a copper statue of Christ", ["a copper statue of Christ", "copper statue"]),
    ("It was built in 1889.", ["1889"]),
    ("Paris, France", ["Paris"]),
    ("The Normans", ["Normans", "Norman"]),
    ("10th and 11th centuries", ["in the 10th and 11th centuries", "10th and 11th"]),
    ("no idea", ["Rollo"]),
    ("x x y", ["x y y", "z"]),
    ("", ["Rollo"]),
]


def test_squad_agrees_with_lm_eval() -> None:
    """lm-eval's ReCoRD helpers carry the official SQuAD normalization and token F1."""
    pytest.importorskip("lm_eval", reason="lm-eval is the reference here: pip install 'bench[lmeval]'")
    from lm_eval.tasks.super_glue.record.t5_utils import normalize_squad, squad_em_agg, squad_f1_agg

    for pred, golds in QA_CROSS_CHECK:
        items = [(pred, f"0_{g}") for g in golds]  # one group: max over its gold answers
        s = score_qa(pred, golds)
        assert normalize_answer(pred) == normalize_squad(pred)
        assert s["exact_match"] == pytest.approx(squad_em_agg(items)), pred
        assert s["f1"] == pytest.approx(squad_f1_agg(items)), pred


# --------------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------------

DOC = (
    "The city council met on Tuesday to discuss the new budget. After a long debate, members voted "
    "seven to two to increase funding for public parks and libraries, while cutting the road budget."
)
SUMMARY_PAIRS = [
    ("The council voted to fund parks and libraries.", "Council increases park and library funding."),
    ("Council increases park and library funding.", "Council increases park and library funding."),
    ("The cats sat on the mats", "A cat sat on the mat"),
    ("Budget approved 7-2; roads lose money.", "The council approved a budget that cuts roads."),
    ("Completely unrelated sentence about weather.", "Council increases park and library funding."),
    ("Running runners ran quickly", "The runner runs quick"),
    ("", "Council increases park and library funding."),
    ("!!!", "Council increases park and library funding."),
]


def test_rouge_agrees_with_rouge_score() -> None:
    from rouge_score import rouge_scorer

    reference_scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    for pred, ref in SUMMARY_PAIRS:
        expected = reference_scorer.score(ref, pred)
        got = score_summary(pred, ref, DOC)
        for key in ("rouge1", "rouge2", "rougeL"):
            assert got[key] == pytest.approx(expected[key].fmeasure), (pred, key)


def test_rouge_values_by_hand() -> None:
    s = score_summary("the cat sat", "the cat sat", DOC)
    assert (s["rouge1"], s["rouge2"], s["rougeL"]) == (1.0, 1.0, 1.0)
    s = score_summary("cats sitting", "the cat sat", DOC)  # stemming: cats -> cat, sitting -> sit != sat
    assert s["rouge1"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    assert s["rouge2"] == 0.0


@pytest.mark.parametrize(
    ("pred", "words", "ratio"),
    [
        ("The council voted to fund parks and libraries.", 8, 33 / 8),
        ("Parks win.", 2, 33 / 2),
        ("  spaced \n out\ttext ", 3, 33 / 3),
        ("", 0, None),
        ("   \n", 0, None),
    ],
)
def test_summary_length_and_compression(pred: str, words: int, ratio: float | None) -> None:
    assert word_count(DOC) == 33
    s = score_summary(pred, "Council increases park and library funding.", DOC)
    assert s["output_words"] == words
    assert s["compression_ratio"] == (pytest.approx(ratio) if ratio is not None else None)
    if words == 0:
        assert (s["rouge1"], s["rouge2"], s["rougeL"]) == (0.0, 0.0, 0.0)


@pytest.fixture
def count_scorer_builds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    from rouge_score import rouge_scorer

    real = rouge_scorer.RougeScorer
    builds: list[int] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        builds.append(1)
        return real(*args, **kwargs)

    text_metrics._scorer.cache_clear()
    monkeypatch.setattr(rouge_scorer, "RougeScorer", counting)
    yield builds
    text_metrics._scorer.cache_clear()  # do not keep a scorer built through the patch


def test_scorer_is_built_once(count_scorer_builds: list[int]) -> None:
    for i in range(500):
        score_summary(f"summary number {i}", "a reference summary", DOC)
    assert count_scorer_builds == [1]


# --------------------------------------------------------------------------------------------------
# Log-likelihood metrics
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loglik", "n_bytes", "bpb"),
    [
        (-math.log(2) * 100, 100, 1.0),
        (-math.log(2) * 50, 100, 0.5),
        (0.0, 10, 0.0),
        (-1.0, 1, 1 / math.log(2)),
    ],
)
def test_bits_per_byte(loglik: float, n_bytes: int, bpb: float) -> None:
    assert bits_per_byte(loglik, n_bytes) == pytest.approx(bpb)


@pytest.mark.parametrize(
    ("loglik", "n_words", "ppl"),
    [(0.0, 5, 1.0), (-10.0, 10, math.e), (-math.log(50) * 4, 4, 50.0), (-1e6, 1, math.inf)],
)
def test_word_perplexity(loglik: float, n_words: int, ppl: float) -> None:
    assert word_perplexity(loglik, n_words) == pytest.approx(ppl)


@pytest.mark.parametrize("fn", [bits_per_byte, word_perplexity])
@pytest.mark.parametrize("n", [0, -3])
def test_loglik_metrics_need_a_positive_count(fn: Any, n: int) -> None:
    with pytest.raises(ValueError):
        fn(-1.0, n)


def test_loglik_metrics_agree_with_lm_eval() -> None:
    """lm-eval aggregates (loglik, count) pairs; on one document that is exactly bench's per-item value."""
    pytest.importorskip("lm_eval", reason="lm-eval is the reference here: pip install 'bench[lmeval]'")
    from lm_eval.api.metrics import bits_per_byte as lm_bpb
    from lm_eval.api.metrics import weighted_perplexity

    for ll, n in [(-123.4, 456), (-0.5, 3), (-9876.5, 40000), (0.0, 7)]:
        assert bits_per_byte(ll, n) == pytest.approx(lm_bpb([(ll, n)]))
        assert word_perplexity(ll, n) == pytest.approx(weighted_perplexity([(ll, n)]))
