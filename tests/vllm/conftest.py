"""vLLM's CPU build lives in its own environment (`nox -s vllm`); the main session ignores this folder.

Under CI (the CI variable set, as .ci/run does) a missing vLLM fails these tests instead of skipping
them: a skip would keep CI green without vLLM ever running."""

from __future__ import annotations

import importlib.util
import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _needs_vllm() -> None:
    if importlib.util.find_spec("vllm") is not None:
        return
    why = "needs vLLM's CPU build: nox -s vllm"
    if os.environ.get("CI"):
        pytest.fail(f"{why} (CI is set, so the vLLM tests must run)", pytrace=False)
    pytest.skip(why)
