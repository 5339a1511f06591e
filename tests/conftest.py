"""Shared fixtures. Tests never touch the user's ~/.cache or ./results."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One cache per test session (datasets are materialized once); BENCH_CACHE_DIR may point at a
    persistent cache to reuse between sessions."""
    if "BENCH_CACHE_DIR" not in os.environ:
        os.environ["BENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("bench-cache"))
    yield


@pytest.fixture(autouse=True)
def _keep_main_module() -> Iterator[None]:
    """Streamlit's AppTest runs the app as a fake `__main__` module (its file the app script) and
    never puts the real one back. A process spawned later in the same pytest process would then
    re-run the dashboard script as its main module and die (exit 1) before doing its work: the
    CI failures of the worker, math-budget and memory tests that ran after tests/dashboard."""
    main = sys.modules.get("__main__")
    yield
    if main is not None and sys.modules.get("__main__") is not main:
        sys.modules["__main__"] = main


@pytest.fixture
def mcq_jsonl(tmp_path: Path) -> Path:
    """A small custom multiple-choice dataset; the id plants the gold answer for the fake backend."""
    p = tmp_path / "items.jsonl"
    rows = []
    for i in range(23):
        gold = i % 3
        rows.append(
            {
                "id": f"q{i:02d}-gold:{gold}",
                "q": f"What is item {i}?",
                "opts": ["a", "bb", "ccc"],
                "label": gold,
            }
        )
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return p


def fake_suite(
    data: Path,
    *,
    models: list[dict[str, object]] | None = None,
    limit: int | None = None,
    batch_size: int = 4,
) -> dict[str, object]:
    return {
        "name": "harness",
        "defaults": {"limit": limit, "seed": 3, "batch_size": batch_size},
        "hardware": {"name": "test-box", "usd_per_hour": 3.6},
        "models": models
        or [
            {"name": "perfect", "backend": "fake", "accuracy": 1.0},
            {"name": "coin", "backend": "fake", "accuracy": 0.0},
        ],
        "tasks": [
            {
                "name": "custom",
                "kind": "mcq",
                "dataset": {"path": str(data)},
                "fields": {"id": "id", "question": "q", "choices": "opts", "answer": "label"},
            }
        ],
    }


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp
