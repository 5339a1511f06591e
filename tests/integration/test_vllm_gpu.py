"""vLLM in process on a real GPU: the one place the vLLM backend meets the real engine.

Runs only where a CUDA GPU is visible and `vllm` imports; the model comes from the Hugging Face
hub (or a local folder) named by BENCH_VLLM_TEST_MODEL, default Qwen/Qwen2.5-0.5B-Instruct.
BENCH_VLLM_TEST_GPU_UTIL sets the share of GPU memory vLLM may reserve (default 0.5).
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.backends.base import GenerateRequest, LoglikelihoodRequest, RollingRequest

pytestmark = [
    pytest.mark.gpu,
    # torch and vLLM emit import-time deprecation warnings bench does not control: reported, not raised
    pytest.mark.filterwarnings("default"),
]

MODEL = os.environ.get("BENCH_VLLM_TEST_MODEL", "Qwen/Qwen2.5-0.5B-Instruct")
MAX_MODEL_LEN = 2048


def _require_gpu_and_vllm() -> None:
    if not (os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi")):
        pytest.skip("needs a CUDA GPU: no NVIDIA driver here")
    torch = pytest.importorskip(
        "torch", reason="needs torch and vLLM: pip install 'bench[vllm]' on a GPU machine"
    )
    # device_count() counts through NVML: unlike is_available(), it does not initialize CUDA in this
    # process, which would break the workers vLLM forks.
    if torch.cuda.device_count() < 1:
        pytest.skip("needs a CUDA GPU: torch sees none here")
    pytest.importorskip("vllm", reason="needs vLLM: pip install 'bench[vllm]' (Linux, NVIDIA GPU)")


def _require_model() -> None:
    """Fetch the model's config first, so an offline machine skips with the reason instead of
    failing deep inside vLLM's engine process."""
    if Path(MODEL).is_dir():
        return
    try:
        from huggingface_hub import hf_hub_download

        hf_hub_download(MODEL, "config.json")
    except Exception as e:
        pytest.skip(
            f"cannot fetch {MODEL} from the Hugging Face hub ({type(e).__name__}); this test needs the hub "
            "or BENCH_VLLM_TEST_MODEL pointing at a local model folder"
        )


@pytest.fixture(scope="module")
def backend() -> Iterator[Any]:
    _require_gpu_and_vllm()
    _require_model()
    from bench.backends.vllm import VLLMBackend
    from bench.specs.models import VLLMSpec

    spec = VLLMSpec(
        name="vllm-test",
        backend="vllm",
        model=MODEL,
        gpu_memory_utilization=float(os.environ.get("BENCH_VLLM_TEST_GPU_UTIL", "0.5")),
        max_model_len=MAX_MODEL_LEN,
        enforce_eager=True,  # no CUDA-graph capture: a faster start for a short test
    )
    b = VLLMBackend.from_spec(spec, seed=1234)
    yield b
    b.close()


def test_info(backend: Any) -> None:
    info = backend.info()
    assert (info.backend, info.device, info.n_ctx, info.loglikelihood) == (
        "vllm",
        "cuda",
        MAX_MODEL_LEN,
        True,
    )
    assert info.extra["vllm_version"] != "unknown"


def test_loglikelihood_ranks_the_right_continuation_first(backend: Any) -> None:
    france = "The capital of France is"
    sky = "On a clear day, the color of the sky is"
    reqs = [
        LoglikelihoodRequest("france", ((france, " Paris"), (france, " potato"))),
        LoglikelihoodRequest("sky", ((sky, " granite"), (sky, " blue"))),  # right answer second
    ]
    out = backend.loglikelihood(reqs)
    for resp in out:
        assert resp.error is None, resp.error
        assert all(math.isfinite(x) and x < 0 for x in resp.logliks)
        assert resp.tokens_evaluated >= resp.input_tokens > 0
        assert resp.latency_s > 0
    assert out[0].logliks[0] > out[0].logliks[1]
    assert out[1].logliks[1] > out[1].logliks[0]
    assert out[0].is_greedy[1] is False  # " potato" is not what the model expects


def test_one_request_at_a_time_matches_the_batch(backend: Any) -> None:
    reqs = [
        LoglikelihoodRequest(str(i), ((ctx, " yes"), (ctx, " no")))
        for i, ctx in enumerate(["Is water wet? Answer:", "Is fire cold? Answer:", "Is 2 even? Answer:"])
    ]
    batched = backend.loglikelihood(reqs)
    before = backend.concurrency
    backend.concurrency = 1
    try:
        single = backend.loglikelihood(reqs)
    finally:
        backend.concurrency = before
    for a, b in zip(batched, single, strict=True):
        assert a.error is None and b.error is None
        assert a.logliks == pytest.approx(b.logliks, abs=0.1)  # bf16 numerics vary with batch shape


def test_generate_respects_stop_and_max_tokens(backend: Any) -> None:
    counting = GenerateRequest("count", "1, 2, 3, 4, 5, 6,", max_tokens=40, stop=(",",))
    capped = GenerateRequest("cap", "Once upon a time", max_tokens=4)
    out = backend.generate([counting, capped])
    for resp in out:
        assert resp.error is None, resp.error
        assert resp.input_tokens > 0
        assert resp.ttft_s is not None, "vLLM gave no request metrics (built with disable_log_stats=False)"
        assert 0 < resp.ttft_s <= resp.latency_s
    assert "," not in out[0].text
    assert out[0].finish_reason == "stop" and out[0].output_tokens < 40
    assert 0 < out[1].output_tokens <= 4


def test_generate_with_the_chat_template(backend: Any) -> None:
    if not backend.info().chat_template:
        pytest.skip(f"{MODEL} has no chat template")
    req = GenerateRequest("chat", "", max_tokens=8, messages=(("user", "Reply with one word: hello"),))
    (resp,) = backend.generate([req])
    assert resp.error is None, resp.error
    assert resp.text.strip() and resp.output_tokens <= 8


def test_loglikelihood_rolling(backend: Any) -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 3
    (resp,) = backend.loglikelihood_rolling([RollingRequest("fox", text)])
    assert resp.error is None, resp.error
    assert resp.tokens > 0 and resp.tokens_evaluated >= resp.tokens
    assert math.isfinite(resp.loglik) and resp.loglik < 0
