"""Can a backend run here, and if not, why and what to install? Answered without importing engines
(vLLM and torch imports take seconds); only cheap probes."""

from __future__ import annotations

import importlib.util
import os
import shutil


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _gpu() -> str | None:
    """The NVIDIA GPU's presence, by the driver's files: no CUDA import needed."""
    if os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi"):
        return "nvidia"
    return None


def check(name: str) -> tuple[bool, str]:
    if name == "llamacpp":
        if _has("llama_cpp"):
            return True, "llama-cpp-python: GGUF models in process on CPU"
        return False, "llama-cpp-python is not installed: pip install 'bench[cpu]'"
    if name == "openai":
        if _has("httpx"):
            return (
                True,
                "any OpenAI-compatible server (vLLM serve, llama.cpp server, Ollama, TGI, NIM, hosted APIs)",
            )
        return False, "httpx is not installed: pip install 'bench[openai]'"
    if name == "transformers":
        missing = [m for m in ("torch", "transformers") if not _has(m)]
        if missing:
            return False, f"{' and '.join(missing)} not installed: pip install 'bench[transformers]'"
        return True, "torch + transformers on " + ("CPU or CUDA" if _gpu() else "CPU (no GPU here)")
    if name == "vllm":
        if not _has("vllm"):
            return False, "vllm is not installed: pip install 'bench[vllm]' (Linux with an NVIDIA GPU)"
        if not _gpu():
            return (
                False,
                "vllm is installed but there is no NVIDIA GPU here; use `vllm serve` + the openai backend",
            )
        return True, "vLLM in process on the GPU"
    if name == "onnxruntime-genai":
        if _has("onnxruntime_genai"):
            return True, "ONNX Runtime GenAI model folders (genai_config.json)"
        return False, "onnxruntime-genai is not installed: pip install 'bench[onnx]'"
    if name == "fake":
        return True, "scripted model for testing the harness itself"
    return False, "unknown backend"
