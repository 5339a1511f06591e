"""vLLM's outputs into bench's responses: pure functions, unit-tested with structures shaped like
vLLM's (tests/unit/test_vllm_conversions.py), so they are checked where vLLM is not installed. The
backend (bench/backends/vllm.py) moves data between these and the engine."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from bench.backends.base import GenerateRequest, encode_pair, first_stop
from bench.errors import BackendError

__all__ = [
    "SCORING_KWARGS",
    "chunks",
    "continuation_logprob",
    "encode_pairs",
    "request_timing",
    "run_isolated",
    "sampling_kwargs",
    "tokens_prompt",
    "truncate_at_stop",
]

# Scoring: one generated token (vLLM needs at least one), greedy, and the log-probability of every
# prompt token. prompt_logprobs=1 rather than 0: early vLLM V1 releases treated 0 as "off", and 1
# also returns the top-1 token, which gives is_greedy even where a Logprob carries no rank.
SCORING_KWARGS: dict[str, Any] = {
    "max_tokens": 1,
    "temperature": 0.0,
    "prompt_logprobs": 1,
    "detokenize": False,
}

Tokenize = Callable[[str], list[int]]
Prompt = TypeVar("Prompt")
Output = TypeVar("Output")


# ---------------------------------------------------------------------------- pure conversions


def encode_pairs(
    tokenize: Tokenize, pairs: Sequence[tuple[str, str]], start_token: int
) -> list[tuple[list[int], list[int]]]:
    return [encode_pair(tokenize, c, x, start_token) for c, x in pairs]


def _logprob_value(entry: Any) -> float:
    """vLLM's `Logprob.logprob`; releases before 0.4 stored a bare float."""
    return float(getattr(entry, "logprob", entry))


def continuation_logprob(
    prompt_logprobs: Sequence[Mapping[int, Any] | None], ctx_len: int, cont_ids: Sequence[int]
) -> tuple[float, bool]:
    """Sum of the continuation tokens' log-probabilities and whether each was the argmax.

    `prompt_logprobs` is `RequestOutput.prompt_logprobs` for the prompt context+continuation: entry
    i holds log p(token i | tokens < i) (entry 0 is None). vLLM always includes the actual prompt
    token, with its rank in the whole vocabulary; a missing token means the request was not made
    with prompt_logprobs and is an error, never a silent zero."""
    if ctx_len < 1:
        raise BackendError("the context must hold at least one token (a start token for an empty one)")
    end = ctx_len + len(cont_ids)
    if len(prompt_logprobs) < end:
        raise BackendError(
            f"vLLM returned {len(prompt_logprobs)} prompt log-probabilities for {end} prompt tokens"
        )
    total = 0.0
    greedy = True
    for j, tok in enumerate(cont_ids):
        pos = ctx_len + j
        entries = prompt_logprobs[pos]
        if not entries or tok not in entries:
            have = sorted(entries)[:5] if entries else []
            raise BackendError(
                f"vLLM returned no log-probability for prompt token {tok} at position {pos} "
                f"(entries for {have}); request prompt_logprobs >= 0"
            )
        entry = entries[tok]
        lp = _logprob_value(entry)
        total += lp
        rank = getattr(entry, "rank", None)
        if rank is not None:
            greedy = greedy and int(rank) == 1
        else:  # no rank: compare with the top-k entries vLLM returned alongside
            greedy = greedy and all(lp >= _logprob_value(e) for e in entries.values())
    return total, greedy


def _positive(x: Any) -> float | None:
    """A timestamp or duration that was actually set (vLLM leaves unset ones at 0.0 or None)."""
    if isinstance(x, int | float) and x > 0:
        return float(x)
    return None


def request_timing(metrics: Any) -> tuple[float | None, float | None]:
    """(TTFT, latency) in seconds from `RequestOutput.metrics`, across vLLM versions:

    - V1 (`RequestStateStats`): `first_token_latency` is TTFT against the wall-clock
      `arrival_time`; `first_token_ts`/`last_token_ts` are engine-core monotonic stamps, so
      latency = TTFT + (last_token_ts - first_token_ts), never mixing the two clocks;
    - early V1 and V0 (`RequestMetrics`): wall-clock `arrival_time`, `first_token_time`,
      `last_token_time` and (V0) `finished_time`.

    Missing or unset fields give None rather than a wrong number."""
    if metrics is None:
        return None, None
    ttft = _positive(getattr(metrics, "first_token_latency", None))
    if ttft is not None:
        first = _positive(getattr(metrics, "first_token_ts", None))
        last = _positive(getattr(metrics, "last_token_ts", None))
        decode = last - first if first is not None and last is not None and last >= first else 0.0
        return ttft, ttft + decode
    arrival = _positive(getattr(metrics, "arrival_time", None))
    if arrival is None:
        return None, None
    first_t = _positive(getattr(metrics, "first_token_time", None))
    end = _positive(getattr(metrics, "finished_time", None)) or _positive(
        getattr(metrics, "last_token_time", None)
    )
    ttft = first_t - arrival if first_t is not None and first_t >= arrival else None
    latency = end - arrival if end is not None and end >= arrival else None
    if latency is not None and ttft is not None:
        latency = max(latency, ttft)
    return ttft, latency


def truncate_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut the text at the earliest stop string. vLLM already stops there and drops the stop
    string; this keeps the contract when an engine version or setting leaves it in."""
    cut = first_stop(text, stops)
    return (text, False) if cut is None else (text[:cut], True)


def sampling_kwargs(req: GenerateRequest, seed: int | None = None) -> dict[str, Any]:
    """vLLM `SamplingParams` arguments for a generation request: temperature 0 is greedy in vLLM;
    a seed only matters (and is only passed) when sampling."""
    kw: dict[str, Any] = {"temperature": float(req.temperature), "max_tokens": int(req.max_tokens)}
    stops = [s for s in req.stop if s]
    if stops:
        kw["stop"] = stops
    if req.temperature > 0 and seed is not None:
        kw["seed"] = seed
    return kw


def chunks(n: int, size: int) -> list[range]:
    """Index ranges of at most `size` (at least 1) covering range(n), in order."""
    size = max(1, size)
    return [range(i, min(n, i + size)) for i in range(0, n, size)]


def run_isolated(
    submit: Callable[[list[Prompt]], Sequence[Output]], groups: Sequence[Sequence[Prompt]]
) -> list[list[Output] | Exception]:
    """Submit every group's prompts in one call and give each group its outputs back, in order.

    vLLM validates a whole `generate` call up front, so one bad prompt (too long, say) fails all of
    them: when the batched call raises, each group is retried alone and only the groups that fail
    again get the error."""
    flat = [p for g in groups for p in g]
    if not flat:
        return [[] for _ in groups]
    try:
        outs = list(submit(flat))
        if len(outs) != len(flat):
            raise BackendError(f"vLLM returned {len(outs)} outputs for {len(flat)} prompts")
    except Exception as e:
        if len(groups) == 1:
            return [e]
        return [run_isolated(submit, [g])[0] for g in groups]
    result: list[list[Output] | Exception] = []
    i = 0
    for g in groups:
        result.append(outs[i : i + len(g)])
        i += len(g)
    return result


def tokens_prompt(ids: Sequence[int]) -> dict[str, Any]:
    """What `vllm.inputs.TokensPrompt(prompt_token_ids=ids)` builds: it is a TypedDict, so a dict."""
    return {"prompt_token_ids": list(ids)}
