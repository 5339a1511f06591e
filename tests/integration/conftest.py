"""Real models from PyPI; skipped with a clear reason when the `cpu` extra is not installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.catalog import MODELS


@pytest.fixture(scope="session")
def smollm2_path() -> str:
    pytest.importorskip("llama_cpp", reason="needs the cpu extra: pip install 'bench[cpu]'")
    return str(MODELS["smollm2-135m"].resolve())


@pytest.fixture(scope="session")
def smollm2(smollm2_path: str) -> Iterator[object]:
    from bench.backends.llamacpp import LlamaCppBackend

    b = LlamaCppBackend(smollm2_path, model_name="smollm2-135m", n_ctx=2048)
    yield b
    b.close()
