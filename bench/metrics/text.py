"""Per-item summarization scores (ROUGE, length, compression) and the log-likelihood text figures
(bits per byte, byte and word perplexity).

ROUGE comes from Google's `rouge-score` package with the Porter stemmer, the setup most papers and
lm-eval's summarization tasks report. Building a RougeScorer loads the stemmer and tokenizer, so one
scorer is built lazily on first use and shared by every call.
"""

from __future__ import annotations

import functools
import math
from typing import Any, TypedDict

__all__ = [
    "LN2",
    "ROUGE_TYPES",
    "SummaryScore",
    "bits_per_byte",
    "byte_perplexity",
    "nats_to_bits",
    "perplexity",
    "score_summary",
    "word_count",
    "word_perplexity",
]

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


class SummaryScore(TypedDict):
    rouge1: float
    rouge2: float
    rougeL: float
    output_words: int
    compression_ratio: float | None


@functools.cache
def _scorer() -> Any:
    from rouge_score import rouge_scorer  # imports nltk: ~2 s, so only when ROUGE is needed

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def word_count(text: str) -> int:
    """Whitespace-separated words, the unit for summary length and compression ratio."""
    return len(text.split())


def score_summary(prediction: str, reference: str, document: str) -> SummaryScore:
    """ROUGE-1/2/L F-measures of prediction vs reference, summary length, and compression ratio
    (document words / summary words; None for an empty summary, whose ratio is undefined)."""
    scores = _scorer().score(reference, prediction)  # rouge-score's order is (target, prediction)
    n_out = word_count(prediction)
    return SummaryScore(
        rouge1=float(scores["rouge1"].fmeasure),
        rouge2=float(scores["rouge2"].fmeasure),
        rougeL=float(scores["rougeL"].fmeasure),
        output_words=n_out,
        compression_ratio=word_count(document) / n_out if n_out else None,
    )


# ------------------------------------------------------------ log-likelihood figures
# One definition each, used per item (bench.tasks.perplexity) and per corpus (the metric's Ratio in
# bench.metrics.kinds, over the sums of the items' nats and bytes or words), as lm-eval aggregates them.

LN2 = math.log(2)


def nats_to_bits(nats_per_byte: Any) -> Any:
    """Bits per byte from nats per byte (a float or an array of them)."""
    return nats_per_byte / LN2


def perplexity(nats_per_unit: Any) -> Any:
    """exp(nats per unit) (a float or an array); inf where it overflows a float."""
    if isinstance(nats_per_unit, float | int):
        try:
            return math.exp(nats_per_unit)
        except OverflowError:
            return math.inf
    import numpy as np

    with np.errstate(over="ignore"):
        return np.exp(nats_per_unit)


def _positive(n: float, what: str) -> None:
    if n <= 0:
        raise ValueError(f"{what} must be positive, got {n}")


def bits_per_byte(total_loglik_nats: float, n_bytes: float) -> float:
    """lm-eval's bits_per_byte: -sum(loglik) / n_bytes / ln 2, tokenizer-independent."""
    _positive(n_bytes, "n_bytes")
    return float(nats_to_bits(-total_loglik_nats / n_bytes))


def byte_perplexity(total_loglik_nats: float, n_bytes: float) -> float:
    """lm-eval's byte_perplexity: exp(-sum(loglik) / n_bytes); inf when it overflows a float."""
    _positive(n_bytes, "n_bytes")
    return float(perplexity(-total_loglik_nats / n_bytes))


def word_perplexity(total_loglik_nats: float, n_words: float) -> float:
    """lm-eval's word_perplexity: exp(-sum(loglik) / n_words); inf when it overflows a float."""
    _positive(n_words, "n_words")
    return float(perplexity(-total_loglik_nats / n_words))
