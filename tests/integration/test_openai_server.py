"""The openai backend for real, against llama.cpp's OpenAI-compatible server started here on
127.0.0.1 with the catalog GGUF models: multiple choice, generation, streaming TTFT, the same
predictions as the in-process backend, and the failure paths (server down, killed mid-run,
responses slower than the timeout); the API key never reaches results or logs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from bench import store
from bench.config import parse_suite
from bench.runner import NullDisplay, execute, plan_run
from tests.integration import leaks

pytestmark = pytest.mark.slow
pytest.importorskip(
    "llama_cpp.server", reason="needs the server extra: pip install 'llama-cpp-python[server]'"
)

KEY = "sk-bench-test-7f3a9c1e55d2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    def __init__(self, model_path: str, log: Path, api_key: str | None = None) -> None:
        self.port = _free_port()
        cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            model_path,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_threads",
            "1",
            "--n_threads_batch",
            "1",
            "--n_ctx",
            "2048",
            "--logits_all",
            "true",
            "--interrupt_requests",
            "false",
        ]
        if api_key:
            cmd += ["--api_key", api_key]
        self.log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}/v1"
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if (
                    httpx.get(
                        f"{self.url}/models", timeout=2, headers={"Authorization": f"Bearer {api_key}"}
                    ).status_code
                    == 200
                ):
                    return
            except httpx.HTTPError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"llama.cpp server did not start; see {log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def gemma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    from bench.catalog import MODELS

    s = LlamaServer(str(MODELS["gemma3-270m"].resolve()), tmp_path_factory.mktemp("srv") / "gemma.log")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def smollm2_server(tmp_path_factory: pytest.TempPathFactory, smollm2_path: str) -> Iterator[LlamaServer]:
    s = LlamaServer(smollm2_path, tmp_path_factory.mktemp("srv") / "smollm2.log", api_key=KEY)
    yield s
    s.stop()


def _run(
    tmp: Path, models: list[dict[str, Any]], tasks: list[dict[str, Any]], limit: int = 8
) -> tuple[Any, pd.DataFrame]:
    suite = parse_suite(
        {
            "name": "api",
            "defaults": {"limit": limit, "seed": 2, "batch_size": 4},
            "models": models,
            "tasks": tasks,
        }
    )
    plan = plan_run(suite, tmp)
    result = execute(plan, NullDisplay(), executor="inline")
    return result, store.samples_dataset(tmp).to_table().to_pandas()


SHORT_MCQ = [
    ("The capital of France is", ["Paris", "London", "Berlin"], 0),
    ("Two plus two equals", ["four", "seven", "twelve"], 0),
    ("The opposite of hot is", ["cold", "loud", "green"], 0),
    ("Water freezes at zero degrees", ["Celsius", "Kelvin"], 0),
    ("A baby cat is called a", ["kitten", "puppy", "calf"], 0),
    ("The sun rises in the", ["east", "west"], 0),
]


def test_loglikelihood_mcq_through_the_server_predicts_like_the_in_process_backend(
    gemma_server: LlamaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gemma (it has a BOS token, so the server's echoed log-probs are aligned). Short items: the
    server sorts the whole 262k vocabulary per prompt token in Python, ~0.3 s a token."""
    data = tmp_path / "short.jsonl"
    data.write_text("\n".join(json.dumps({"q": q, "c": c, "a": a}) for q, c, a in SHORT_MCQ) + "\n")
    models = [
        {"name": "gemma-local", "backend": "llamacpp", "path": str(_gemma())},
        {
            "name": "gemma-api",
            "backend": "openai",
            "preset": "llamacpp-server",
            "model": "gemma",
            "base_url": gemma_server.url,
            "max_concurrency": 2,
        },
    ]
    task = {
        "name": "short",
        "kind": "mcq",
        "dataset": {"path": str(data)},
        "prompt": "{{ question }}",
        "fields": {"question": "q", "choices": "c", "answer": "a"},
    }
    result, s = _run(tmp_path / "out", models, [task], limit=len(SHORT_MCQ))
    assert not result.model_errors
    local = s[s.model == "gemma-local"].set_index("item_id").sort_index()
    api = s[s.model == "gemma-api"].set_index("item_id").sort_index()
    assert (api["method"] == "loglikelihood").all() and len(api) == len(SHORT_MCQ)
    assert list(local["pred_index"]) == list(api["pred_index"])
    assert local["score"].mean() >= 0.5  # the model knows most of these
    # The engine's numbers depend slightly on how a prompt is split into batches (Gemma 3 is
    # sensitive); in-process scoring shares each item's context, the server evaluates each prompt.
    for a, b in zip(local["choice_logliks"], api["choice_logliks"], strict=True):
        assert list(a) == pytest.approx(list(b), abs=0.25)


