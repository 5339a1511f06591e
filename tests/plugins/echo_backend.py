"""A backend added from outside bench, in one file: it answers every prompt with the prompt's last word.

It registers itself when imported (an entry point of group `bench.plugins`, or $BENCH_PLUGINS); nothing
under bench/ names it. Used by tests/unit/test_plugins.py, the way the README's "Extending bench" says.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from bench.backends.base import (
    GenerateRequest,
    GenerateResponse,
    LoglikelihoodRequest,
    LoglikelihoodResponse,
    ModelInfo,
    RollingRequest,
    RollingResponse,
)
from bench.errors import BackendError
from bench.registry import BackendPlugin, register_backend
from bench.specs import ModelSpecBase


class EchoSpec(ModelSpecBase):
    """What a suite may say for this backend (its `models:` entry)."""

    backend: Literal["echo"]
    upper: bool = Field(default=False, description="answer in capitals")


class EchoBackend:
    name = "echo"

    def __init__(self, spec: EchoSpec) -> None:
        self.spec = spec

    def info(self) -> ModelInfo:
        return ModelInfo(name=self.spec.name, backend=self.name, loglikelihood=False)

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[GenerateResponse]:
        out = []
        for r in reqs:
            t0 = time.perf_counter()
            words = r.prompt.split()
            text = words[-1] if words else ""
            out.append(
                GenerateResponse(
                    text=text.upper() if self.spec.upper else text,
                    input_tokens=len(words),
                    output_tokens=1,
                    ttft_s=None,
                    latency_s=time.perf_counter() - t0,
                    finish_reason="stop",
                )
            )
        return out

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResponse]:
        raise BackendError("echo gives no log-likelihoods")

    def loglikelihood_rolling(self, reqs: Sequence[RollingRequest]) -> list[RollingResponse]:
        raise BackendError("echo gives no log-likelihoods")

    def close(self) -> None:
        pass


register_backend(
    BackendPlugin(
        name="echo",
        spec=EchoSpec,
        factory=lambda spec, seed: EchoBackend(spec),
        probe=lambda: (True, "answers with the prompt's last word (a test plugin)"),
        resources=lambda spec: {"num_cpus": 0.5, "num_gpus": 0.0},
    )
)
