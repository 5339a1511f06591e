"""The replay backend answers only what the stored rows hold; anything else needs the model."""

from __future__ import annotations

import pytest

from bench.backends.base import GenerateRequest, LoglikelihoodRequest, RollingRequest
from bench.backends.replay import NeedsModel, ReplayBackend

ROWS = [
    {"item_id": "g", "method": "chat", "prompt": "P", "max_tokens": 8, "raw_output": "out", "input_tokens": 3,
     "output_tokens": 2, "ttft_s": 0.1, "latency_s": 0.5, "finish_reason": "length"},
    {"item_id": "c", "method": "loglikelihood", "prompt": "Q:", "choice_logliks": [-1.0, -2.5],
     "input_tokens": 9, "tokens_evaluated": 7, "latency_s": 0.2},
    {"item_id": "r", "method": "loglikelihood_rolling", "prompt": "text", "scores": [("nll", 4.5)],
     "input_tokens": 2, "tokens_evaluated": 2, "latency_s": 0.1},
    {"item_id": "l", "method": "lm_eval:multiple_choice", "prompt": "Q:", "choice_logliks": [-1.0, -2.0]},
]  # fmt: skip


def test_stored_answers_come_back_as_the_engine_gave_them() -> None:
    b = ReplayBackend("m", ROWS)
    assert b.info().chat_template and b.info().loglikelihood
    g = b.generate([GenerateRequest("g", "P", max_tokens=8)])[0]
    assert (g.text, g.input_tokens, g.output_tokens, g.ttft_s, g.latency_s, g.finish_reason) == (
        "out", 3, 2, 0.1, 0.5, "length"
    )  # fmt: skip
    c = b.loglikelihood([LoglikelihoodRequest("c", (("Q:", " a"), ("Q:", " b")))])[0]
    assert (c.logliks, c.input_tokens, c.tokens_evaluated, c.latency_s) == ([-1.0, -2.5], 9, 7, 0.2)
    r = b.loglikelihood_rolling([RollingRequest("r", "text")])[0]
    assert (r.loglik, r.tokens) == (-4.5, 2)
    assert not ReplayBackend("m", [{"item_id": "x", "method": "generate_letter"}]).info().loglikelihood


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda b: b.generate([GenerateRequest("g", "P2", max_tokens=8)]), "the prompt changed"),
        (
            lambda b: b.generate([GenerateRequest("g", "P", max_tokens=9)]),
            "max_tokens is 9, the stored output had 8",
        ),
        (lambda b: b.generate([GenerateRequest("nope", "P")]), "'nope' has no stored answer"),
        (
            lambda b: b.generate([GenerateRequest("c", "Q:")]),
            "asks for generations; the stored rows hold 'loglikelihood'",
        ),
        (
            lambda b: b.loglikelihood([LoglikelihoodRequest("c", (("Q:", " a"),))]),
            "1 choices asked, stored 2",
        ),
        (
            lambda b: b.loglikelihood([LoglikelihoodRequest("l", (("Q:", " a"), ("Q:", " b")))]),
            "stored rows hold 'lm_eval:multiple_choice' answers",  # lm-eval's greedy flags are not stored
        ),
        (lambda b: b.loglikelihood_rolling([RollingRequest("r", "other")]), "the text changed"),
    ],
)
def test_what_the_rows_do_not_hold_needs_the_model(call: object, message: str) -> None:
    with pytest.raises(NeedsModel, match=message):
        call(ReplayBackend("m", ROWS))  # type: ignore[operator]