def test_letter_form_and_generation_through_the_server_match_in_process(
    smollm2_server: LlamaServer, smollm2_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SmolLM2 has no BOS token, and llama-cpp-python's server then shifts echoed log-probs by one:
    bench detects it and asks multiple choice generatively; greedy letters match in-process ones."""
    monkeypatch.setenv("BENCH_TEST_KEY", KEY)
    models = [
        {"name": "smol-local", "backend": "llamacpp", "path": smollm2_path},
        {
            "name": "smol-api",
            "backend": "openai",
            "preset": "llamacpp-server",
            "model": "smol",
            "base_url": smollm2_server.url,
            "api_key_env": "BENCH_TEST_KEY",
        },
    ]
    tasks = [
        {"name": "arc_letter", "kind": "mcq", "dataset": "arc_easy", "method": "generate", "chat": "never"},
        {"name": "arc_auto", "kind": "mcq", "dataset": "arc_easy", "limit": 3},
        {"name": "gsm", "kind": "math", "dataset": "gsm8k", "max_tokens": 24, "chat": "never", "limit": 3},
    ]
    result, s = _run(tmp_path, models, tasks, limit=6)
    assert not result.model_errors
    assert s["error"].isna().all(), s[s.error.notna()][["model", "task", "error"]]
    local = s[(s.model == "smol-local")].set_index(["task", "item_id"]).sort_index()
    api = s[(s.model == "smol-api")].set_index(["task", "item_id"]).sort_index()
    assert list(api.loc["arc_auto", "method"]) == ["generate_letter"] * 3  # fell back, and says so
    for task in ("arc_letter", "gsm"):
        assert list(local.loc[task, "raw_output"]) == list(api.loc[task, "raw_output"]), task
    gen = api.loc["gsm"]
    assert (gen["ttft_s"] > 0).all() and (gen["ttft_s"] <= gen["latency_s"]).all()
    assert (gen["output_tokens"] > 0).all()
    # llama-cpp-python's server sends no `usage` in streams: prompt tokens are unknown, not invented
    assert gen["input_tokens"].isna().all()


def test_chat_endpoint_streams(smollm2_server: LlamaServer) -> None:
    from bench.backends.base import GenerateRequest
    from bench.backends.openai import OpenAIBackend

    b = OpenAIBackend(
        model_name="smol", model="smol", base_url=smollm2_server.url, api_key=KEY, endpoint="chat"
    )
    out = b.generate([GenerateRequest("c", "x", max_tokens=16, messages=(("user", "Say hello."),))])[0]
    assert out.error is None and out.text and out.ttft_s is not None and out.ttft_s < out.latency_s
    b.close()


def test_server_down_is_a_model_error(tmp_path: Path) -> None:
    port = _free_port()
    models = [
        {"name": "down", "backend": "openai", "model": "x", "base_url": f"http://127.0.0.1:{port}/v1"},
        {"name": "ok", "backend": "fake", "accuracy": 1.0},
    ]
    result, s = _run(tmp_path, models, [{"name": "arc", "kind": "mcq", "dataset": "arc_easy"}], limit=3)
    assert "cannot reach" in result.model_errors["down"]
    assert set(s.model) == {"ok"}


def test_server_killed_mid_run_and_slow_responses_become_item_errors(
    smollm2_path: str, tmp_path: Path
) -> None:
    srv = LlamaServer(smollm2_path, tmp_path / "srv.log")
    try:
        from bench.backends.base import GenerateRequest
        from bench.backends.openai import OpenAIBackend

        slow = OpenAIBackend(
            model_name="s", model="s", base_url=srv.url, api_key=None, timeout_s=0.05, max_retries=1
        )
        out = slow.generate([GenerateRequest("t", "Write a long story about the sea.", max_tokens=200)])[0]
        assert out.error is not None and "timed out after 0.05 s" in out.error and "2 attempts" in out.error
        slow.close()

        b = OpenAIBackend(
            model_name="s", model="s", base_url=srv.url, api_key=None, max_retries=1, timeout_s=30
        )
        first = b.generate([GenerateRequest("a", "Hello", max_tokens=4)])[0]
        assert first.error is None
        srv.stop()  # killed mid-run
        after = b.generate([GenerateRequest("b", "Hello", max_tokens=4)])[0]
        assert after.error is not None and "attempts" in after.error
        b.close()
    finally:
        srv.stop()


def test_api_key_never_reaches_results_or_logs(smollm2_server: LlamaServer, tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: secret\n"
        "defaults: {limit: 3}\n"
        "models:\n"
        f"  - {{name: api, backend: openai, model: smol, base_url: '{smollm2_server.url}', api_key_env: BENCH_SECRET}}\n"
        f"  - {{name: wrong-key, backend: openai, model: smol, base_url: '{smollm2_server.url}', api_key_env: BENCH_WRONG}}\n"
        "tasks:\n"
        "  - {name: arc, kind: mcq, dataset: arc_easy}\n"
        "  - {name: gsm, kind: math, dataset: gsm8k, max_tokens: 8}\n"
    )
    env = {**__import__("os").environ, "BENCH_SECRET": KEY, "BENCH_WRONG": KEY[::-1]}
    out = tmp_path / "results"
    p = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", str(suite), "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert p.returncode == 1, p.stderr[-2000:]  # the wrong key is that model's error
    runs = store.runs_dataset(out).to_table().to_pandas()
    assert (runs[runs.model == "api"]["status"] == "ok").all()
    assert "refused the API key" in str(runs[runs.model == "wrong-key"]["error"].iloc[0])
    # every column of every Parquet file decoded, every other file as text, pieces of a key too
    # (tests/integration/test_secrets.py covers a server that echoes the key in its errors)
    hits = leaks.find([out], [KEY, KEY[::-1]], p.stdout, p.stderr)
    assert not hits, "\n".join(hits)


def _gemma() -> Path:
    from bench.catalog import MODELS

    return MODELS["gemma3-270m"].resolve()
