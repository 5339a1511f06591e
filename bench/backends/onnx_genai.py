"""ONNX Runtime GenAI in process: a model folder made by `python -m onnxruntime_genai.models.builder`.

Generation is onnxruntime-genai's own token loop (`Generator.generate_next_token`), so what is
measured is what an application built on it gets. Log-likelihoods come from the decoder's raw
`logits` output: `Generator.get_output("logits")` holds one row per token of the last
`append_tokens` call (verified on 0.18: appending n tokens gives shape (1, n, vocab)), and
`Generator.rewind_to` drops the KV cache back to a shorter prefix. Within an item the choices share
their context: it is appended once and each choice rewinds to the context's last token. Nothing is
kept across items (each item gets its own generator, sized to what it needs, because the KV buffer
is allocated for the generator's whole `max_length`), so results never depend on the order of items.

Token ids are onnxruntime-genai's own tokenizer's (`Tokenizer.encode`), exactly as given: that is the
model's tokenization as every onnxruntime-genai application sees it, BOS included or not.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

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
    rolling_windows,
)
from bench.backends.logits import log_softmax_pick
from bench.errors import BackendError, BackendUnavailable

INSTALL_HINT = "pip install 'bench[onnx]'"

# ONNX TensorProto element types of floating-point weights, and what they say about precision.
_FLOAT_TYPES = {1: "fp32", 10: "fp16", 11: "fp64", 16: "bf16"}
# Rotary tables the builder stores as initializers: not parameters of the model.
_NOT_PARAMS = ("cos_cache", "sin_cache")


def _import_og() -> Any:
    try:
        import onnxruntime_genai as og
    except ImportError as e:
        raise BackendUnavailable(
            "onnxruntime-genai", f"onnxruntime-genai is not installed ({e})", INSTALL_HINT
        ) from None
    return og


class OnnxGenAIBackend:
    name = "onnxruntime-genai"

    def __init__(
        self,
        path: str | Path,
        *,
        model_name: str,
        execution_provider: str = "cpu",
        max_length: int | None = None,
        seed: int = 1234,
    ) -> None:
        og = _import_og()
        self._og = og
        self.model_name = model_name
        self.path = Path(path).expanduser()
        self.seed = seed
        self.execution_provider = execution_provider.lower()
        config_file = self.path / "genai_config.json"
        if not config_file.is_file():
            what = "folder not found" if not self.path.is_dir() else "no genai_config.json in"
            raise BackendError(
                f"{model_name}: {what} {self.path} (make one with python -m onnxruntime_genai.models.builder)"
            )
        try:
            self.genai_config: dict[str, Any] = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise BackendError(f"{model_name}: cannot read {config_file}: {e}") from None
        model_cfg = self.genai_config.get("model", {})
        self.context_length = int(model_cfg.get("context_length") or 0) or None
        if max_length is not None and self.context_length is not None and max_length > self.context_length:
            raise BackendError(
                f"{model_name}: max_length {max_length} exceeds the model's context_length {self.context_length}"
            )
        self.n_ctx = max_length or self.context_length or 2048
        self._logits_name = str(model_cfg.get("decoder", {}).get("outputs", {}).get("logits", "logits"))
        try:
            cfg = og.Config(str(self.path))
            cfg.clear_providers()  # the folder's own provider list is replaced by the suite's choice
            if self.execution_provider != "cpu":
                cfg.append_provider(self.execution_provider)
            self.model = og.Model(cfg)
            self.tokenizer = og.Tokenizer(self.model)
        except Exception as e:  # onnxruntime-genai raises RuntimeError for every load failure
            raise BackendError(f"{model_name}: onnxruntime-genai could not load {self.path}: {e}") from None
        self._eos = {int(t) for t in np.atleast_1d(self.tokenizer.eos_token_ids)}
        self._bos = int(self.tokenizer.bos_token_id)
        self.chat_template = self._has_chat_template()
        self._info: ModelInfo | None = None

    @classmethod
    def from_spec(cls, spec: Any, seed: int) -> OnnxGenAIBackend:
        return cls(
            spec.path,
            model_name=spec.name,
            execution_provider=spec.execution_provider,
            max_length=spec.max_length,
            seed=seed,
        )

    # ------------------------------------------------------------------ info

    def info(self) -> ModelInfo:
        """Computed once: the ONNX graph is read (without its weights) to count parameters."""
        if self._info is None:
            params, quant = self._graph_stats()
            files = [p for p in self.path.iterdir() if p.is_file() and ".onnx" in p.name]
            device = str(getattr(self.model, "device_type", "") or self.execution_provider).lower()
            self._info = ModelInfo(
                name=self.model_name,
                backend=self.name,
                params=params,
                quant=quant or _quant_from_name(self.path.name),
                file_size=sum(p.stat().st_size for p in files) or None,
                n_ctx=self.n_ctx,
                chat_template=self.chat_template,
                loglikelihood=True,
                device=device,
                family=self.genai_config.get("model", {}).get("type"),
                extra={
                    "execution_provider": self.execution_provider,
                    "context_length": str(self.context_length),
                },
            )
        return self._info

    def _graph_stats(self) -> tuple[int | None, str | None]:
        """(parameter count, precision) from the decoder graph's initializers. 4-bit MatMulNBits
        weights count as K*N and make the precision "int4"; unknown without the `onnx` package."""
        try:
            import onnx
        except ImportError:
            return None, None
        fname = self.genai_config.get("model", {}).get("decoder", {}).get("filename", "model.onnx")
        try:
            graph = onnx.load(str(self.path / fname), load_external_data=False).graph
        except Exception:
            return None, None
        packed: set[str] = set()
        params = 0
        bits: set[int] = set()
        for node in graph.node:
            if node.op_type == "MatMulNBits":
                attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
                params += int(attrs.get("K", 0)) * int(attrs.get("N", 0))
                bits.add(int(attrs.get("bits", 4)))
                packed.update(node.input[1:])
        by_type: dict[str, int] = {}
        for init in graph.initializer:
            if init.name in packed or init.data_type not in _FLOAT_TYPES or init.name in _NOT_PARAMS:
                continue
            n = int(np.prod(init.dims)) if init.dims else 1
            params += n
            kind = _FLOAT_TYPES[init.data_type]
            by_type[kind] = by_type.get(kind, 0) + n
        quant: str | None = max(by_type, key=lambda k: by_type[k]) if by_type else None
        if bits:
            quant = "+".join(f"int{b}" for b in sorted(bits))
        return (params or None), quant

    def close(self) -> None:
        self.model = None
        self.tokenizer = None

    # ------------------------------------------------------------------ tokens

    def tokenize(self, text: str) -> list[int]:
        return [int(t) for t in self.tokenizer.encode(text)]

    def _start_token(self) -> int:
        """What an empty context is conditioned on (lm-eval's prefix token): BOS, else EOS."""
        if self._bos >= 0:
            return self._bos
        return min(self._eos) if self._eos else 0

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        return encode_pair(self.tokenize, context, continuation, self._start_token())

    # ------------------------------------------------------------------ scoring

    def _generator(self, max_length: int) -> Any:
        params = self._og.GeneratorParams(self.model)
        params.set_search_options(do_sample=False, max_length=max_length)
        return self._og.Generator(self.model, params)

    def _append(self, gen: Any, tokens: Sequence[int]) -> None:
        gen.append_tokens(np.asarray(tokens, dtype=np.int32))

    def _continuation_rows(self, scorer: _Scorer, ctx: list[int], cont: list[int]) -> tuple[np.ndarray, int]:
        """Logit rows predicting each continuation token, and how many tokens were run for them.

        The tokens the generator already holds are kept up to the context's last token, which is
        always re-run so that its row comes with the continuation's."""
        first = len(ctx) - 1  # the position whose logits predict cont[0]
        tokens = ctx + cont
        common = 0
        for a, b in zip(scorer.held, tokens, strict=False):
            if a != b:
                break
            common += 1
        start = scorer.keep(min(common, first))
        if start < first:  # the uncached part of the context: no logits needed from it
            self._append(scorer.gen, tokens[start:first])
        self._append(scorer.gen, tokens[first:])
        scorer.held.extend(tokens[start:])
        rows = np.asarray(scorer.gen.get_output(self._logits_name))
        rows = rows.reshape(-1, rows.shape[-1])
        if rows.shape[0] != len(tokens) - first:
            raise BackendError(
                f"the model returned {rows.shape[0]} logit rows for {len(tokens) - first} tokens; "
                "this export does not give per-position logits"
            )
        return rows[: len(cont)], len(tokens) - start

    def _check_length(self, n: int) -> None:
        if n > self.n_ctx:
            raise BackendError(f"request of {n} tokens exceeds n_ctx={self.n_ctx}")

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResponse]:
        out = []
        for req in reqs:
            t0 = time.perf_counter()
            try:
                encoded = [self.encode_pair(c, x) for c, x in req.pairs]
                for (_, continuation), (_, cont) in zip(req.pairs, encoded, strict=True):
                    if not cont:
                        raise BackendError(f"continuation {continuation!r} encodes to no tokens")
                longest = max((len(c) + len(x) for c, x in encoded), default=0)
                self._check_length(longest)
                scorer = _Scorer(self._generator, longest)
                lls, greedy, ntoks = [], [], []
                evaluated = 0
                for ctx, cont in encoded:
                    rows, n_run = self._continuation_rows(scorer, ctx, cont)
                    ll, g = log_softmax_pick(rows, cont)
                    lls.append(ll)
                    greedy.append(g)
                    ntoks.append(len(cont))
                    evaluated += n_run
                distinct = {tuple(c) for c, _ in encoded}
                out.append(
                    LoglikelihoodResponse(
                        logliks=lls,
                        is_greedy=greedy,
                        continuation_tokens=ntoks,
                        input_tokens=sum(len(c) for c in distinct) + sum(ntoks),
                        tokens_evaluated=evaluated,
                        latency_s=time.perf_counter() - t0,
                    )
                )
            except Exception as e:
                out.append(failed_loglikelihood(error_text(e), time.perf_counter() - t0))
        return out

    # ------------------------------------------------------------------ generation

    def _has_chat_template(self) -> bool:
        """onnxruntime-genai finds the template itself (tokenizer_config.json or chat_template.jinja);
        a model without one raises "Empty chat template"."""
        if not hasattr(self.tokenizer, "apply_chat_template"):
            return False
        try:
            self.tokenizer.apply_chat_template(json.dumps([{"role": "user", "content": "hi"}]))
        except Exception:
            return False
        return True

    def render_chat(self, messages: Sequence[tuple[str, str]]) -> str:
        """The prompt text the model's own chat template makes of the messages."""
        if not self.chat_template:
            raise BackendError(f"{self.model_name} has no chat template; use chat: never")
        payload = json.dumps([{"role": r, "content": c} for r, c in messages])
        return str(self.tokenizer.apply_chat_template(payload, add_generation_prompt=True))

    def _prompt_tokens(self, req: GenerateRequest) -> list[int]:
        if req.messages is None:
            tokens = self.tokenize(req.prompt)
        else:
            tokens = self.tokenize(self.render_chat(req.messages))
            # a template that writes the BOS text, encoded by a tokenizer that adds one too
            if len(tokens) >= 2 and tokens[0] == tokens[1] == self._bos:
                tokens = tokens[1:]
        return tokens or [self._start_token()]

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[GenerateResponse]:
        return [self._generate_one(r) for r in reqs]

    def _generate_one(self, req: GenerateRequest) -> GenerateResponse:
        t0 = time.perf_counter()
        try:
            prompt = self._prompt_tokens(req)
            if len(prompt) + req.max_tokens > self.n_ctx:
                raise BackendError(
                    f"prompt of {len(prompt)} tokens + max_tokens {req.max_tokens} exceeds n_ctx={self.n_ctx}"
                )
            params = self._og.GeneratorParams(self.model)
            search: dict[str, Any] = {"max_length": len(prompt) + req.max_tokens}
            if req.temperature > 0:
                search.update(do_sample=True, temperature=req.temperature, random_seed=self.seed)
            else:
                search.update(do_sample=False)
            params.set_search_options(**search)
            gen = self._og.Generator(self.model, params)
            self._append(gen, prompt)  # the prompt's forward pass runs here
            stream = self.tokenizer.create_stream()
            out: list[int] = []
            text = ""
            ttft: float | None = None
            finish = "length"
            while len(out) < req.max_tokens and not gen.is_done():
                gen.generate_next_token()
                tok = int(gen.get_next_tokens()[0])
                if ttft is None:
                    ttft = time.perf_counter() - t0
                if tok in self._eos:
                    finish = "stop"
                    break
                out.append(tok)
                text += stream.decode(tok)
                cut = first_stop(text, req.stop)
                if cut is not None:
                    text = text[:cut]
                    finish = "stop"
                    break
            else:
                if len(out) < req.max_tokens:  # the generator ended it (an end token of its own list)
                    finish = "stop"
            return GenerateResponse(
                text=text,
                input_tokens=len(prompt),
                output_tokens=len(out),
                ttft_s=ttft,
                latency_s=time.perf_counter() - t0,
                finish_reason=finish,
            )
        except Exception as e:
            return failed_generation(error_text(e), time.perf_counter() - t0)

    # ------------------------------------------------------------------ whole texts

    def loglikelihood_rolling(self, reqs: Sequence[RollingRequest]) -> list[RollingResponse]:
        """lm-eval's rolling windows with context_len=1 (`rolling_windows`), each window at most
        n_ctx tokens (context and continuation are evaluated together)."""
        out = []
        for req in reqs:
            t0 = time.perf_counter()
            try:
                tokens = self.tokenize(req.text)
                if tokens and tokens[0] == self._bos:  # the start token is added below, once
                    tokens = tokens[1:]
                if not tokens:
                    raise BackendError("text encodes to no tokens")
                total, evaluated = 0.0, 0
                for ctx, cont in rolling_windows(tokens, self._start_token(), self.n_ctx - 1):
                    scorer = _Scorer(self._generator, len(ctx) + len(cont))
                    rows, n_run = self._continuation_rows(scorer, ctx, cont)
                    total += log_softmax_pick(rows, cont)[0]
                    evaluated += n_run
                out.append(RollingResponse(total, len(tokens), evaluated, time.perf_counter() - t0))
            except Exception as e:
                out.append(RollingResponse(0.0, 0, 0, time.perf_counter() - t0, error=error_text(e)))
        return out


class _Scorer:
    """One item's generator and the tokens its KV cache holds."""

    def __init__(self, make: Callable[[int], Any], max_length: int) -> None:
        self._make = make
        self._max_length = max_length
        self.gen = make(max_length)
        self.held: list[int] = []

    def keep(self, n: int) -> int:
        """Cut the cache back to its first n tokens; returns how many are kept. A model whose state
        cannot be rewound (onnxruntime-genai refuses for some architectures) starts over instead."""
        if n < len(self.held):
            try:
                self.gen.rewind_to(n)
            except Exception:
                self.gen = self._make(self._max_length)
                n = 0
            del self.held[n:]
        return n


def _quant_from_name(name: str) -> str | None:
    low = name.lower()
    for q in ("int4", "int8", "fp16", "bf16", "fp32"):
        if q in low:
            return q
    return None
