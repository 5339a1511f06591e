"""Per-item summarization scores (ROUGE, length, compression) and log-likelihood based text metrics.

ROUGE comes from Google's `rouge-score` package with the Porter stemmer, the setup most papers and
lm-eval's summarization tasks report. Building a RougeScorer loads the stemmer and tokenizer, so one
scorer is built lazily on first use and shared by every call.
"""

from __future__ import annotations

import functools
import math
from typing import Any, TypedDict

__all__ = ["ROUGE_TYPES", "SummaryScore", "bits_per_byte", "score_summary", "word_count", "word_perplexity"]

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


def bits_per_byte(total_loglik_nats: float, n_bytes: int) -> float:
    """lm-eval's bits_per_byte: -sum(loglik) / (n_bytes * ln 2), tokenizer-independent."""
    if n_bytes <= 0:
        raise ValueError(f"n_bytes must be positive, got {n_bytes}")
    return -total_loglik_nats / (n_bytes * math.log(2))


def word_perplexity(total_loglik_nats: float, n_words: int) -> float:
    """lm-eval's word_perplexity: exp(-sum(loglik) / n_words); inf when it overflows a float."""
    if n_words <= 0:
        raise ValueError(f"n_words must be positive, got {n_words}")
    try:
        return math.exp(-total_loglik_nats / n_words)
    except OverflowError:
        return math.inf
