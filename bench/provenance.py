"""What produced a result: versions, code revision and hardware, stored with every row."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import bench

PACKAGES = (
    "bench",
    "llama-cpp-python",
    "numpy",
    "pyarrow",
    "pandas",
    "pydantic",
    "scipy",
    "lm-eval",
    "torch",
    "transformers",
    "vllm",
)


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


@functools.cache
def git_sha() -> str | None:
    """The commit of the bench source tree, with '+dirty' when it has local changes."""
    src = Path(bench.__file__).resolve().parent.parent
    if not (src / ".git").exists():
        return None
    try:
        sha = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("+dirty" if dirty else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def hardware_info() -> dict[str, Any]:
    try:
        import psutil

        mem_gb = round(psutil.virtual_memory().total / 2**30, 1)
        phys = psutil.cpu_count(logical=False)
    except ImportError:  # pragma: no cover
        mem_gb, phys = None, None
    return {
        "cpu": _cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_physical": phys,
        "memory_gb": mem_gb,
        "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "gpu": None,
    }


def hardware_label(name: str = "auto") -> str:
    if name != "auto":
        return name
    h = hardware_info()
    return f"cpu-{h['cores_logical']}c-{h['memory_gb']:.0f}g-{h['machine']}"


def python_version() -> str:
    return sys.version.split()[0]
