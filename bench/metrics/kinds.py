"""The metrics of bench's built-in task kinds, each declared once.

The registrations in bench.tasks and the runtime tasks both read these lists; a kind's primary
metric is the one flagged `primary` (`primary_of`). A plugin kind declares its own the same way.
"""

from __future__ import annotations

from bench.metrics.metric import Metric, Ratio
from bench.metrics.text import nats_to_bits, perplexity

MCQ: tuple[Metric, ...] = (
    Metric("acc", primary=True, description="the highest-log-likelihood choice is the gold one"),
    Metric("acc_norm", description="acc with log-likelihoods divided by the choices' byte lengths"),
)
MCQ_LETTER: tuple[Metric, ...] = (
    Metric("acc", primary=True, description="the answered letter is the gold one"),
)

GSM8K: tuple[Metric, ...] = (
    Metric("exact_match_strict", primary=True, description="'The answer is N' / '#### N' equals the answer"),
    Metric("exact_match_flexible", description="the last number in the output equals the answer"),
)
MATH_LATEX: tuple[Metric, ...] = (
    Metric("exact_match", primary=True, description="the final answer is equivalent (math-verify)"),
)

QA: tuple[Metric, ...] = (
    Metric("exact_match", description="SQuAD exact match against any reference"),
    Metric("f1", primary=True, description="SQuAD token F1, best over the references"),
)

SUMMARIZE: tuple[Metric, ...] = (
    Metric("rouge1"),
    Metric("rouge2"),
    Metric("rougeL", primary=True),
    Metric("output_words", description="summary length in words"),
    Metric("compression_ratio", description="document words / summary words"),
)

PERPLEXITY: tuple[Metric, ...] = (
    Metric("bits_per_byte", False, Ratio("nll", "bytes", nats_to_bits), primary=True),
    Metric("byte_perplexity", False, Ratio("nll", "bytes", perplexity)),
    Metric("word_perplexity", False, Ratio("nll", "words", perplexity)),
)

LM_EVAL: tuple[Metric, ...] = (
    Metric("score", primary=True, description="until lm-eval's task is loaded: its first metric"),
)


def math_metrics(answer_format: str) -> tuple[Metric, ...]:
    """gsm8k-style numeric answers report lm-eval's strict and flexible matches; LaTeX answers one."""
    return GSM8K if answer_format == "number" else MATH_LATEX
