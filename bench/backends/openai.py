"""Any OpenAI-compatible server: vLLM serve, llama.cpp's server, Ollama, TGI, NVIDIA NIM, hosted APIs.

- `/v1/completions` with `echo` + `logprobs` scores multiple-choice continuations where the server
  returns prompt log-probabilities (vLLM, llama.cpp); this is probed once at start, and when it is
  missing `info().loglikelihood` is False, so multiple choice falls back to the letter form.
- Generation streams (SSE) for time to first token; token counts come from the server's `usage`.
- Requests run on a bounded thread pool (`max_concurrency` in flight), with retries and jittered
  exponential backoff on 429, 5xx, timeouts and connection errors, `Retry-After` and the
  `x-ratelimit-*` headers respected, and a per-request timeout.
- The API key is read from the environment variable the suite names and is scrubbed from every
  error message; it never reaches results, logs or reports.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx

from bench.backends.base import (
    GenerateRequest,
    GenerateResponse,
    LoglikelihoodRequest,
    LoglikelihoodResponse,
    ModelInfo,
    RollingRequest,
    RollingResponse,
    failed_generation,
    first_stop,
)
from bench.backends.openai_protocol import (
    GREEDY_LLAMACPP,
    PRESETS,
    PROBE,
    RETRY_STATUS,
    Preset,
    backoff_s,
    choice_text,
    continuation_logprob,
    parse_reset,
    probe_alignment,
    sse,
    stream_request,
)
from bench.errors import BackendError, ConfigError

# the protocol helpers are part of this module's public face (tests and bench.load import them here)
__all__ = [
    "GREEDY_LLAMACPP",
    "PRESETS",
    "PROBE",
    "RETRY_STATUS",
    "OpenAIBackend",
    "Preset",
    "backoff_s",
    "choice_text",
    "continuation_logprob",
    "parse_reset",
    "probe_alignment",
    "stream_request",
]

T = TypeVar("T")


class _Retryable(Exception):
    def __init__(self, message: str, wait_s: float | None = None) -> None:
        super().__init__(message)
        self.wait_s = wait_s


class OpenAIBackend:
    name = "openai"

    def __init__(
        self,
        *,
        model_name: str,
        model: str,
        base_url: str,
        api_key: str | None,
        endpoint: str = "auto",
        max_concurrency: int = 4,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        params: int | None = None,
        extra_body: dict[str, Any] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.model_name = model_name
        self.model = model
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self.concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.params = params
        self.extra_body = dict(extra_body or {})
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=httpx.Timeout(timeout_s), transport=transport
        )
        self._pause_until = 0.0
        self._lock = threading.Lock()
        self.note = ""
        self._check_reachable()
        self.endpoint = endpoint
        self.has_completions = endpoint in ("auto", "completions")
        self.prompt_logprobs = False
        if self.has_completions:
            self.prompt_logprobs = self._probe_prompt_logprobs(required=endpoint == "completions")

    @classmethod
    def from_spec(cls, spec: Any, seed: int = 0) -> OpenAIBackend:
        preset = PRESETS.get(spec.preset) if spec.preset else None
        base_url = spec.base_url
        url_env = spec.base_url_env or (preset.base_url_env if preset else None)
        if base_url is None and url_env:
            base_url = os.environ.get(url_env)
            if not base_url:
                raise ConfigError(
                    f"model {spec.name!r}: environment variable {url_env} (the server URL) is not set"
                )
        base_url = base_url or (preset.base_url if preset else None)
        if not base_url:
            raise ConfigError(f"model {spec.name!r}: needs base_url, base_url_env or a preset")
        key_env = spec.api_key_env or (preset.api_key_env if preset else None)
        key = os.environ.get(key_env) if key_env else None
        if spec.api_key_env and not key:
            raise ConfigError(
                f"model {spec.name!r}: environment variable {spec.api_key_env} (the API key) is not set"
            )
        endpoint = spec.endpoint if spec.endpoint != "auto" or preset is None else preset.endpoint
        return cls(
            model_name=spec.name,
            model=spec.model,
            base_url=base_url,
            api_key=key,
            endpoint=endpoint,
            max_concurrency=spec.max_concurrency,
            timeout_s=spec.timeout_s,
            max_retries=spec.max_retries,
            params=spec.params,
            extra_body={**dict(preset.extra_body if preset else ()), **spec.extra_body},
        )

    # ------------------------------------------------------------------ plumbing

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _wait_for_rate_limit(self) -> None:
        with self._lock:
            delay = self._pause_until - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def _note_rate_limit(self, headers: httpx.Headers) -> None:
        """When the server says no requests are left in this window, pause everyone until it resets."""
        for kind in ("requests", "tokens"):
            remaining = headers.get(f"x-ratelimit-remaining-{kind}")
            if remaining is not None and remaining.strip() in ("0", "0.0"):
                reset = parse_reset(headers.get(f"x-ratelimit-reset-{kind}")) or 1.0
                with self._lock:
                    self._pause_until = max(self._pause_until, time.monotonic() + reset)

    def _with_retries(self, call: Callable[[], T]) -> T:
        attempt = 0
        while True:
            self._wait_for_rate_limit()
            try:
                return call()
            except _Retryable as e:
                if attempt >= self.max_retries:
                    raise BackendError(f"{e} (gave up after {attempt + 1} attempts)") from None
                time.sleep(e.wait_s if e.wait_s is not None else backoff_s(attempt))
                attempt += 1

    def _raise_for(self, r: httpx.Response) -> None:
        if r.status_code < 400:
            self._note_rate_limit(r.headers)
            return
        try:
            body = r.read().decode("utf-8", errors="replace")
        except httpx.HTTPError:
            body = ""
        try:
            detail = json.loads(body).get("error", body)
            detail = detail.get("message", detail) if isinstance(detail, dict) else detail
        except (ValueError, AttributeError):
            detail = body
        # scrub before cutting: a key cut in two would leave its first characters behind
        msg = f"HTTP {r.status_code} from {r.request.url.path}: {self._scrub(str(detail))[:300]}"
        if r.status_code in RETRY_STATUS:
            retry_after = parse_reset(r.headers.get("retry-after"))
            if retry_after is None and r.status_code == 429:
                retry_after = parse_reset(r.headers.get("x-ratelimit-reset-requests"))
            raise _Retryable(msg, retry_after)
        raise BackendError(msg)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            try:
                r = self._client.post(path, json={**self.extra_body, **body})
            except httpx.TimeoutException:
                raise _Retryable(f"timed out after {self.timeout_s:g} s") from None
            except httpx.TransportError as e:
                raise _Retryable(
                    self._scrub(f"cannot reach {self.base_url}: {type(e).__name__}: {e}")
                ) from None
            self._raise_for(r)
            data: dict[str, Any] = r.json()
            return data

        return self._with_retries(call)

    def _map(self, fn: Callable[[Any], T], reqs: Sequence[Any]) -> list[T]:
        if self.concurrency <= 1 or len(reqs) <= 1:
            return [fn(r) for r in reqs]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(reqs))) as pool:
            return list(pool.map(fn, reqs))

    def _check_reachable(self) -> None:
        try:
            r = self._client.get("/models", timeout=min(self.timeout_s, 15.0))
        except httpx.HTTPError as e:
            raise BackendError(
                self._scrub(f"{self.model_name}: cannot reach {self.base_url}: {type(e).__name__}: {e}")
            ) from None
        if r.status_code in (401, 403):
            raise BackendError(
                f"{self.model_name}: {self.base_url} refused the API key (HTTP {r.status_code})"
            )

    def _probe_prompt_logprobs(self, *, required: bool) -> bool:
        """Does /v1/completions echo usable prompt log-probabilities? Checked on a counting prompt that
        any language model predicts: row i must describe token i. Some servers shift the rows by one
        (llama-cpp-python's server does for models without a BOS token), which would score every
        choice wrongly: then log-likelihoods are off and multiple choice uses the letter form."""
        why = ""
        try:
            data = self._post(
                "/completions",
                {
                    "model": self.model,
                    "prompt": PROBE,
                    "max_tokens": 1,
                    "echo": True,
                    "logprobs": 1,
                    "temperature": 0,
                },
            )
            why = probe_alignment(data)
        except BackendError as e:
            why = f"no usable /v1/completions ({e})"
            if "HTTP 404" in str(e):
                self.has_completions = False
        if why and required:
            raise BackendError(f"{self.model_name}: {why}")
        if why:
            self.note = f"{why}; multiple choice falls back to the letter form"
        return not why

    # ------------------------------------------------------------------ protocol

    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.model_name,
            backend=self.name,
            params=self.params,
            device="remote",
            chat_template=self.endpoint == "chat" or not self.has_completions,
            loglikelihood=self.prompt_logprobs,
            extra={
                "base_url": self.base_url,
                "model": self.model,
                **({"note": self.note} if self.note else {}),
            },
        )

    def close(self) -> None:
        self._client.close()

    def _completion_logprobs(self, context: str, continuation: str) -> tuple[float, bool, int, int] | None:
        """(log-likelihood of the continuation, greedy, its tokens, prompt tokens) from echoed
        prompt log-probabilities, mapped to the continuation by character offsets."""
        prompt = context + continuation
        data = self._post(
            "/completions",
            {
                "model": self.model,
                "prompt": prompt,
                "max_tokens": 1,
                "echo": True,
                "logprobs": 1,
                "temperature": 0,
            },
        )
        return continuation_logprob(data, len(context), len(prompt))

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResponse]:
        pairs = [(i, c, x) for i, r in enumerate(reqs) for c, x in r.pairs]

        def one(p: tuple[int, str, str]) -> tuple[float, bool, int, int, float] | str:
            t0 = time.perf_counter()
            try:
                got = self._completion_logprobs(p[1], p[2])
            except BackendError as e:
                return str(e)
            if got is None:
                return "the server returned no prompt log-probabilities"
            return (*got, time.perf_counter() - t0)

        results = self._map(one, pairs)
        out = []
        k = 0
        for r in reqs:
            chunk = results[k : k + len(r.pairs)]
            k += len(r.pairs)
            err = next((x for x in chunk if isinstance(x, str)), None)
            if err is not None:
                out.append(LoglikelihoodResponse([], [], [], 0, 0, 0.0, error=err))
                continue
            ok = [x for x in chunk if not isinstance(x, str)]
            out.append(
                LoglikelihoodResponse(
                    logliks=[x[0] for x in ok],
                    is_greedy=[x[1] for x in ok],
                    continuation_tokens=[x[2] for x in ok],
                    input_tokens=max(x[3] for x in ok),
                    tokens_evaluated=sum(x[3] for x in ok),
                    latency_s=max(x[4] for x in ok),  # the pairs of an item run concurrently
                )
            )
        return out

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[GenerateResponse]:
        return self._map(self._generate_one, reqs)

    def _generate_one(self, req: GenerateRequest) -> GenerateResponse:
        t0 = time.perf_counter()
        chat = not self.has_completions or self.endpoint == "chat"
        path, body = stream_request(self.model, req, chat=chat)
        try:
            return self._with_retries(lambda: self._stream(path, body, req, t0))
        except BackendError as e:
            return failed_generation(str(e), time.perf_counter() - t0)

    def _stream(self, path: str, body: dict[str, Any], req: GenerateRequest, t0: float) -> GenerateResponse:
        start = time.perf_counter()
        text, ttft, finish, usage, chunks = "", None, None, None, 0
        try:
            with self._client.stream("POST", path, json={**self.extra_body, **body}) as r:
                self._raise_for(r)
                for data in sse(r.iter_lines()):
                    if data.get("usage"):
                        usage = data["usage"]
                    for choice in data.get("choices") or []:
                        piece = choice_text(choice)
                        if piece:
                            if ttft is None:
                                ttft = time.perf_counter() - start
                            text += piece
                            chunks += 1
                        finish = choice.get("finish_reason") or finish
        except httpx.TimeoutException:
            raise _Retryable(f"timed out after {self.timeout_s:g} s") from None
        except httpx.TransportError as e:
            raise _Retryable(
                self._scrub(f"connection to {self.base_url} failed: {type(e).__name__}: {e}")
            ) from None
        if finish is None:
            # Every OpenAI-style stream ends with a finish reason; without one the server cut the
            # stream short (llama-cpp-python's server interrupts a stream when another request arrives).
            raise _Retryable("the stream ended without a finish reason (interrupted by the server)")
        cut = first_stop(text, req.stop)
        if cut is not None:
            text, finish = text[:cut], "stop"
        return GenerateResponse(
            text=text,
            input_tokens=int(usage["prompt_tokens"]) if usage else None,  # unknown: not invented
            output_tokens=int(usage["completion_tokens"]) if usage else chunks,
            ttft_s=ttft,
            latency_s=time.perf_counter() - start,
            finish_reason=finish,
        )

    def loglikelihood_rolling(self, reqs: Sequence[RollingRequest]) -> list[RollingResponse]:
        def one(req: RollingRequest) -> RollingResponse:
            t0 = time.perf_counter()
            try:
                got = self._completion_logprobs("", req.text)
            except BackendError as e:
                return RollingResponse(0.0, 0, 0, time.perf_counter() - t0, error=str(e))
            if got is None:
                return RollingResponse(
                    0.0, 0, 0, time.perf_counter() - t0, error="no prompt log-probabilities"
                )
            ll, _, n, total = got
            return RollingResponse(ll, n, total, time.perf_counter() - t0)

        return self._map(one, reqs)
