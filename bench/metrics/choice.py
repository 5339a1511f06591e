"""Per-item scores for multiple choice from log-likelihoods, as lm-eval defines them.

acc:      argmax of the summed log-likelihoods is the gold choice.
acc_norm: argmax of log-likelihood divided by the choice's length in characters (lm-eval's
          `completion_len` over doc_to_choice, i.e. without the target delimiter).
Ties go to the first choice, as numpy's argmax does in lm-eval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ChoiceScore:
    pred: int
    pred_norm: int
    acc: float
    acc_norm: float
    confidence: float  # probability of the predicted choice among the choices (softmax of log-likelihoods)
    gold_prob: float


def score_choices(logliks: Sequence[float], choices: Sequence[str], gold: int) -> ChoiceScore:
    if len(logliks) != len(choices) or not choices:
        raise ValueError(f"{len(logliks)} log-likelihoods for {len(choices)} choices")
    if not 0 <= gold < len(choices):
        raise ValueError(f"gold index {gold} out of range for {len(choices)} choices")
    lls = np.asarray(logliks, dtype=np.float64)
    lens = np.array([float(len(c)) for c in choices])
    pred = int(np.argmax(lls))
    pred_norm = int(np.argmax(lls / np.where(lens > 0, lens, 1.0)))
    p = np.exp(lls - lls.max())
    p /= p.sum()
    return ChoiceScore(
        pred=pred,
        pred_norm=pred_norm,
        acc=float(pred == gold),
        acc_norm=float(pred_norm == gold),
        confidence=float(p[pred]),
        gold_prob=float(p[gold]),
    )
