"""The openai backend's HTTP behaviour, at the transport boundary (httpx.MockTransport): payloads,
retries and backoff, rate-limit headers, timeouts, key scrubbing, prompt log-prob mapping, SSE."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from bench.backends import openai as oa
from bench.backends.base import GenerateRequest, LoglikelihoodRequest
from bench.errors import BackendError

KEY = "sk-test-NOT-A-REAL-KEY-4242"


def _echo(
    prompt: str, lps: list[float | None], tokens: list[str], tops: list[Any] | None = None
) -> dict[str, Any]:
    offsets, pos = [], 0
    for t in tokens:
        offsets.append(pos)
        pos += len(t)
    assert "".join(tokens).startswith(prompt[: len("".join(tokens))])
    return {
        "choices": [
            {
                "text": prompt,
                "logprobs": {
                    "tokens": tokens,
                    "token_logprobs": lps,
                    "text_offset": offsets,
                    "top_logprobs": tops
                    or [None] + [{t: lp} for t, lp in zip(tokens[1:], lps[1:], strict=True)],
                },
            }
        ]
    }


COUNTING = [t for i in range(1, 13) for t in ([f"{i}", ","] if i == 1 else [f" {i}", ","])][:-1]


def _probe_ok() -> dict[str, Any]:
    return _echo(oa.PROBE, [None] + [-0.1] * (len(COUNTING) - 1), COUNTING)


class Server:
    """A scripted OpenAI-compatible server; `script` maps a path to a list of responses to give in turn."""

    def __init__(self, script: dict[str, list[Any]] | None = None) -> None:
        self.script = script or {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/v1")
        if path == "/models":
            return httpx.Response(200, json={"data": [{"id": "m"}]})
        body = json.loads(request.content or b"{}")
        if path == "/completions" and body.get("prompt") == oa.PROBE:
            return httpx.Response(200, json=_probe_ok())
        queue = self.script.get(path)
        if not queue:
            return httpx.Response(404, json={"error": {"message": "no such route"}})
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        if callable(item):
            return item(request)
        return item


def _backend(server: Server, **kw: Any) -> oa.OpenAIBackend:
    args = {
        "model_name": "api",
        "model": "m",
        "base_url": "http://test/v1",
        "api_key": KEY,
        "transport": httpx.MockTransport(server),
        "max_retries": 3,
        "timeout_s": 5.0,
        **kw,
    }
    return oa.OpenAIBackend(**args)


def test_loglikelihood_payload_and_continuation_mapping() -> None:
    ctx, cont = "The sky is", " blue"
    resp = _echo(
        ctx + cont,
        [None, -2.0, -0.5, -1.25],
        ["The", " sky", " is", " blue"],
        [None, {" sky": -2.0}, {" is": -0.5}, {" green": -0.9, " blue": -1.25}],
    )
    server = Server({"/completions": [httpx.Response(200, json=resp)]})
    b = _backend(server)
    assert b.info().loglikelihood and b.prompt_logprobs
    out = b.loglikelihood([LoglikelihoodRequest("x", ((ctx, cont),))])[0]
    assert (
        out.error is None
        and out.logliks == [-1.25]
        and out.is_greedy == [False]
        and out.continuation_tokens == [1]
    )
    body = json.loads(server.requests[-1].content)
    assert (
        body["echo"] is True
        and body["logprobs"] == 1
        and body["prompt"] == ctx + cont
        and body["max_tokens"] == 1
    )
    assert server.requests[-1].headers["authorization"] == f"Bearer {KEY}"


def test_prompt_logprob_probe_detects_a_shifted_server_and_a_missing_route() -> None:
    shifted = _echo(
        oa.PROBE,
        [None] + [-9.0] * (len(COUNTING) - 1),
        COUNTING,
        [None]
        + [
            {COUNTING[i + 1] if i + 1 < len(COUNTING) else ",": -0.1, COUNTING[i]: -9.0}
            for i in range(1, len(COUNTING))
        ],
    )
    assert "shifted by one token" in oa.probe_alignment(shifted)
    assert oa.probe_alignment(_probe_ok()) == ""
    assert "no prompt log-probabilities" in oa.probe_alignment({"choices": [{"text": "x"}]})

    class NoCompletions(Server):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/completions") and "chat" not in request.url.path:
                self.requests.append(request)
                return httpx.Response(404, json={"error": "not found"})
            return super().__call__(request)

    b = _backend(NoCompletions())
    info = b.info()
    assert not info.loglikelihood and info.chat_template and "letter form" in info.extra["note"]


def test_retries_on_429_with_retry_after_then_succeeds() -> None:
    ok = _echo("a b", [None, -1.0], ["a", " b"])
    server = Server(
        {
            "/completions": [
                httpx.Response(429, headers={"retry-after": "0.2"}, json={"error": {"message": "slow down"}}),
                httpx.Response(503, json={"error": "busy"}),
                httpx.Response(200, json=ok),
            ]
        }
    )
    b = _backend(server)
    t0 = time.perf_counter()
    out = b.loglikelihood([LoglikelihoodRequest("x", (("a", " b"),))])[0]
    assert out.error is None and out.logliks == [-1.0]
    assert time.perf_counter() - t0 >= 0.2  # Retry-After honoured
    assert sum(r.url.path.endswith("/completions") for r in server.requests) == 1 + 3  # probe + 3 tries


def test_gives_up_after_max_retries_and_scrubs_the_key() -> None:
    leak = httpx.Response(500, json={"error": {"message": f"internal error for key {KEY}"}})
    server = Server({"/completions": [leak]})
    b = _backend(server, max_retries=1)
    out = b.loglikelihood([LoglikelihoodRequest("x", (("a", " b"),))])[0]
    assert out.error is not None and "gave up after 2 attempts" in out.error and "HTTP 500" in out.error
    assert KEY not in out.error and "***" in out.error
    bad = Server({"/completions": [httpx.Response(400, json={"error": {"message": "bad request"}})]})
    out = _backend(bad).loglikelihood([LoglikelihoodRequest("x", (("a", " b"),))])[0]
    assert "HTTP 400" in (out.error or "") and "attempts" not in (out.error or "")  # 4xx: no retry


def test_timeouts_are_retried_then_recorded() -> None:
    server = Server({"/completions": [httpx.ReadTimeout("slow")]})
    out = _backend(server, max_retries=2).loglikelihood([LoglikelihoodRequest("x", (("a", " b"),))])[0]
    assert out.error is not None and "timed out after 5 s" in out.error and "3 attempts" in out.error


def test_rate_limit_headers_pause_the_next_request() -> None:
    ok = _echo("a b", [None, -1.0], ["a", " b"])
    hdr = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "300ms"}
    server = Server(
        {"/completions": [httpx.Response(200, json=ok, headers=hdr), httpx.Response(200, json=ok)]}
    )
    b = _backend(server, max_concurrency=1)
    b.loglikelihood([LoglikelihoodRequest("x", (("a", " b"),))])
    t0 = time.perf_counter()
    b.loglikelihood([LoglikelihoodRequest("y", (("a", " b"),))])
    assert time.perf_counter() - t0 >= 0.28


def _sse(chunks: list[dict[str, Any]]) -> httpx.Response:
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    return httpx.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})


def test_chat_streaming_ttft_usage_and_local_stop() -> None:
    chunks = [
        {"choices": [{"delta": {"role": "assistant"}}]},
        {"choices": [{"delta": {"content": "The answer"}}]},
        {"choices": [{"delta": {"content": " is B.\nMore"}, "finish_reason": "length"}]},
        {"choices": [], "usage": {"prompt_tokens": 21, "completion_tokens": 7}},
    ]
    server = Server({"/chat/completions": [_sse(chunks)]})
    b = _backend(server, endpoint="chat")
    out = b.generate(
        [
            GenerateRequest(
                "g",
                "Q?",
                max_tokens=7,
                stop=("\n", "Z1", "Z2", "Z3", "Z4"),
                messages=(("system", "be brief"), ("user", "Q?")),
            )
        ]
    )[0]
    assert out.error is None and out.text == "The answer is B." and out.finish_reason == "stop"
    assert (out.input_tokens, out.output_tokens) == (21, 7)
    assert out.ttft_s is not None and 0 < out.ttft_s <= out.latency_s
    body = json.loads(server.requests[-1].content)
    assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Q?"}]
    assert (
        body["stream"] is True
        and body["stream_options"] == {"include_usage": True}
        and len(body["stop"]) == 4
    )


def test_completions_endpoint_streams_text() -> None:
    chunks = [{"choices": [{"text": " 42"}]}, {"choices": [{"text": "\n", "finish_reason": "stop"}]}]
    server = Server({"/completions": [_sse(chunks)]})
    out = _backend(server).generate([GenerateRequest("g", "Q: 6*7?\nA:", max_tokens=5, stop=("\n",))])[0]
    assert out.text == " 42" and out.output_tokens == 2  # no usage: counted from chunks
    assert json.loads(server.requests[-1].content)["prompt"] == "Q: 6*7?\nA:"


def test_unreachable_server_fails_at_load_with_one_line() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(BackendError, match=r"cannot reach http://test/v1: ConnectError"):
        oa.OpenAIBackend(
            model_name="api",
            model="m",
            base_url="http://test/v1",
            api_key=KEY,
            transport=httpx.MockTransport(refuse),
        )


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1.5", 1.5), ("20ms", 0.02), ("6m0s", 360.0), ("1h2m3.5s", 3723.5), ("", None), ("soon", None)],
)
def test_parse_reset(value: str, seconds: float | None) -> None:
    assert oa.parse_reset(value) == seconds


def test_backoff_grows_and_is_capped() -> None:
    import random

    rng = random.Random(0)
    waits = [oa.backoff_s(a, rng=rng) for a in range(8)]
    assert waits[0] < 1 and waits[3] > 1 and max(waits) <= 45


def test_a_stream_cut_short_is_retried() -> None:
    cut = _sse([{"choices": [{"text": " A"}]}])  # no finish_reason: interrupted
    full = _sse(
        [{"choices": [{"text": " A. The end"}]}, {"choices": [{"text": "", "finish_reason": "stop"}]}]
    )
    server = Server({"/completions": [cut, full]})
    out = _backend(server).generate([GenerateRequest("g", "Q", max_tokens=5)])[0]
    assert out.error is None and out.text == " A. The end"
    server = Server({"/completions": [cut]})
    out = _backend(server, max_retries=1).generate([GenerateRequest("g", "Q", max_tokens=5)])[0]
    assert out.error is not None and "without a finish reason" in out.error
