"""Per-item extractive-QA scores exactly as the official SQuAD v1.1 evaluation script defines them.

Kept character for character (string.punctuation, the `\\b(a|an|the)\\b` article regex, token F1
over whitespace tokens, max over gold answers) so scores line up with SQuAD, DROP-style and lm-eval
numbers. As in v1.1, an empty prediction gets F1 0 even against an empty gold (SQuAD v2 would give 1).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import TypedDict

__all__ = ["QaScore", "exact_match", "f1", "normalize_answer", "score_qa"]

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")


class QaScore(TypedDict):
    exact_match: float
    f1: float


def normalize_answer(s: str) -> str:
    """Lowercase, drop ASCII punctuation, drop articles a/an/the, collapse whitespace (SQuAD v1.1)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCTUATION)
    s = _ARTICLES_RE.sub(" ", s)
    return " ".join(s.split())


def _f1_single(prediction: str, gold: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    num_same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _golds(golds: str | Sequence[str]) -> list[str]:
    gold_list = [golds] if isinstance(golds, str) else list(golds)
    if not gold_list:
        raise ValueError("at least one gold answer is required")
    return gold_list


def exact_match(prediction: str, golds: str | Sequence[str]) -> float:
    """1.0 if the normalized prediction equals any normalized gold answer, else 0.0."""
    norm = normalize_answer(prediction)
    return float(any(norm == normalize_answer(g) for g in _golds(golds)))


def f1(prediction: str, golds: str | Sequence[str]) -> float:
    """Bag-of-tokens F1 between the normalized prediction and its best-matching gold answer."""
    return max(_f1_single(prediction, g) for g in _golds(golds))


def score_qa(prediction: str, golds: str | Sequence[str]) -> QaScore:
    """Both SQuAD scores for one item (a single gold string is accepted as one answer)."""
    return QaScore(exact_match=exact_match(prediction, golds), f1=f1(prediction, golds))
