"""vLLM in process (`vllm.LLM`), on GPUs.

Written against vLLM's documented offline API; it cannot be exercised on a machine without a GPU,
so every conversion from vLLM's outputs lives in the pure functions below (unit-tested with
hand-made structures shaped like vLLM's) and the class only moves data between them and the engine.

- One `LLM.generate` call carries a whole batch (vLLM documents that outputs come back in input
  order): the scheduler batches continuously, so the backend never batches by hand.
  `concurrency` is how many requests (items, for log-likelihoods) go into one call; the runner
  sets it to 1 in latency mode.
- Log-likelihoods come from `SamplingParams(prompt_logprobs=1, max_tokens=1)`: vLLM returns, for
  each prompt position after the first, a dict holding the actual token's log-probability and
  rank plus the top-1 token. Pairs are encoded with lm-eval's `_encode_pair` rule, as in the
  llama.cpp backend, so the two score the same token sequences.
- Prefix caching is enabled, but vLLM does not *read* the prefix cache for requests that ask for
  prompt log-probabilities (vllm/v1/core/kv_cache_manager.py), so each (context, continuation) pair
  is evaluated in full; `tokens_evaluated` reports that (less `RequestOutput.num_cached_tokens`
  when vLLM reports a hit). Generation with few-shot prefixes does use the cache.
- Timing: offline `LLM` turns request stats off by default, and then `RequestOutput.metrics` is
  None; the engine is built with `disable_log_stats=False` so TTFT and latency come from vLLM's own
  per-request timestamps. Without them TTFT is None and latency is the call's wall time shared
  among its requests (in a batch they overlap, so that is a throughput figure, not a latency).
- GPU memory: vLLM reserves `gpu_memory_utilization` of each GPU up front (weights, activations,
  KV cache) and in vLLM V1 the engine runs in a child process, so torch's counters in this process
  say little. The reservation, measured with NVML around the load, is in `info().extra`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from bench.backends.base import (
    GenerateRequest,
    GenerateResponse,
    LoglikelihoodRequest,
    LoglikelihoodResponse,
    ModelInfo,
    RollingRequest,
    RollingResponse,
    encode_pair,
    error_text,
    failed_generation,
    failed_loglikelihood,
    first_stop,
    render_chat_template,
    rolling_windows,
)
from bench.errors import BackendError, BackendUnavailable

INSTALL_HINT = "pip install 'bench[vllm]'"
DEFAULT_CONCURRENCY = 256  # vLLM's usual max_num_seqs; used when the engine does not say

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


def _tokens_prompt(ids: Sequence[int]) -> dict[str, Any]:
    """What `vllm.inputs.TokensPrompt(prompt_token_ids=ids)` builds: it is a TypedDict, so a dict."""
    return {"prompt_token_ids": list(ids)}


# ---------------------------------------------------------------------------- engine probes


def _gpu_count() -> int:
    """Visible CUDA/ROCm GPUs, without initializing CUDA here: torch counts them through NVML, and a
    process that initialized CUDA before vLLM starts its workers would break them."""
    try:
        import torch

        return int(torch.cuda.device_count())
    except Exception:
        return 0


def _nvml_used_mb() -> float | None:
    """GPU memory in use on all devices (any process), for the before/after-load difference."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            n = pynvml.nvmlDeviceGetCount()
            return float(
                sum(
                    pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(i)).used
                    for i in range(n)
                )
                / 2**20
            )
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return None


def _import_vllm() -> Any:
    if importlib.util.find_spec("vllm") is None:
        raise BackendUnavailable("vllm", "vllm is not installed", INSTALL_HINT)
    if _gpu_count() < 1:
        raise BackendUnavailable(
            "vllm",
            "no GPU is visible; vLLM in process needs one "
            "(or run `vllm serve MODEL` on a GPU machine and use the openai backend)",
            INSTALL_HINT,
        )
    try:
        import vllm
    except Exception as e:  # on CPU-only installs the import itself fails in several ways
        raise BackendUnavailable(
            "vllm", f"vllm could not be imported here ({error_text(e)})", INSTALL_HINT
        ) from None
    return vllm


def _engine_attr(llm: Any, *path: str) -> Any:
    obj = llm
    for name in path:
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return obj


# ---------------------------------------------------------------------------- the backend


