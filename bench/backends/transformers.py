"""Hugging Face transformers (torch) in process, on CPU or CUDA.

Scoring follows lm-eval 0.4.13's HFLM so that numbers agree with it: the same tokenization
(`_encode_pair`, the tokenizer's own BOS convention, a prefix token for empty contexts), the
same left truncation to max_length + 1 tokens, and batches of right-padded sequences sorted by
descending length. Sequences whose model input is identical (one-token choices after a shared
context) run once, as HFLM's logits cache does. Log-softmax is taken in float32 on the positions
that predict continuation tokens only, so a bf16 model does not lose precision in the sums.

Generation is a greedy loop over the KV cache, one request at a time, so the time to the first
token and every stop are exact, and decoding ends the moment a stop sequence appears.
"""

from __future__ import annotations

import gc
import inspect
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
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
    first_stop,
    render_chat_template,
    rolling_windows,
)
from bench.backends.llamacpp import default_threads
from bench.errors import BackendError, BackendUnavailable

INSTALL_HINT = "pip install 'bench[transformers]'"
DEFAULT_MAX_LENGTH = 2048  # lm-eval's fallback when neither config nor tokenizer gives one
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")
Pair = tuple[list[int], list[int]]  # (context tokens, continuation tokens)
_QUANT_NAMES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


def _import_torch() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as e:
        raise BackendUnavailable("transformers", f"{e.name or e} is not installed", INSTALL_HINT) from None
    return torch, transformers


