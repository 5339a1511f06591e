"""The OpenAI protocol as bench speaks it, with no client state: server presets, retry timing,
the streamed request body, and reading prompt log-probabilities out of a completions response.
Shared by the openai backend and `bench load` (bench.load.client)."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench.backends.base import GenerateRequest


@dataclass(frozen=True)
class Preset:
    base_url: str | None
    api_key_env: str | None
    endpoint: str  # auto | completions | chat
    base_url_env: str | None = None
    extra_body: tuple[tuple[str, Any], ...] = ()  # server-specific defaults bench needs


# llama.cpp's servers default to a repeat penalty of 1.1, which makes "temperature 0" non-greedy.
GREEDY_LLAMACPP = (("repeat_penalty", 1.0),)


# The servers teams run; every one speaks the OpenAI protocol.
PRESETS: dict[str, Preset] = {
    "openai": Preset("https://api.openai.com/v1", "OPENAI_API_KEY", "chat"),
    "vllm": Preset("http://127.0.0.1:8000/v1", "VLLM_API_KEY", "auto"),
    "llamacpp-server": Preset(
        "http://127.0.0.1:8080/v1", "LLAMA_API_KEY", "auto", extra_body=GREEDY_LLAMACPP
    ),
    "ollama": Preset("http://127.0.0.1:11434/v1", None, "chat"),
    "tgi": Preset("http://127.0.0.1:8080/v1", "HF_TOKEN", "chat"),
    "nim": Preset("https://integrate.api.nvidia.com/v1", "NVIDIA_API_KEY", "chat"),
    "github-models": Preset("https://models.github.ai/inference", "GITHUB_TOKEN", "chat"),
    "azure-ai": Preset(None, "AZURE_AI_API_KEY", "chat", base_url_env="AZURE_AI_ENDPOINT"),
}

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def parse_reset(value: str | None) -> float | None:
    """Seconds from a rate-limit reset header: '1.5', '20ms', '6m0s', '1h2m3.5s'."""
    if not value:
        return None
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    total, matched = 0.0, False
    for num, unit in re.findall(r"([\d.]+)(ms|h|m|s)", value):
        matched = True
        total += float(num) * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]
    return total if matched else None


def backoff_s(
    attempt: int, *, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None
) -> float:
    """Exponential backoff with full jitter around the exponential step (0.5x-1.5x)."""
    r = rng or random
    return min(cap, base * 2**attempt) * (0.5 + r.random())


def choice_text(choice: dict[str, Any]) -> str | None:
    """The text a streamed choice carries: a chat delta's content or a completion's text."""
    return (choice.get("delta") or {}).get("content") if "delta" in choice else choice.get("text")


def stream_request(model: str, req: GenerateRequest, *, chat: bool) -> tuple[str, dict[str, Any]]:
    """(path, body) of the streamed generation bench sends (`bench load` sends the same)."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": req.max_tokens,
        "temperature": req.temperature,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if req.stop:
        body["stop"] = list(req.stop)[:4]  # the OpenAI API takes at most four; the rest cut locally
    if chat or req.messages is not None:
        msgs = req.messages if req.messages is not None else (("user", req.prompt),)
        body["messages"] = [{"role": r, "content": c} for r, c in msgs]
        return "/chat/completions", body
    body["prompt"] = req.prompt
    return "/completions", body


PROBE = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12"


def probe_alignment(data: dict[str, Any]) -> str:
    """'' when echoed prompt log-probabilities are present and aligned, else why not."""
    try:
        lp = data["choices"][0]["logprobs"]
        tokens, tops = lp["tokens"], lp["top_logprobs"]
        offsets = lp["text_offset"]
    except (KeyError, IndexError, TypeError):
        return "the server returns no prompt log-probabilities"
    rows = [i for i, o in enumerate(offsets) if o < len(PROBE) and isinstance(tops[i], dict) and tops[i]]
    if len(rows) < 4:
        return "the server returns no prompt log-probabilities"
    aligned = shifted = 0
    for i in rows:
        best = max(tops[i].items(), key=lambda kv: kv[1])[0]
        aligned += best == tokens[i]
        shifted += i + 1 < len(tokens) and best == tokens[i + 1]
    if shifted > aligned:
        return "the server's prompt log-probabilities are shifted by one token (a server bug)"
    return ""


def continuation_logprob(data: dict[str, Any], start: int, end: int) -> tuple[float, bool, int, int] | None:
    """Sum the echoed log-probabilities of the prompt tokens whose text starts within
    [start, end) characters. Returns None when the server gave no prompt log-probabilities
    (some servers return only the generated token's)."""
    try:
        lp = data["choices"][0]["logprobs"]
        offsets = lp["text_offset"]
        token_lps = lp["token_logprobs"]
        tops = lp.get("top_logprobs") or [None] * len(token_lps)
        tokens = lp["tokens"]
    except (KeyError, IndexError, TypeError):
        return None
    prompt_tokens = [i for i, o in enumerate(offsets) if o < end]
    picked = [i for i in prompt_tokens if offsets[i] >= start]
    if not picked or len(prompt_tokens) < 2 or any(token_lps[i] is None for i in picked):
        return None
    ll = float(sum(token_lps[i] for i in picked))
    greedy = True
    for i in picked:
        top = tops[i]
        if isinstance(top, dict) and top:
            best = max(top.items(), key=lambda kv: kv[1])[0]
            greedy = greedy and best == tokens[i]
    return ll, greedy, len(picked), len(prompt_tokens)


def sse(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            yield json.loads(payload)
        except ValueError:
            continue
