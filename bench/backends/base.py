"""The backend protocol: what every engine (llama.cpp, OpenAI-compatible servers, vLLM, ...) provides.

A response carries the answer AND its measurements, so accuracy and efficiency come from the
same request. Requests for one multiple-choice item are grouped so an engine can evaluate the
shared context once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from bench.errors import BackendError


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """Score each (context, continuation) pair of one item; pairs usually share their context.

    `prefix` is the part of every context that does not depend on the item (description and
    few-shot examples): an engine with a prefix cache evaluates it once for all items."""

    item_id: str
    pairs: tuple[tuple[str, str], ...]
    prefix: str = ""


@dataclass
class LoglikelihoodResponse:
    logliks: list[float]  # sum of log-probabilities of each continuation's tokens
    is_greedy: list[bool]  # every continuation token was the argmax
    continuation_tokens: list[int]
    input_tokens: int  # distinct tokens the item needed (shared context counted once)
    tokens_evaluated: int  # tokens the engine actually ran (less when a prefix was cached)
    latency_s: float
    error: str | None = None


@dataclass(frozen=True)
class GenerateRequest:
    """Greedy by default. With `messages` the backend applies the model's chat template (or the
    server's chat endpoint) and `prompt` is only their plain-text rendering, for the record."""

    item_id: str
    prompt: str
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    temperature: float = 0.0
    messages: tuple[tuple[str, str], ...] | None = None  # (role, content) pairs
    prefix: str = ""  # the item-independent start of `prompt` (few-shot examples), for prefix caching


@dataclass(frozen=True)
class RollingRequest:
    """The log-likelihood of a whole text, conditioned on nothing but a start token."""

    item_id: str
    text: str


@dataclass
class RollingResponse:
    loglik: float
    tokens: int
    tokens_evaluated: int
    latency_s: float
    error: str | None = None


@dataclass
class GenerateResponse:
    text: str
    input_tokens: int | None  # None when the server does not report usage
    output_tokens: int
    ttft_s: float | None
    latency_s: float
    finish_reason: str | None = None
    error: str | None = None


@dataclass
class ModelInfo:
    name: str
    backend: str
    params: int | None = None
    quant: str | None = None
    file_size: int | None = None
    n_ctx: int | None = None
    chat_template: bool = False
    loglikelihood: bool = True  # can score continuations (chat-only APIs cannot)
    device: str = "cpu"
    family: str | None = None
    license: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    name: str

    def info(self) -> ModelInfo: ...

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResponse]: ...

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[GenerateResponse]: ...

    def loglikelihood_rolling(self, reqs: Sequence[RollingRequest]) -> list[RollingResponse]: ...

    def close(self) -> None: ...


def first_stop(text: str, stops: Sequence[str]) -> int | None:
    """Where the earliest stop sequence starts in `text`, or None."""
    hits = [i for s in stops if s and (i := text.find(s)) >= 0]
    return min(hits) if hits else None


def render_chat_template(tokenizer: Any, model_name: str, messages: Sequence[tuple[str, str]]) -> str:
    """The prompt text a Hugging Face tokenizer's chat template makes of the messages, ending with
    the generation prompt (what `LLM.chat` and HFLM's `apply_chat_template` do)."""
    if not getattr(tokenizer, "chat_template", None):
        raise BackendError(f"{model_name} has no chat template; use chat: never")
    text = tokenizer.apply_chat_template(
        [{"role": r, "content": c} for r, c in messages], tokenize=False, add_generation_prompt=True
    )
    return str(text)


def error_text(e: BaseException) -> str:
    """How a failed request is recorded: the exception's type and message, one line."""
    return f"{type(e).__name__}: {e}"


def failed_loglikelihood(error: str, latency_s: float = 0.0) -> LoglikelihoodResponse:
    return LoglikelihoodResponse([], [], [], 0, 0, latency_s, error=error)


def failed_generation(error: str, latency_s: float = 0.0) -> GenerateResponse:
    return GenerateResponse("", 0, 0, None, latency_s, error=error)


def encode_pair(
    tokenize: Callable[[str], list[int]], context: str, continuation: str, start_token: int
) -> tuple[list[int], list[int]]:
    """lm-eval's `_encode_pair`: trailing spaces of the context move to the continuation, and the
    continuation's tokens are those of context+continuation after the context's own tokens, so a
    token spanning the boundary is scored as the model would see it. A context that encodes to
    nothing becomes `start_token` (BOS, else EOS), as lm-eval's prefix token: the first
    continuation token needs something to be conditioned on."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tokenize(context + continuation)
    ctx = tokenize(context)
    cont = whole[len(ctx) :]
    if not ctx:
        ctx = [start_token]
    return ctx, cont


def rolling_windows(
    tokens: Sequence[int], prefix_token: int, max_len: int
) -> list[tuple[list[int], list[int]]]:
    """lm-eval's `get_rolling_token_windows(context_len=1)` + `make_disjoint_window`, as (context,
    continuation) pairs: every token is predicted exactly once; the first window is conditioned on
    `prefix_token`, every full window on the one token before it, and the last, shorter window on as
    much preceding text as fits. Each pair has at most max_len + 1 tokens in all (the model sees
    max_len of them as input). Every backend scores whole texts through this one function, so
    their perplexities equal lm-eval's window for window."""
    if max_len < 1:
        raise BackendError(f"a rolling window needs max_len >= 1, got {max_len}")
    toks = list(tokens)
    if not toks:
        return []
    first = min(max_len, len(toks))
    out = [([prefix_token], toks[:first])]
    predicted = first
    while predicted < len(toks):
        n = min(len(toks) - predicted, max_len)
        end = predicted + n
        ctx = toks[end - max_len - 1 : end - 1]  # end > max_len here: the first window took max_len
        out.append((ctx[: len(ctx) - (n - 1)], toks[end - n : end]))
        predicted += n
    return out
