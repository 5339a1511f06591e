"""llama.cpp in process (llama-cpp-python).

Log-likelihood scoring drives the KV cache directly. Within an item, the tokens already in the
cache are kept (the longest common prefix), so the shared context is evaluated once for all
choices. Across items, only the request's item-independent `prefix` (few-shot examples) is kept,
and it is always computed the same way (decoded alone from position 0): every item then starts
from the same cache state whatever ran before it, so a result does not depend on the order of
items, on batching, or on a run being resumed. Logits are requested only for the positions that
predict continuation tokens. The row predicting an item's first continuation token is computed
once and reused by every choice, and a continuation's last token (whose logits would predict past
the end) is not run: ARC-Easy items evaluate 14% fewer tokens, ~1.2x faster, bit-identical scores.

This uses llama-cpp-python's `_ctx` / `_batch` internals, pinned by the `cpu` extra (0.3.36).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import math
import os
import time
from collections.abc import Iterator, Sequence
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
from bench.backends.threads import (
    AUTO,
    ThreadProbe,
    ThreadSetting,
    candidates,
    physical_cores,
    probe,
    probe_cached,
)
from bench.errors import BackendError, BackendUnavailable

INSTALL_HINT = "pip install 'bench[cpu]'"

# Log-likelihoods must not depend on how tokens are split into decode batches (a choice's
# continuation is decoded after its cached context, not in one pass with it). ggml's CPU K-quant
# kernels break that: weights repacked for its GEMM/GEMV (q4_K_8x8) and the tiled matmul (taken
# at >= 8 rows) each round a row differently by batch size. On Gemma-3-270M Q4_K_M (ARC-Easy,
# 25 items) either one left on gave up to 0.55 nats and flipped predictions; both off, the two
# evaluations agree exactly. The env switch is read once per process, at its first matmul.
os.environ.setdefault("GGML_CPU_TILED_MM", "0")


@contextlib.contextmanager
def _plain_weights(llama_cpp: Any) -> Iterator[None]:
    """Load without weight repacking (`use_extra_bufts`, which Llama() does not expose)."""
    low = llama_cpp.llama_cpp
    default = low.llama_model_default_params

    def params() -> Any:
        p = default()
        p.use_extra_bufts = False
        return p

    low.llama_model_default_params = params
    try:
        yield
    finally:
        low.llama_model_default_params = default


def log_softmax_rows(rows: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64, element for element what bench.backends.logits'
    log_softmax_pick computes for the rows it picks from."""
    x = rows.astype(np.float64, copy=False)
    m = x.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(x - m).sum(axis=1))
    return x - lse[:, None]


def _at_least_two(start: int, last: int) -> int:
    """Where a decode from `start` stops: before the last token (its logits would predict past the
    end), unless that leaves a one-token batch: ggml's one-row kernels round differently from its
    batched ones (Gemma-3 Q4_K_M: 0.015 nats on one ARC choice), so the last token comes along."""
    return last + 1 if last - start == 1 else last


def default_threads() -> int:
    """Physical cores minus one, at least one: the transformers backend's torch threads (llama.cpp
    measures instead: `n_threads: auto`)."""
    return max(1, physical_cores() - 1)


def _import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError as e:
        raise BackendUnavailable(
            "llamacpp", f"llama-cpp-python is not installed ({e})", INSTALL_HINT
        ) from None
    return llama_cpp