def _resolve_device(torch: Any, device: str) -> Any:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise BackendError(f"device {device!r} is not valid: {e}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendError(f"device {device!r} asked for, but torch sees no CUDA GPU")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def _resolve_dtype(torch: Any, dtype: str, device: Any) -> Any:
    """auto: bf16 where the GPU supports it, else fp16 on CUDA; fp32 on CPU (half is slow there)."""
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _max_length(config: Any, tokenizer: Any) -> int:
    """lm-eval's `resolve_max_length`: the text config, the config, the tokenizer, then 2048."""
    cfg = getattr(config, "text_config", None) or config
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(cfg, attr, None)
        if value is not None:
            return int(value)
    mml = getattr(tokenizer, "model_max_length", None)
    if mml is not None and mml < 1e29:  # tokenizers without a limit report int(1e30)
        return int(mml)
    return DEFAULT_MAX_LENGTH


def _looks_local(model: str) -> bool:
    """A hub id is `name` or `org/name`; anything else is a path, and a missing one must not go to the hub."""
    return Path(model).expanduser().exists() or not _HUB_ID.fullmatch(model)


def _weights_size(model: str, gguf_file: str | None) -> int | None:
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return None  # a hub id: the files are in the hub cache, not worth resolving here
    if gguf_file:
        f = folder / gguf_file
        return f.stat().st_size if f.is_file() else None
    for suffix in _WEIGHT_SUFFIXES:  # a repo may ship the same weights twice (.safetensors and .bin)
        total = sum(p.stat().st_size for p in folder.glob(f"*{suffix}") if p.is_file())
        if total:
            return total
    return None


@dataclass
class _Scored:
    """One (context, continuation) pair's result, and its share of the engine's time and tokens."""

    loglik: float = 0.0
    greedy: bool = False
    seconds: float = 0.0
    evaluated: int = 0
    error: str | None = None


@dataclass
class _Answer:
    """What one request got: its pairs, their results, its latency, or its first error."""

    pairs: list[Pair] = field(default_factory=list)
    scored: list[_Scored] = field(default_factory=list)
    latency: float = 0.0
    error: str | None = None


class TransformersBackend:
    name = "transformers"

    def __init__(
        self,
        model: str,
        *,
        model_name: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 8,
        max_length: int | None = None,
        trust_remote_code: bool = False,
        gguf_file: str | None = None,
        seed: int = 1234,
    ) -> None:
        torch, transformers = _import_torch()
        self._torch = torch
        self.model_name = model_name or model
        self.source = model
        self.gguf_file = gguf_file
        self.batch_size = batch_size
        self.device = _resolve_device(torch, device)
        if self.device.type == "cpu" and not os.environ.get("OMP_NUM_THREADS"):
            # Measured on 2-core machines: torch with 2 threads ran 10-25x slower than with 1, as
            # llama.cpp did. Each model has its own worker process, so this is the model's alone.
            torch.set_num_threads(default_threads())
        torch.manual_seed(seed)
        self._generator = torch.Generator(device=self.device).manual_seed(seed)
        if _looks_local(model) and not Path(model).expanduser().is_dir():
            raise BackendError(f"{self.model_name}: model folder not found: {model}")
        kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if gguf_file:
            kwargs["gguf_file"] = gguf_file
        # transformers 4.56 renamed torch_dtype to dtype and warns on the old name.
        major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
        dtype_kw = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
        src = str(Path(model).expanduser()) if _looks_local(model) else model
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(src, **kwargs)
            self.model = transformers.AutoModelForCausalLM.from_pretrained(
                src, **{dtype_kw: _resolve_dtype(torch, dtype, self.device)}, **kwargs
            )
            self.model.to(self.device)
        except Exception as e:  # OSError for missing files, ValueError for unknown architectures, ...
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise BackendError(f"{self.model_name}: transformers could not load {model}: {first}") from None
        self.model.eval()
        self.max_length = max_length or _max_length(self.model.config, self.tokenizer)
        tok = self.tokenizer
        self.prefix_token_id = int(tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id)
        self._prefix_text = tok.decode([self.prefix_token_id], skip_special_tokens=False)
        self._bos_text: str | None = tok.bos_token
        eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        eos_ids = eos if isinstance(eos, list) else [eos]
        # transformers 5.x renames forward's `past_key_values` to `cache` and warns on the old name.
        params = inspect.signature(self.model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self.eos_ids = {int(x) for x in [*eos_ids, tok.eos_token_id] if x is not None}

    @classmethod
    def from_spec(cls, spec: Any, seed: int) -> TransformersBackend:
        from bench.catalog.hf import model_source

        # a catalog name (in `model`, or `name` alone): its HF folder, converted once from the GGUF
        model, _ = model_source(spec.model, spec.name)
        return cls(
            model,
            model_name=spec.name,
            device=spec.device,
            dtype=spec.dtype,
            batch_size=spec.batch_size,
            max_length=spec.max_length,
            trust_remote_code=spec.trust_remote_code,
            gguf_file=spec.gguf_file,
            seed=seed,
        )

    # ------------------------------------------------------------------ info

    def info(self) -> ModelInfo:
        dtype = str(self.model.dtype).removeprefix("torch.")
        config = self.model.config
        return ModelInfo(
            name=self.model_name,
            backend=self.name,
            params=sum(p.numel() for p in self.model.parameters()),
            quant=_QUANT_NAMES.get(dtype, dtype),
            file_size=_weights_size(self.source, self.gguf_file),
            n_ctx=self.max_length,
            chat_template=bool(getattr(self.tokenizer, "chat_template", None)),
            loglikelihood=True,
            device=str(self.device),
            family=getattr(config, "model_type", None),
            extra={
                "batch_size": str(self.batch_size),
                "n_threads": str(self._torch.get_num_threads()),
                "torch": str(self._torch.__version__),
            },
        )

    def close(self) -> None:
        if hasattr(self, "model"):
            del self.model
        gc.collect()
        if self.device.type == "cuda":
            self._torch.cuda.empty_cache()

    # ------------------------------------------------------------------ tokens

    def tok_encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        """HFLM's `tok_encode`: the tokenizer's own special tokens (BOS for Llama and Gemma, none for
        GPT-2), except when the text already starts with the prefix token's text."""
        kwargs: dict[str, bool] = {}
        if add_special_tokens is not None:
            kwargs["add_special_tokens"] = add_special_tokens
        elif self._prefix_text and text.startswith(self._prefix_text):
            kwargs["add_special_tokens"] = False
        return list(self.tokenizer.encode(text, **kwargs))

    def encode_pair(self, context: str, continuation: str) -> Pair:
        """HFLM's `loglikelihood` + `_encode_pair`: trailing spaces move to the continuation, whose
        tokens are those of context+continuation after the context's own; an empty context is the
        prefix token (BOS, else EOS)."""
        if not context:
            cont = self.tok_encode(continuation, add_special_tokens=False)
            if cont and cont[0] == self.prefix_token_id:
                return cont[:1], cont[1:]
            return [self.prefix_token_id], cont
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole = self.tok_encode(context + continuation)
        ctx = self.tok_encode(context)
        return ctx, whole[len(ctx) :]

    # ------------------------------------------------------------------ scoring

    def _score(self, pairs: Sequence[Pair]) -> list[_Scored]:
        """Batched scoring of token pairs, as HFLM's `_loglikelihood_tokens`.

        A batch's wall time is split evenly over its sequences, and a sequence's over the pairs that
        share it: a pair's `seconds` is its share, not a latency of its own. A sequence's tokens are
        counted for the first pair that uses it, so the sum over pairs is what the engine ran."""
        torch = self._torch
        results = [_Scored() for _ in pairs]
        rows: dict[tuple[int, ...], list[int]] = {}  # model input -> the pairs that read its logits
        for i, (ctx, cont) in enumerate(pairs):
            inp = tuple((ctx + cont)[-(self.max_length + 1) :][:-1])
            rows.setdefault(inp, []).append(i)
        order = sorted(rows, key=lambda r: (-len(r), r))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            try:
                self._score_batch(batch, rows, pairs, results)
            except Exception as e:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if len(batch) == 1:
                    for i in rows[batch[0]]:
                        results[i].error = error_text(e)
                    continue
                # Retry one sequence at a time, so only the failing ones (say, the longest running
                # out of memory) are errors and the rest are still answered.
                for row in batch:
                    try:
                        self._score_batch([row], rows, pairs, results)
                    except Exception as e1:
                        for i in rows[row]:
                            results[i].error = error_text(e1)
        return results

    def _score_batch(
        self,
        batch: Sequence[tuple[int, ...]],
        rows: dict[tuple[int, ...], list[int]],
        pairs: Sequence[Pair],
        results: list[_Scored],
    ) -> None:
        torch = self._torch
        t0 = time.perf_counter()
        width = len(batch[0])
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for b, row in enumerate(batch):
            ids[b, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[b, : len(row)] = 1
        found: list[tuple[int, float, bool]] = []
        with torch.inference_mode():
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            for b, row in enumerate(batch):
                users = rows[row]
                k = max(len(pairs[i][1]) for i in users)  # positions that predict continuation tokens
                lp = torch.log_softmax(logits[b, len(row) - k : len(row)].float(), dim=-1)
                greedy = lp.argmax(dim=-1)
                for i in users:
                    cont = pairs[i][1]
                    target = torch.tensor(cont, dtype=torch.long, device=lp.device)
                    picked = lp[k - len(cont) :].gather(1, target[:, None])
                    found.append((i, float(picked.sum()), bool((greedy[k - len(cont) :] == target).all())))
        per_row = (time.perf_counter() - t0) / len(batch)
        for i, ll, g in found:
            results[i].loglik, results[i].greedy = ll, g
        for row in batch:
            users = rows[row]
            results[users[0]].evaluated += len(row)
            for i in users:
                results[i].seconds += per_row / len(users)

    def _answer(self, encoders: Sequence[Callable[[], list[Pair]]]) -> list[_Answer]:
        """Encode every request (a failure is that request's error), score all pairs of all requests
        together, and hand each request its own results. Its latency is its encoding time plus its
        share of the batches' time (see `_score`), so latencies add up to the time spent."""
        answers: list[_Answer] = []
        pairs: list[Pair] = []
        owner: list[int] = []
        for r, encode in enumerate(encoders):
            t0 = time.perf_counter()
            answer = _Answer()
            try:
                encoded = encode()
                pairs.extend(encoded)
                owner.extend([r] * len(encoded))
            except Exception as e:
                answer.error = error_text(e)
            answer.latency = time.perf_counter() - t0
            answers.append(answer)
        try:
            scored = self._score(pairs)
        except Exception as e:  # a failure not tied to one sequence: every request shares it
            scored = [_Scored(error=error_text(e)) for _ in pairs]
        for r, pair, s in zip(owner, pairs, scored, strict=True):
            a = answers[r]
            a.pairs.append(pair)
            a.scored.append(s)
            a.latency += s.seconds
            a.error = a.error or s.error
        return answers

    def _encode_request(self, req: LoglikelihoodRequest) -> list[Pair]:
        encoded = [self.encode_pair(c, x) for c, x in req.pairs]
        for (_, continuation), (_, cont) in zip(req.pairs, encoded, strict=True):
            if not cont:
                raise BackendError(f"continuation {continuation!r} encodes to no tokens")
            if len(cont) > self.max_length:
                raise BackendError(f"continuation of {len(cont)} tokens exceeds max_length={self.max_length}")
        return encoded

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResponse]:
        out = []
        for a in self._answer([partial(self._encode_request, r) for r in reqs]):
            if a.error:
                out.append(failed_loglikelihood(a.error, a.latency))
                continue
            distinct = {tuple(ctx) for ctx, _ in a.pairs}
            n_cont = [len(cont) for _, cont in a.pairs]
            out.append(
                LoglikelihoodResponse(
                    logliks=[s.loglik for s in a.scored],
                    is_greedy=[s.greedy for s in a.scored],
                    continuation_tokens=n_cont,
                    input_tokens=sum(len(c) for c in distinct) + sum(n_cont),
                    tokens_evaluated=sum(s.evaluated for s in a.scored),
                    latency_s=a.latency,
                )
            )
        return out

    def _windows(self, text: str) -> list[Pair]:
        """The text is tokenized without special tokens: the prefix token already conditions the
        first window. (lm-eval 0.4.13 uses the tokenizer's defaults, which for a BOS-adding tokenizer
        also scores a BOS after the prefix BOS; the llamacpp backend does not do that either.)"""
        tokens = self.tok_encode(text, add_special_tokens=False)
        if not tokens:
            raise BackendError("text encodes to no tokens")
        return rolling_windows(tokens, self.prefix_token_id, self.max_length)

    def loglikelihood_rolling(self, reqs: Sequence[RollingRequest]) -> list[RollingResponse]:
        """lm-eval's rolling windows (context_len=1), batched across all texts like HFLM."""
        out = []
        for a in self._answer([partial(self._windows, r.text) for r in reqs]):
            if a.error:
                out.append(RollingResponse(0.0, 0, 0, a.latency, error=a.error))
                continue
            n_tokens = sum(len(cont) for _, cont in a.pairs)  # the windows predict each token once
            loglik = sum(s.loglik for s in a.scored)
            out.append(RollingResponse(loglik, n_tokens, sum(s.evaluated for s in a.scored), a.latency))
        return out

    # ------------------------------------------------------------------ generation

    def render_chat(self, messages: Sequence[tuple[str, str]]) -> str:
        """The prompt text the model's own chat template makes of the messages."""
        return render_chat_template(self.tokenizer, self.model_name, messages)

    def prompt_tokens(self, req: GenerateRequest) -> list[int]:
        """The tokens a request feeds the model, as HFLM's `tok_batch_encode`: the tokenizer's own
        special tokens, unless the text (a rendered chat template) already starts with BOS."""
        text = req.prompt if req.messages is None else self.render_chat(req.messages)
        if self._bos_text and text.startswith(self._bos_text):
            return list(self.tokenizer.encode(text, add_special_tokens=False))
        return list(self.tokenizer.encode(text))

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[GenerateResponse]:
        return [self._generate_one(r) for r in reqs]

    def _next_token(self, logits: Any, temperature: float) -> int:
        if temperature <= 0:
            return int(logits.argmax())
        probs = self._torch.softmax(logits.float() / temperature, dim=-1)
        return int(self._torch.multinomial(probs, 1, generator=self._generator))

    def _generate_one(self, req: GenerateRequest) -> GenerateResponse:
        torch = self._torch
        t0 = time.perf_counter()
        try:
            prompt = self.prompt_tokens(req)
            room = self.max_length - req.max_tokens
            if room <= 0:
                raise BackendError(
                    f"max_tokens {req.max_tokens} leaves no room in max_length={self.max_length}"
                )
            # HFLM truncates the prompt from the left to fit the generation; an empty one is the prefix token.
            prompt = prompt[-room:] or [self.prefix_token_id]
            out: list[int] = []
            ttft: float | None = None
            finish = "length"
            cut_text: str | None = None  # the output up to a stop sequence, once one appears
            cache: Any = None
            ids = torch.tensor([prompt], dtype=torch.long, device=self.device)
            with torch.inference_mode():
                while len(out) < req.max_tokens:
                    res = self.model(input_ids=ids, use_cache=True, **{self._cache_kw: cache})
                    cache = res[self._cache_kw]
                    tok = self._next_token(res.logits[0, -1], req.temperature)  # int() waits for the GPU
                    if ttft is None:
                        ttft = time.perf_counter() - t0
                    if tok in self.eos_ids:
                        finish = "stop"
                        break
                    out.append(tok)
                    if req.stop:
                        so_far = self.tokenizer.decode(out, skip_special_tokens=True)
                        cut = first_stop(so_far, req.stop)
                        if cut is not None:
                            cut_text = so_far[:cut]
                            finish = "stop"
                            break
                    ids = torch.tensor([[tok]], dtype=torch.long, device=self.device)
            return GenerateResponse(
                text=cut_text
                if cut_text is not None
                else self.tokenizer.decode(out, skip_special_tokens=True),
                input_tokens=len(prompt),
                output_tokens=len(out),
                ttft_s=ttft,
                latency_s=time.perf_counter() - t0,
                finish_reason=finish,
            )
        except Exception as e:
            return failed_generation(error_text(e), time.perf_counter() - t0)
