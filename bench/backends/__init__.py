"""Backends: one module per engine, created through one lazy registry.

Heavy engines are imported inside their factory, so `bench --help` and `bench validate` stay fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.backends.base import (
    Backend,
    GenerateRequest,
    GenerateResponse,
    LoglikelihoodRequest,
    LoglikelihoodResponse,
    ModelInfo,
)
from bench.registry import Registry

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

Factory = Callable[[Any, int], Backend]
BACKENDS: Registry[Factory] = Registry("backend")


@BACKENDS.register("llamacpp")
def _llamacpp(spec: Any, seed: int) -> Backend:
    from bench.backends.llamacpp import LlamaCppBackend
    from bench.catalog import MODELS

    meta: dict[str, Any] = {}
    path = spec.path
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


@BACKENDS.register("openai")
def _openai(spec: Any, seed: int) -> Backend:
    from bench.backends.openai import OpenAIBackend

    return OpenAIBackend.from_spec(spec, seed=seed)


@BACKENDS.register("vllm")
def _vllm(spec: Any, seed: int) -> Backend:
    from bench.backends.vllm import VLLMBackend

    return VLLMBackend.from_spec(spec, seed=seed)


@BACKENDS.register("transformers")
def _transformers(spec: Any, seed: int) -> Backend:
    from bench.backends.transformers import TransformersBackend

    return TransformersBackend.from_spec(spec, seed=seed)


@BACKENDS.register("onnxruntime-genai")
def _onnx(spec: Any, seed: int) -> Backend:
    from bench.backends.onnx_genai import OnnxGenAIBackend

    return OnnxGenAIBackend.from_spec(spec, seed=seed)


@BACKENDS.register("fake")
def _fake(spec: Any, seed: int) -> Backend:
    from bench.backends.fake import FakeBackend

    return FakeBackend(
        spec.name,
        accuracy=spec.accuracy,
        fail_items=spec.fail_items,
        delay_s=spec.delay_s,
        crash_items=spec.crash_items,
    )


def create_backend(spec: Any, seed: int) -> Backend:
    return BACKENDS.get(spec.backend)(spec, seed)


def backend_status() -> list[tuple[str, bool, str]]:
    """(name, usable here, why not / what to install) for `bench ls backends`. Nothing is loaded."""
    from bench.backends.availability import check

    return [(name, *check(name)) for name in BACKENDS]