class VLLMBackend:
    """A `Backend` over a built `vllm.LLM` (or anything with its `generate` and `get_tokenizer`).

    `from_spec` loads the engine; the constructor only wires it, so the plumbing can be tested with
    a scripted engine where vLLM cannot run."""

    name = "vllm"

    def __init__(
        self,
        llm: Any,
        *,
        model_name: str,
        sampling_params: Callable[..., Any],
        seed: int = 1234,
        max_model_len: int | None = None,
        params: int | None = None,
        quant: str | None = None,
        family: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        self.llm = llm
        self.model_name = model_name
        self._sampling_params = sampling_params
        self.seed = seed
        self.tokenizer = llm.get_tokenizer()
        self.max_model_len = int(
            max_model_len
            or _engine_attr(llm, "llm_engine", "model_config", "max_model_len")
            or _engine_attr(llm, "model_config", "max_model_len")
            or 0
        )
        if self.max_model_len < 2:
            raise BackendError(f"{model_name}: could not read vLLM's max_model_len; set max_model_len")
        seqs = _engine_attr(llm, "llm_engine", "vllm_config", "scheduler_config", "max_num_seqs")
        self.concurrency: int = int(seqs) if isinstance(seqs, int) and seqs > 0 else DEFAULT_CONCURRENCY
        self.params = params
        self.quant = quant
        self.family = family
        self.extra = dict(extra or {})
        bos = getattr(self.tokenizer, "bos_token_id", None)
        eos = getattr(self.tokenizer, "eos_token_id", None)
        start = bos if isinstance(bos, int) else eos
        if not isinstance(start, int):
            raise BackendError(f"{model_name}: the tokenizer has neither a BOS nor an EOS token id")
        self.start_token: int = start

    @classmethod
    def from_spec(cls, spec: Any, seed: int) -> VLLMBackend:
        """Load `spec.model` (a `bench.config.VLLMModel`) with vLLM."""
        vllm = _import_vllm()
        before = _nvml_used_mb()
        try:
            llm = vllm.LLM(
                model=spec.model,
                tensor_parallel_size=spec.tensor_parallel_size,
                gpu_memory_utilization=spec.gpu_memory_utilization,
                dtype=spec.dtype,
                max_model_len=spec.max_model_len,
                quantization=spec.quantization,
                trust_remote_code=spec.trust_remote_code,
                enforce_eager=spec.enforce_eager,
                seed=seed,
                enable_prefix_caching=True,
                disable_log_stats=False,  # else RequestOutput.metrics is None (no TTFT)
            )
        except Exception as e:  # hub/network, out of memory, unsupported architecture ...
            raise BackendError(f"{spec.name}: vLLM could not load {spec.model!r}: {error_text(e)}") from e
        after = _nvml_used_mb()
        model_config = _engine_attr(llm, "llm_engine", "model_config")
        extra = {
            "tensor_parallel_size": str(spec.tensor_parallel_size),
            "gpu_memory_utilization": str(spec.gpu_memory_utilization),
            "dtype": str(getattr(model_config, "dtype", spec.dtype)),
            "vllm_version": str(getattr(vllm, "__version__", "unknown")),
            "prefix_caching": "generation only (vLLM skips it for prompt-logprob requests)",
        }
        if before is not None and after is not None:
            extra["gpu_reserved_mb"] = f"{after - before:.0f}"  # vLLM's up-front reservation
        family = _engine_attr(model_config, "hf_config", "model_type")
        return cls(
            llm,
            model_name=spec.name,
            sampling_params=vllm.SamplingParams,
            seed=seed,
            params=spec.params,
            quant=spec.quantization or getattr(model_config, "quantization", None),
            family=str(family) if family else None,
            extra=extra,
        )

    # ------------------------------------------------------------------ info

    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.model_name,
            backend=self.name,
            params=self.params,
            quant=self.quant,
            n_ctx=self.max_model_len,
            chat_template=bool(getattr(self.tokenizer, "chat_template", None)),
            loglikelihood=True,
            device="cuda",
            family=self.family,
            extra=dict(self.extra),
        )

    def close(self) -> None:
        """vLLM has no documented close; shut the V1 engine core down where it exists. Each model
        runs in its own worker process, whose exit frees the GPU in any case."""
        core = _engine_attr(self.llm, "llm_engine", "engine_core")
        shutdown = getattr(core, "shutdown", None)
        if callable(shutdown):
            with contextlib.suppress(Exception):
                shutdown()

    # ------------------------------------------------------------------ plumbing

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        """With `special`, the tokenizer adds what it adds to a plain text (BOS for Llama, nothing for
        Qwen), like the llama.cpp backend's add_bos; chat-template output already has it."""
        return list(self.tokenizer.encode(text, add_special_tokens=special))

    def _submit(self, jobs: list[tuple[dict[str, Any], Any]]) -> list[Any]:
        prompts = [p for p, _ in jobs]
        params = [s for _, s in jobs]
        return list(self.llm.generate(prompts, params, use_tqdm=False))

    def _scoring_params(self) -> Any:
        return self._sampling_params(**SCORING_KWARGS)

    # ------------------------------------------------------------------ scoring

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResponse]:
        out: list[LoglikelihoodResponse | None] = [None] * len(reqs)
        params = self._scoring_params()
        limit = self.max_model_len - 1  # vLLM needs room for one generated token
        for chunk in chunks(len(reqs), self.concurrency):
            ready: list[tuple[int, list[tuple[list[int], list[int]]]]] = []
            for i in chunk:
                try:
                    enc = encode_pairs(self.tokenize, reqs[i].pairs, self.start_token)
                    for (_, continuation), (ctx, cont) in zip(reqs[i].pairs, enc, strict=True):
                        if not cont:
                            raise BackendError(f"continuation {continuation!r} encodes to no tokens")
                        if len(ctx) + len(cont) > limit:
                            raise BackendError(
                                f"request of {len(ctx) + len(cont)} tokens exceeds max_model_len - 1 = {limit}"
                            )
                    ready.append((i, enc))
                except Exception as e:
                    out[i] = failed_loglikelihood(error_text(e), 0.0)
            groups = [[(_tokens_prompt(c + x), params) for c, x in enc] for _, enc in ready]
            t0 = time.perf_counter()
            results = run_isolated(self._submit, groups)
            share = (time.perf_counter() - t0) / max(1, len(ready))
            for (i, enc), res in zip(ready, results, strict=True):
                out[i] = self._ll_response(enc, res, share)
        return [
            r if r is not None else failed_loglikelihood(error_text(BackendError("not evaluated")), 0.0)
            for r in out
        ]

    def _ll_response(
        self, enc: list[tuple[list[int], list[int]]], res: list[Any] | Exception, share: float
    ) -> LoglikelihoodResponse:
        if isinstance(res, Exception):
            return failed_loglikelihood(error_text(res), share)
        try:
            lls: list[float] = []
            greedy: list[bool] = []
            ntoks: list[int] = []
            lat: list[float | None] = []
            evaluated = 0
            for (ctx, cont), output in zip(enc, res, strict=True):
                plp = getattr(output, "prompt_logprobs", None)
                if plp is None:
                    raise BackendError("vLLM returned no prompt_logprobs")
                ll, g = continuation_logprob(plp, len(ctx), cont)
                lls.append(ll)
                greedy.append(g)
                ntoks.append(len(cont))
                cached = getattr(output, "num_cached_tokens", None)
                evaluated += len(ctx) + len(cont) - (cached if isinstance(cached, int) else 0)
                lat.append(request_timing(getattr(output, "metrics", None))[1])
            distinct = {tuple(ctx) for ctx, _ in enc}
            known = [x for x in lat if x is not None]
            return LoglikelihoodResponse(
                logliks=lls,
                is_greedy=greedy,
                continuation_tokens=ntoks,
                input_tokens=sum(len(c) for c in distinct) + sum(ntoks),
                tokens_evaluated=evaluated,
                latency_s=max(known) if known and len(known) == len(lat) else share,
            )
        except Exception as e:
            return failed_loglikelihood(error_text(e), share)

    # ------------------------------------------------------------------ generation

    def render_chat(self, messages: Sequence[tuple[str, str]]) -> str:
        """The prompt text the model's own chat template makes of the messages (what `LLM.chat`
        does), so chat and plain requests share one batched call and exact token counts."""
        return render_chat_template(self.tokenizer, self.model_name, messages)

    def _prompt_tokens(self, req: GenerateRequest) -> list[int]:
        if req.messages is None:
            return self.tokenize(req.prompt, special=True)
        return self.tokenize(self.render_chat(req.messages), special=False)

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[GenerateResponse]:
        out: list[GenerateResponse | None] = [None] * len(reqs)
        for chunk in chunks(len(reqs), self.concurrency):
            ready: list[tuple[int, list[int], Any]] = []
            for i in chunk:
                req = reqs[i]
                try:
                    prompt = self._prompt_tokens(req)
                    if len(prompt) + req.max_tokens > self.max_model_len:
                        raise BackendError(
                            f"prompt of {len(prompt)} tokens + max_tokens {req.max_tokens} exceeds "
                            f"max_model_len={self.max_model_len}"
                        )
                    ready.append((i, prompt, self._sampling_params(**sampling_kwargs(req, self.seed))))
                except Exception as e:
                    out[i] = failed_generation(error_text(e), 0.0)
            groups = [[(_tokens_prompt(prompt), sp)] for _, prompt, sp in ready]
            t0 = time.perf_counter()
            results = run_isolated(self._submit, groups)
            share = (time.perf_counter() - t0) / max(1, len(ready))
            for (i, prompt, _), res in zip(ready, results, strict=True):
                out[i] = self._gen_response(reqs[i], prompt, res, share)
        return [r if r is not None else failed_generation("not evaluated", 0.0) for r in out]

    def _gen_response(
        self, req: GenerateRequest, prompt: list[int], res: list[Any] | Exception, share: float
    ) -> GenerateResponse:
        if isinstance(res, Exception):
            return failed_generation(error_text(res), share)
        try:
            (output,) = res
            completion = output.outputs[0]
            text, cut = truncate_at_stop(str(completion.text), req.stop)
            ttft, latency = request_timing(getattr(output, "metrics", None))
            prompt_ids = getattr(output, "prompt_token_ids", None)
            return GenerateResponse(
                text=text,
                input_tokens=len(prompt_ids) if prompt_ids is not None else len(prompt),
                output_tokens=len(completion.token_ids),
                ttft_s=ttft if latency is not None else None,
                latency_s=latency if latency is not None else share,
                finish_reason="stop" if cut else completion.finish_reason,
            )
        except Exception as e:
            return failed_generation(error_text(e), share)

    # ------------------------------------------------------------------ whole texts

    def loglikelihood_rolling(self, reqs: Sequence[RollingRequest]) -> list[RollingResponse]:
        out: list[RollingResponse | None] = [None] * len(reqs)
        params = self._scoring_params()
        for chunk in chunks(len(reqs), self.concurrency):
            ready: list[tuple[int, int, list[tuple[list[int], list[int]]]]] = []
            for i in chunk:
                try:
                    tokens = self.tokenize(reqs[i].text, special=False)
                    if not tokens:
                        raise BackendError("text encodes to no tokens")
                    # every window's prompt within max_model_len - 1, as for pairs (room for one token)
                    windows = rolling_windows(tokens, self.start_token, self.max_model_len - 2)
                    ready.append((i, len(tokens), windows))
                except Exception as e:
                    out[i] = RollingResponse(0.0, 0, 0, 0.0, error=error_text(e))
            groups = [[(_tokens_prompt(c + x), params) for c, x in w] for _, _, w in ready]
            t0 = time.perf_counter()
            results = run_isolated(self._submit, groups)
            share = (time.perf_counter() - t0) / max(1, len(ready))
            for (i, n_tokens, windows), res in zip(ready, results, strict=True):
                out[i] = self._rolling_response(n_tokens, windows, res, share)
        return [r if r is not None else RollingResponse(0.0, 0, 0, 0.0, error="not evaluated") for r in out]

    def _rolling_response(
        self,
        n_tokens: int,
        windows: list[tuple[list[int], list[int]]],
        res: list[Any] | Exception,
        share: float,
    ) -> RollingResponse:
        if isinstance(res, Exception):
            return RollingResponse(0.0, 0, 0, share, error=error_text(res))
        try:
            total, evaluated = 0.0, 0
            lat: list[float | None] = []
            for (ctx, cont), output in zip(windows, res, strict=True):
                plp = getattr(output, "prompt_logprobs", None)
                if plp is None:
                    raise BackendError("vLLM returned no prompt_logprobs")
                total += continuation_logprob(plp, len(ctx), cont)[0]
                cached = getattr(output, "num_cached_tokens", None)
                evaluated += len(ctx) + len(cont) - (cached if isinstance(cached, int) else 0)
                lat.append(request_timing(getattr(output, "metrics", None))[1])
            known = [x for x in lat if x is not None]
            latency = max(known) if known and len(known) == len(lat) else share
            return RollingResponse(total, n_tokens, evaluated, latency)
        except Exception as e:
            return RollingResponse(0.0, 0, 0, share, error=error_text(e))
