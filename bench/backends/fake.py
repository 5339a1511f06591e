"""A scripted backend for testing the harness itself (runner, store, resume, reports).

It never stands in for a real engine: its answers are a seeded function of the item, so tests of
the plumbing are deterministic and fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import time
from collections.abc import Iterator, Mapping, Sequence

from bench.backends.base import (
    GenerateRequest,
    GenerateResponse,
    LoglikelihoodRequest,
    LoglikelihoodResponse,
    ModelInfo,
    RollingRequest,
    RollingResponse,
)


def _unit(*parts: str) -> float:
    h = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


class FakeBackend:
    name = "fake"

    def __init__(
        self,
        model_name: str,
        *,
        accuracy: float = 0.5,
        fail_items: Sequence[str] = (),
        delay_s: float = 0.0,
        crash_items: Sequence[str] = (),
        hold_mb: Mapping[str, float] | None = None,
    ) -> None:
        self.model_name = model_name
        self.accuracy = accuracy
        self.fail_items = set(fail_items)
        self.delay_s = delay_s
        self.crash_items = set(crash_items)
        self.hold_mb = dict(hold_mb or {})  # per request kind: memory to hold (tests of memory figures)
        self.gold: dict[str, int] = {}  # set by tests that want a controlled accuracy

    def info(self) -> ModelInfo:
        return ModelInfo(name=self.model_name, backend=self.name, params=1_000_000, quant="none")

    def close(self) -> None:
        pass

    @contextlib.contextmanager
    def _holding(self, kind: str) -> Iterator[None]:
        """Keep `hold_mb[kind]` MB resident (written, so the pages are real) while one request is
        answered, and at least 0.4 s, so a 20 ms RSS sampler sees it even on a loaded machine (0.1 s
        was missed with the test suite and other jobs sharing two cores); freed afterwards."""
        mb = self.hold_mb.get(kind, 0.0)
        if mb <= 0:
            yield
            return
        block = bytearray(b"\x01") * int(mb * 2**20)
        try:
            time.sleep(0.4)
            yield
        finally:
            del block

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResponse]:
        out = []
        for r in reqs:
            t0 = time.perf_counter()
            with self._holding("loglikelihood"):
                if self.delay_s:
                    time.sleep(self.delay_s)
            if r.item_id in self.crash_items:  # a hard crash, as an engine segfault or the OOM killer does
                os.kill(os.getpid(), signal.SIGKILL)
            if r.item_id in self.fail_items:
                out.append(
                    LoglikelihoodResponse([], [], [], 0, 0, time.perf_counter() - t0, error="fake failure")
                )
                continue
            lls = [-1.0 - 5 * _unit(self.model_name, r.item_id, c + x) for c, x in r.pairs]
            # "gold:<i>" in the item id lets harness tests plant the right answer.
            gold = int(r.item_id.rsplit("gold:", 1)[1]) if "gold:" in r.item_id else None
            if gold is not None and _unit(self.model_name, r.item_id, "acc") < self.accuracy:
                lls[gold] = max(lls) + 0.5
            n = [max(1, len(x) // 4) for _, x in r.pairs]
            out.append(
                LoglikelihoodResponse(
                    logliks=lls,
                    is_greedy=[False] * len(lls),
                    continuation_tokens=n,
                    input_tokens=len(r.pairs[0][0]) // 4 + sum(n),
                    tokens_evaluated=len(r.pairs[0][0]) // 4 + sum(n),
                    latency_s=time.perf_counter() - t0,
                )
            )
        return out

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[GenerateResponse]:
        out = []
        for r in reqs:
            t0 = time.perf_counter()
            if r.item_id in self.fail_items:
                out.append(GenerateResponse("", 0, 0, None, 0.0, error="fake failure"))
                continue
            with self._holding("generate"):
                words = ["answer", " ", str(int(_unit(self.model_name, r.item_id) * 100))]  # a token each
            finish = "length" if r.max_tokens < len(words) else "stop"
            words = words[: r.max_tokens]
            out.append(
                GenerateResponse(
                    "".join(words), len(r.prompt) // 4, len(words), 0.0, time.perf_counter() - t0, finish
                )
            )
        return out

    def loglikelihood_rolling(self, reqs: Sequence[RollingRequest]) -> list[RollingResponse]:
        out = []
        for r in reqs:
            if r.item_id in self.fail_items:
                out.append(RollingResponse(0.0, 0, 0, 0.0, error="fake failure"))
                continue
            with self._holding("rolling"):
                n = max(1, len(r.text) // 4)
            out.append(RollingResponse(-n * (1.0 + _unit(self.model_name, r.item_id)), n, n, 0.0))
        return out
