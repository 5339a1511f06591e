"""One streamed request to an OpenAI-compatible server, timed by the load generator.

Every timestamp is `time.perf_counter()` taken in the event loop the moment a piece arrives
(CLOCK_MONOTONIC on Linux, shared by all processes of the machine, so a local server can stamp
its chunks on the same clock and bench.load.overhead measures the error). The body is the one
bench's openai backend sends (same endpoint choice, extra body, stop sequences cut locally), so
the answers scored here are the ones a `bench run` would score.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.backends.base import GenerateRequest, first_stop
from bench.backends.openai import choice_text, stream_request


@dataclass(frozen=True)
class Target:
    """Where and how to send: taken from a connected openai backend (`from_backend`)."""

    base_url: str
    model: str
    chat: bool
    api_key: str | None = None
    extra_body: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def from_backend(cls, b: Any) -> Target:
        return cls(
            base_url=b.base_url,
            model=b.model,
            chat=b.endpoint == "chat" or not b.has_completions,
            api_key=b._key,
            extra_body=tuple(b.extra_body.items()),
        )

    def client(self, max_in_flight: int, timeout_s: float) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
        return httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=httpx.Timeout(timeout_s), limits=limits
        )

    def body(self, req: GenerateRequest) -> tuple[str, dict[str, Any]]:
        path, body = stream_request(self.model, req, chat=self.chat)
        return path, {**dict(self.extra_body), **body}


@dataclass
class Outcome:
    """One request as the generator saw it; times in seconds on the perf_counter clock."""

    seq: int
    item_id: str
    scheduled: float  # when the profile wanted it sent
    start: float = float("nan")  # when it was sent
    first: float | None = None  # first content piece
    end: float = float("nan")
    chunk_times: list[float] = field(default_factory=list)  # every content piece's arrival
    # stamps a test server (bench.load.zero_server) puts in its events, on the same clock
    server_times: list[float] = field(default_factory=list)  # each content piece's send
    server_start: float | None = None  # the server had read the request
    server_end: float | None = None  # its last stamped event
    text: str = ""
    output_tokens: int | None = None
    input_tokens: int | None = None
    finish_reason: str | None = None
    error: str | None = None
    timed_out: bool = False


async def stream_one(client: httpx.AsyncClient, target: Target, req: GenerateRequest, out: Outcome) -> None:
    """Send `req`, filling `out` as pieces arrive; never raises for a failed request."""
    path, body = target.body(req)
    clock = time.perf_counter
    usage: dict[str, Any] | None = None
    out.start = clock()  # until the request is on the wire (below)

    async def trace(event: str, info: dict[str, Any]) -> None:
        # httpcore's trace hook: "sent" is when the request starts going out on its connection, not
        # before httpx has built it and taken a connection (1-2.5 ms of Python on a busy 2-core
        # machine, measured with zero_server); still before the server can have read it
        if event == "http11.send_request_headers.started":
            out.start = clock()

    last: float | None = None  # the stream's last event ([DONE]): the request's end
    whole = False
    try:
        async with client.stream("POST", path, json=body, extensions={"trace": trace}) as r:
            if r.status_code >= 400:
                detail = (await r.aread()).decode("utf-8", errors="replace")[:300]
                out.error = f"HTTP {r.status_code} from {path}: {detail}"
                return
            async for line in r.aiter_lines():
                if not line.startswith("data:"):
                    continue
                now = last = clock()
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                try:
                    data = json.loads(payload)
                except ValueError:
                    continue
                usage = data.get("usage") or usage
                if "t" in data:
                    out.server_end = float(data["t"])
                    out.server_start = float(data.get("t0", out.server_end))
                for choice in data.get("choices") or []:
                    piece = choice_text(choice)
                    if piece:
                        if out.first is None:
                            out.first = now
                        out.chunk_times.append(now)
                        if "t" in data:
                            out.server_times.append(float(data["t"]))
                        out.text += piece
                    out.finish_reason = choice.get("finish_reason") or out.finish_reason
            whole = True
    except httpx.TimeoutException:
        out.timed_out, out.error = True, "timed out (no data within the timeout)"
        return
    except httpx.HTTPError as e:
        out.error = f"{type(e).__name__}: {e}"
        return
    finally:
        # not the close of the connection after it, which a server may delay
        out.end = last if whole and last is not None else clock()
    if out.finish_reason is None:
        out.error = "the stream ended without a finish reason"
        return
    out.output_tokens = int(usage["completion_tokens"]) if usage else len(out.chunk_times)
    out.input_tokens = int(usage["prompt_tokens"]) if usage else None
    cut = first_stop(out.text, req.stop)
    if cut is not None:
        out.text, out.finish_reason = out.text[:cut], "stop"