class LlamaCppBackend:
    name = "llamacpp"
    # Within an item, reuse the row predicting the first continuation token and skip each
    # continuation's last token (see _score); False: the plain path (perf A/B, tests).
    reuse_rows = True

    def __init__(
        self,
        path: str | Path,
        *,
        model_name: str,
        n_ctx: int = 2048,
        n_threads: ThreadSetting | None = AUTO,
        n_threads_batch: int | None = None,
        n_batch: int = 512,
        seed: int = 1234,
        meta: dict[str, Any] | None = None,
    ) -> None:
        llama_cpp = _import_llama()
        self._llama_cpp = llama_cpp
        self.path = Path(path)
        if not self.path.is_file():
            raise BackendError(f"{model_name}: model file not found: {self.path}")
        self.thread_probe: ThreadProbe | None = None
        self.probe_cached = False
        auto = n_threads is None or n_threads == AUTO
        # loaded with one thread when probing; the probe sets the count it picks
        self.n_threads = 1 if auto else int(n_threads)  # type: ignore[arg-type]
        self.n_threads_batch = n_threads_batch or self.n_threads
        self.model_name = model_name
        self.meta = meta or {}
        try:
            with _plain_weights(llama_cpp):
                self.llm = llama_cpp.Llama(
                    model_path=str(self.path),
                    n_ctx=n_ctx,
                    n_batch=n_batch,
                    n_ubatch=n_batch,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads_batch,
                    logits_all=False,
                    seed=seed,
                    verbose=False,
                )
        except Exception as e:  # llama.cpp raises ValueError on a corrupt or unsupported file
            raise BackendError(f"{model_name}: llama.cpp could not load {self.path}: {e}") from None
        self.n_ctx = self.llm.n_ctx()
        self.n_batch = int(self.llm.n_batch)  # llama-cpp-python caps it at n_ctx
        self.n_vocab = self.llm.n_vocab()
        self._kv: list[int] = []  # tokens currently held in the KV cache (sequence 0)
        self._canon: list[int] = []  # the item-independent prefix last decoded alone from position 0
        # (context tokens, log-softmax row predicting the token after them), see _score
        self._row: tuple[tuple[int, ...], np.ndarray] | None = None
        self._vocab = self.llm._model.vocab
        self.add_bos = bool(self.llm._model.add_bos_token())
        self._chat: Any = None
        template = self.llm.metadata.get("tokenizer.chat_template")
        if template:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            model = self.llm._model
            self._bos_text = model.token_get_text(model.token_bos()) if model.token_bos() >= 0 else ""
            eos_text = model.token_get_text(model.token_eos()) if model.token_eos() >= 0 else ""
            self._chat = Jinja2ChatFormatter(template, eos_token=eos_text, bos_token=self._bos_text)
        if auto:
            self._auto_threads(fixed_batch=n_threads_batch)

    # ------------------------------------------------------------------ info

    def info(self) -> ModelInfo:
        md = self.llm.metadata
        return ModelInfo(
            name=self.model_name,
            backend=self.name,
            params=int(self.llm._model.n_params()),
            quant=self.meta.get("quant") or _quant_from_metadata(md),
            file_size=self.path.stat().st_size,
            n_ctx=self.n_ctx,
            chat_template=self._chat is not None,
            device="cpu",
            family=self.meta.get("family") or md.get("general.architecture"),
            license=self.meta.get("license") or md.get("general.license"),
            extra=self._thread_facts(),
        )

    def _thread_facts(self) -> dict[str, str]:
        facts = {"n_threads": str(self.n_threads), "n_threads_batch": str(self.n_threads_batch)}
        if self.thread_probe is not None:
            p = self.thread_probe
            facts |= {
                "n_threads_source": "auto (cached probe)" if self.probe_cached else "auto",
                "thread_probe_s": p.describe(),
                "thread_probe_tokens": str(p.tokens),
                "thread_probe_wall_s": f"{p.probe_s:.2f}",
            }
        else:
            facts["n_threads_source"] = "suite"
        return facts

    # ------------------------------------------------------------------ threads

    def _set_threads(self, n: int, n_batch: int) -> None:
        self._llama_cpp.llama_set_n_threads(self.llm._ctx.ctx, n, n_batch)
        self.llm.n_threads, self.llm.n_threads_batch = n, n_batch

    def _probe_workload(self) -> tuple[list[int], list[list[int]]]:
        """A fixed scoring-shaped workload: a 40-token context, then four 6-token continuations
        scored after it through the same path as real items (~65 tokens: under a second on one
        core of a loaded 2-core VM)."""
        text = (
            "The committee met on a cold morning to decide where the new library would stand. "
            "Some wanted it near the river, others by the old market square, and a few argued "
            "that the school needed it most. After a long debate they chose the square because"
        )
        toks = self.tokenize(text, bos=True)
        while len(toks) < 64:
            toks += toks[1:]
        n_ctx = min(40, self.n_ctx // 2)
        ctx = toks[:n_ctx]
        conts = [toks[n_ctx + 6 * k : n_ctx + 6 * (k + 1)] for k in range(4)]
        return ctx, conts

    @contextlib.contextmanager
    def _deadline(self, seconds: float | None) -> Iterator[None]:
        """llama_decode aborts (ggml checks between graph nodes) once `seconds` have passed: a
        thread count that is losing badly (one 46-token decode took 10 s with 2 threads on a
        loaded 2-core VM, 0.4 s with 1) is stopped instead of waited for."""
        if seconds is None:
            yield
            return
        lib = self._llama_cpp.llama_cpp._lib
        kind = self._llama_cpp.ggml_abort_callback
        setter = lib.llama_set_abort_callback
        setter.argtypes = [ctypes.c_void_p, kind, ctypes.c_void_p]
        setter.restype = None
        from llama_cpp._utils import suppress_stdout_stderr

        end = time.perf_counter() + seconds
        callback = kind(lambda _data: time.perf_counter() > end)
        setter(self.llm._ctx.ctx, callback, None)
        try:
            with suppress_stdout_stderr(disable=False):  # an abort logs an error line
                yield
        finally:
            setter(self.llm._ctx.ctx, kind(), None)

    def _auto_threads(self, fixed_batch: int | None) -> None:
        """Measure the workload at each candidate count (best of 3, ~3 s at most) and keep the
        fastest; cached per model file, machine and process."""
        ctx, conts = self._probe_workload()
        evaluated = [0]

        def once(n: int, cap: float | None) -> float:
            self._set_threads(n, fixed_batch or n)
            self.llm._ctx.kv_cache_seq_rm(-1, 0, -1)
            self._kv, self._canon, self._row = [], [], None
            t0 = time.perf_counter()
            try:
                with self._deadline(cap):
                    evaluated[0] = sum(self._score(ctx, cont)[2] for cont in conts)
            except RuntimeError:  # aborted past the cap: losing already
                pass
            return time.perf_counter() - t0

        def run() -> ThreadProbe:
            self._set_threads(1, fixed_batch or 1)
            self._decode(ctx[:4], 0, 4)  # warm-up: the first pass pages the weights in (mmap)
            counts = candidates(physical_cores())
            got = probe(once, counts, tokens=0, repeats=3, budget_s=3.0)
            return dataclasses.replace(got, tokens=evaluated[0])

        try:
            self.thread_probe, self.probe_cached = probe_cached(self.path, f"batch={fixed_batch}", run)
        finally:
            self.llm._ctx.kv_cache_seq_rm(-1, 0, -1)
            self._kv, self._canon, self._row = [], [], None
        self.n_threads = self.thread_probe.chosen
        self.n_threads_batch = fixed_batch or self.n_threads
        self._set_threads(self.n_threads, self.n_threads_batch)

    def close(self) -> None:
        self.llm.close()

    # ------------------------------------------------------------------ tokens

    def tokenize(self, text: str, *, bos: bool) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=bos and self.add_bos, special=False))

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        bos = self.llm.token_bos()
        start = bos if bos >= 0 else self.llm.token_eos()
        return encode_pair(lambda t: self.tokenize(t, bos=True), context, continuation, start)

    # ------------------------------------------------------------------ scoring

    def _decode(
        self, tokens: Sequence[int], start: int, want_from: int, *, upto: int | None = None
    ) -> tuple[float, bool]:
        """Run tokens[start:upto] after the cached prefix (upto: default all). Positions >= want_from
        (but the last of `tokens`) predict the token after them: returns the sum of those tokens'
        log-probabilities and whether each was the argmax."""
        vals, greedy = self._decode_rows(tokens, start, want_from, upto=upto)
        return math.fsum(vals), greedy

    def _decode_rows(
        self,
        tokens: Sequence[int],
        start: int,
        want_from: int,
        *,
        upto: int | None = None,
        keep: int | None = None,
    ) -> tuple[list[float], bool]:
        """`_decode`'s work: each wanted position's log-probability of its next token, in order
        (summed with math.fsum by the callers, so a total does not depend on how rows were
        batched). `keep`: a position whose whole log-softmax row is kept in `self._row` (the row
        every continuation of one context starts from). Logits are read in place, a few rows at a
        time, never all at once (a 2k-token window of a 262k-vocabulary model would otherwise take
        gigabytes)."""
        ctx = self.llm._ctx
        batch = self.llm._batch
        end = len(tokens) if upto is None else upto
        ctx.kv_cache_seq_rm(-1, start, -1)
        self._kv = list(tokens[:start])
        last = len(tokens) - 1  # its logits would predict past the end
        vals: list[float] = []
        greedy = True
        for i in range(start, end, self.n_batch):
            chunk = tokens[i : min(i + self.n_batch, end)]
            b = batch.batch
            b.n_tokens = len(chunk)
            wanted = []
            for j, tok in enumerate(chunk):
                pos = i + j
                b.token[j] = tok
                b.pos[j] = pos
                b.seq_id[j][0] = 0
                b.n_seq_id[j] = 1
                flag = want_from <= pos < last
                b.logits[j] = flag
                if flag:
                    wanted.append(pos)
            ctx.decode(batch)
            self._kv.extend(chunk)
            if wanted:
                view = np.ctypeslib.as_array(ctx.get_logits(), shape=(len(wanted), self.n_vocab))
                targets = np.asarray([tokens[p + 1] for p in wanted])
                for k in range(0, len(wanted), 32):
                    lp = log_softmax_rows(view[k : k + 32])
                    idx = targets[k : k + 32]
                    vals.extend(lp[np.arange(len(idx)), idx].tolist())
                    greedy = greedy and bool(np.all(lp.argmax(axis=1) == idx))
                    if keep is not None and wanted[k] <= keep < wanted[k] + len(idx):
                        self._row = (tuple(tokens[: keep + 1]), lp[keep - wanted[k]].copy())
        return vals, greedy

    def _start_item(self, prefix: str, first_tokens: list[int]) -> int:
        """Put the cache in its canonical state for a new item: exactly the item-independent prefix,
        decoded alone from position 0. Returns the tokens that took (0 when it was cached).

        The prefix's own tokens may end differently inside the full text ("\n\n" alone is one
        token, "\n\nQuestion" splits as "\n", "\n", "Question"): the common token prefix is used."""
        p = self.tokenize(prefix, bos=True) if prefix else []
        k = 0
        for a, b in zip(p, first_tokens, strict=False):
            if a != b:
                break
            k += 1
        canon = p[:k]
        if canon and self._canon == canon and self._kv[: len(canon)] == canon:
            self.llm._ctx.kv_cache_seq_rm(-1, len(canon), -1)
            self._kv = list(canon)
            return 0
        self.llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        self._kv = []
        self._canon = canon
        if canon:
            self._decode(canon, 0, len(canon))  # no logits needed
        return len(canon)

    def _score(self, ctx_tokens: list[int], cont_tokens: list[int]) -> tuple[float, bool, int]:
        """One continuation after its context. Within an item the context is in the cache and the
        row predicting the first continuation token is kept: a later continuation of the same
        context evaluates only its own tokens but the last (whose logits would predict past the
        end), so a one-token continuation costs no decode at all."""
        tokens = ctx_tokens + cont_tokens
        if len(tokens) > self.n_ctx:
            raise BackendError(f"request of {len(tokens)} tokens exceeds n_ctx={self.n_ctx}")
        first = len(ctx_tokens) - 1  # position whose logits predict the first continuation token
        last = len(tokens) - 1
        common = 0
        for a, b in zip(self._kv, tokens, strict=False):
            if a != b:
                break
            common += 1
        row = self._row
        if self.reuse_rows and row is not None and common > first and row[0] == tuple(ctx_tokens):
            head = float(row[1][cont_tokens[0]])
            greedy0 = int(row[1].argmax()) == cont_tokens[0]
            start = first + 1
            upto = _at_least_two(start, last)
            vals, greedy = self._decode_rows(tokens, start, start, upto=upto)
            return math.fsum([head, *vals]), greedy0 and greedy, upto - start
        start = min(common, first)
        if self.reuse_rows:
            upto = _at_least_two(start, last)
            vals, greedy = self._decode_rows(tokens, start, first, upto=upto, keep=first)
            return math.fsum(vals), greedy, upto - start
        ll, greedy = self._decode(tokens, start, first)
        return ll, greedy, len(tokens) - start

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResponse]:
        out = []
        for req in reqs:
            t0 = time.perf_counter()
            try:
                lls, greedy, ntoks = [], [], []
                distinct: set[tuple[int, ...]] = set()
                encoded = [self.encode_pair(c, x) for c, x in req.pairs]
                evaluated = self._start_item(req.prefix, encoded[0][0] + encoded[0][1]) if encoded else 0
                for (_, continuation), (ctx, cont) in zip(req.pairs, encoded, strict=True):
                    if not cont:
                        raise BackendError(f"continuation {continuation!r} encodes to no tokens")
                    ll, g, n_eval = self._score(ctx, cont)
                    lls.append(ll)
                    greedy.append(g)
                    ntoks.append(len(cont))
                    evaluated += n_eval
                    distinct.add(tuple(ctx))
                input_tokens = sum(len(c) for c in distinct) + sum(ntoks)
                out.append(
                    LoglikelihoodResponse(
                        logliks=lls,
                        is_greedy=greedy,
                        continuation_tokens=ntoks,
                        input_tokens=input_tokens,
                        tokens_evaluated=evaluated,
                        latency_s=time.perf_counter() - t0,
                    )
                )
            except Exception as e:
                self._kv = []
                out.append(failed_loglikelihood(error_text(e), time.perf_counter() - t0))
        return out

    # ------------------------------------------------------------------ generation

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[GenerateResponse]:
        return [self._generate_one(r) for r in reqs]

    def render_chat(self, messages: Sequence[tuple[str, str]]) -> str:
        """The prompt text the model's own chat template makes of the messages."""
        if self._chat is None:
            raise BackendError(f"{self.model_name} has no chat template; use chat: never")
        out = self._chat(messages=[{"role": r, "content": c} for r, c in messages])
        return str(out.prompt)

    def _prompt_tokens(self, req: GenerateRequest) -> list[int]:
        if req.messages is None:
            return self.tokenize(req.prompt, bos=True)
        text = self.render_chat(req.messages)
        bos = self.add_bos and not (self._bos_text and text.startswith(self._bos_text))
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=bos, special=True))

    def _generate_one(self, req: GenerateRequest) -> GenerateResponse:
        t0 = time.perf_counter()
        try:
            prompt = self._prompt_tokens(req)
            if len(prompt) + req.max_tokens > self.n_ctx:
                raise BackendError(
                    f"prompt of {len(prompt)} tokens + max_tokens {req.max_tokens} exceeds n_ctx={self.n_ctx}"
                )
            # Canonical start (the few-shot prefix alone, or nothing), then llama-cpp-python reuses it.
            self._start_item(req.prefix if req.messages is None else "", prompt)
            self.llm.n_tokens = len(self._kv)
            self.llm.input_ids[: len(self._kv)] = self._kv
            out: list[int] = []
            ttft: float | None = None
            finish = "length"
            text = ""
            gen = self.llm.generate(prompt, temp=req.temperature, top_k=1 if req.temperature == 0 else 40)
            for tok in gen:
                if ttft is None:
                    ttft = time.perf_counter() - t0
                if self._llama_cpp.llama_vocab_is_eog(self._vocab, tok):
                    finish = "stop"
                    break
                out.append(tok)
                text = self.llm.detokenize(out, prev_tokens=prompt).decode("utf-8", errors="ignore")
                cut = first_stop(text, req.stop)
                if cut is not None:
                    text = text[:cut]
                    finish = "stop"
                    break
                if len(out) >= req.max_tokens:
                    break
            gen.close()
            self._kv = list(self.llm.input_ids[: self.llm.n_tokens])
            return GenerateResponse(
                text=text,
                input_tokens=len(prompt),
                output_tokens=len(out),
                ttft_s=ttft,
                latency_s=time.perf_counter() - t0,
                finish_reason=finish,
            )
        except Exception as e:
            self._kv = []
            self.llm.reset()
            return failed_generation(error_text(e), time.perf_counter() - t0)

    # ------------------------------------------------------------------ whole texts

    def loglikelihood_rolling(self, reqs: Sequence[RollingRequest]) -> list[RollingResponse]:
        """lm-eval's rolling windows with context_len=1 (`rolling_windows`), each window at most
        n_ctx tokens (context and continuation are evaluated together)."""
        out = []
        for req in reqs:
            t0 = time.perf_counter()
            try:
                tokens = self.tokenize(req.text, bos=False)
                if not tokens:
                    raise BackendError("text encodes to no tokens")
                bos = self.llm.token_bos()
                prefix = bos if bos >= 0 else self.llm.token_eos()
                total, evaluated = 0.0, 0
                for ctx, cont in rolling_windows(tokens, prefix, self.n_ctx - 1):
                    ll, _, n_eval = self._score(ctx, cont)
                    total += ll
                    evaluated += n_eval
                out.append(RollingResponse(total, len(tokens), evaluated, time.perf_counter() - t0))
            except Exception as e:
                self._kv = []
                out.append(RollingResponse(0.0, 0, 0, time.perf_counter() - t0, error=error_text(e)))
        return out


_FTYPES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    32: "BF16",
}


def _quant_from_metadata(md: dict[str, str]) -> str | None:
    ft = md.get("general.file_type")
    if ft is None:
        return None
    try:
        return _FTYPES.get(int(ft), f"ftype{ft}")
    except ValueError:
        return ft
