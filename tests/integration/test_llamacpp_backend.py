"""The llama.cpp backend against llama.cpp itself: shared-context scoring must give exactly the
log-likelihoods of scoring each (context, continuation) from scratch, and generation must be greedy,
stop at stop sequences and respect the token limit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bench.backends.base import GenerateRequest, LoglikelihoodRequest
from bench.specs.tasks import MCQSpec
from bench.tasks.mcq import MultipleChoice


def _reference_loglik(llm: Any, ctx: list[int], cont: list[int]) -> tuple[float, bool]:
    """Score one pair from an empty cache with every position's logits (llama-cpp-python's own eval)."""
    llm.reset()
    llm.eval(ctx + cont)
    rows = llm.scores[len(ctx) - 1 : len(ctx) + len(cont) - 1].astype(np.float64)
    m = rows.max(axis=1, keepdims=True)
    logp = rows - (m + np.log(np.exp(rows - m).sum(axis=1, keepdims=True)))
    ll = float(sum(logp[i, t] for i, t in enumerate(cont)))
    greedy = bool(all(rows[i].argmax() == t for i, t in enumerate(cont)))
    return ll, greedy


@pytest.fixture(scope="module")
def reference_llm(smollm2_path: str) -> Any:
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=smollm2_path, n_ctx=2048, logits_all=True, n_threads=1, n_threads_batch=1, verbose=False
    )
    yield llm
    llm.close()


@pytest.mark.parametrize(
    ("dataset", "shots"), [("arc_easy", 0), ("arc_easy", 2), ("winogrande", 0), ("piqa", 0)]
)
def test_shared_context_scoring_equals_scoring_each_pair_alone(
    smollm2: Any, reference_llm: Any, dataset: str, shots: int
) -> None:
    task = MultipleChoice(MCQSpec(name="t", kind="mcq", dataset=dataset), limit=3, num_fewshot=shots, seed=5)
    reqs = [
        LoglikelihoodRequest(
            it.id, tuple(zip(task.contexts(it), [" " + c for c in it.record["choices"]], strict=True))
        )
        for it in task.items()
    ]
    got = smollm2.loglikelihood(reqs)
    naive_tokens = 0
    for req, resp in zip(reqs, got, strict=True):
        assert resp.error is None
        for (ctx_s, cont_s), ll, greedy in zip(req.pairs, resp.logliks, resp.is_greedy, strict=True):
            ctx, cont = smollm2.encode_pair(ctx_s, cont_s)
            ref_ll, ref_greedy = _reference_loglik(reference_llm, ctx, cont)
            assert ll == pytest.approx(ref_ll, abs=2e-3), (req.item_id, cont_s)
            assert greedy == ref_greedy
            naive_tokens += len(ctx) + len(cont)
    # the shared context is evaluated once per item, a shared few-shot prefix once per task
    assert sum(r.tokens_evaluated for r in got) < naive_tokens


@pytest.mark.parametrize("shots", [0, 3])
def test_results_do_not_depend_on_what_ran_before(smollm2: Any, shots: int) -> None:
    """Bit-for-bit: the same item scores the same after any history (resume, reordering, batching)."""
    task = MultipleChoice(
        MCQSpec(name="t", kind="mcq", dataset="arc_easy"), limit=4, num_fewshot=shots, seed=1
    )
    reqs = [
        LoglikelihoodRequest(
            it.id,
            tuple(zip(task.contexts(it), [" " + c for c in it.record["choices"]], strict=True)),
            prefix=task.head(it.record),
        )
        for it in task.items()
    ]
    first = smollm2.loglikelihood(reqs)
    smollm2.generate([GenerateRequest("noise", "Something else entirely", max_tokens=4)])
    second = smollm2.loglikelihood(list(reversed(reqs)))[::-1]
    alone = [smollm2.loglikelihood([r])[0] for r in reqs]
    for a, b, c in zip(first, second, alone, strict=True):
        assert a.logliks == b.logliks == c.logliks
    if shots:  # the few-shot prefix is evaluated once, then reused by every later item
        assert first[1].tokens_evaluated < first[0].tokens_evaluated


def test_generation_does_not_depend_on_what_ran_before(smollm2: Any) -> None:
    prefix = "Q: 2 + 2?\nA: 4\n\nQ: 3 + 5?\nA: 8\n\n"
    req = GenerateRequest("g", prefix + "Q: 7 + 6?\nA:", max_tokens=12, stop=("\n",), prefix=prefix)
    cold = smollm2.generate([req])[0]
    smollm2.generate([GenerateRequest("h", "Tell me a story about", max_tokens=8)])
    warm = smollm2.generate([req])[0]
    again = smollm2.generate([req])[0]
    assert cold.text == warm.text == again.text and cold.output_tokens == warm.output_tokens


def test_lm_eval_encode_pair_moves_trailing_space(smollm2: Any) -> None:
    a = smollm2.encode_pair("Question: 2+2?\nAnswer: ", "4")
    b = smollm2.encode_pair("Question: 2+2?\nAnswer:", " 4")
    assert a == b
    _, cont = b
    assert smollm2.llm.detokenize(cont).decode() == " 4"


def test_greedy_generation_matches_llama_cpp_and_honours_stop_and_limit(
    smollm2: Any, reference_llm: Any
) -> None:
    prompt = "Once upon a time, in a small village, there lived"
    free = smollm2.generate([GenerateRequest("a", prompt, max_tokens=24)])[0]
    again = smollm2.generate([GenerateRequest("a", prompt, max_tokens=24)])[0]
    assert free.error is None and free.text == again.text
    ref = reference_llm.create_completion(prompt, max_tokens=24, temperature=0.0, top_k=1)
    assert free.text == ref["choices"][0]["text"]
    assert 0 < free.output_tokens <= 24 and free.input_tokens > 5
    assert free.ttft_s is not None and 0 < free.ttft_s <= free.latency_s

    limited = smollm2.generate([GenerateRequest("b", prompt, max_tokens=3)])[0]
    assert limited.output_tokens == 3 and limited.finish_reason == "length"
    assert free.text.startswith(limited.text)

    stop = free.text.strip()[:3]
    stopped = smollm2.generate([GenerateRequest("c", prompt, max_tokens=24, stop=(stop,))])[0]
    assert stop not in stopped.text and stopped.finish_reason == "stop"
    assert free.text.startswith(stopped.text)


def test_request_longer_than_context_is_an_item_error_not_a_crash(smollm2_path: str) -> None:
    from bench.backends.llamacpp import LlamaCppBackend

    small = LlamaCppBackend(smollm2_path, model_name="s", n_ctx=64)
    try:
        long = "word " * 1000
        r = small.loglikelihood([LoglikelihoodRequest("x", ((long, " yes"), (long, " no")))])[0]
        assert r.error is not None and "exceeds n_ctx" in r.error
        ok = small.loglikelihood([LoglikelihoodRequest("y", (("Is it?", " yes"), ("Is it?", " no")))])[0]
        assert ok.error is None and len(ok.logliks) == 2
    finally:
        small.close()


def test_rolling_loglikelihood_is_lm_evals_windows_scored_by_llama_cpp(
    smollm2_path: str, reference_llm: Any
) -> None:
    """A text several windows long: the sum must be lm-eval's rolling windows (context_len=1,
    max_seq_len=n_ctx-1) scored from scratch by llama.cpp, the last short window conditioned on as
    much preceding text as fits. (llama.cpp rounds n_ctx=64 up to 256.)"""
    from bench.backends.base import RollingRequest
    from bench.backends.llamacpp import LlamaCppBackend

    utils = pytest.importorskip("lm_eval.utils", reason="needs the lmeval extra")
    small = LlamaCppBackend(smollm2_path, model_name="s", n_ctx=64)
    try:
        text = "The quick brown fox jumps over the lazy dog near the river bank. " * 40
        tokens = small.tokenize(text, bos=False)
        w = small.n_ctx - 1
        assert len(tokens) > 2 * w and len(tokens) % w > 5, (len(tokens), w)
        (got,) = small.loglikelihood_rolling([RollingRequest("r", text)])
        assert got.error is None and got.tokens == len(tokens)
        prefix = reference_llm.token_bos() if reference_llm.token_bos() >= 0 else reference_llm.token_eos()
        windows = [
            utils.make_disjoint_window(w)
            for w in utils.get_rolling_token_windows(
                tokens, prefix_token=prefix, max_seq_len=w, context_len=1
            )
        ]
        ref = sum(_reference_loglik(reference_llm, list(c), list(x))[0] for c, x in windows)
        naive = sum(  # every window on the one token before it, the last one too
            _reference_loglik(reference_llm, [prefix] if i == 0 else [tokens[i - 1]], tokens[i : i + w])[0]
            for i in range(0, len(tokens), w)
        )
        assert abs(naive - ref) > 0.1  # the split matters for this text
        assert got.loglik == pytest.approx(ref, abs=5e-3)
    finally:
        small.close()
