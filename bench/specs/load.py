"""The suite's `load:` block: which load levels a sweep runs and the latency targets (SLOs) that
goodput counts. Light to import (pydantic only); run by bench.load."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from bench.specs.base import Strict


class SLO(Strict):
    """Latency targets; a request meets the SLO when it meets every target named here."""

    ttft_s: float | None = Field(default=None, gt=0, description="time to first token")
    itl_s: float | None = Field(
        default=None, gt=0, description="the request's mean inter-token latency (TPOT)"
    )
    e2e_s: float | None = Field(default=None, gt=0, description="end-to-end latency")
    attainment: float = Field(
        default=0.9, gt=0, le=1, description="share of a level's requests that must meet it"
    )

    def named(self) -> dict[str, float]:
        return {k: v for k, v in (("ttft_s", self.ttft_s), ("itl_s", self.itl_s), ("e2e_s", self.e2e_s)) if v}


class LoadSpec(Strict):
    """A sweep of load levels, run in this order: synchronous, each concurrency, each rate, max."""

    synchronous: bool = Field(default=True, description="one request at a time")
    concurrencies: list[int] = Field(default_factory=list, description="closed loop: N requests in flight")
    rates: list[float] = Field(default_factory=list, description="open loop: requests per second")
    max: bool = Field(default=False, description="every request at once (capped by max_in_flight)")
    arrivals: Literal["poisson", "gamma", "constant"] = "poisson"
    burstiness: float = Field(
        default=1.0, gt=0, description="gamma shape: 1 is Poisson, below 1 burstier, above 1 steadier"
    )
    requests: int | None = Field(default=None, ge=1, description="per level; default: the task's items")
    duration_s: float | None = Field(
        default=None, gt=0, description="per level: no new request starts after this"
    )
    seed: int | None = Field(default=None, description="arrival times; default: the suite seed")
    timeout_s: float = Field(default=60.0, gt=0, description="per request, from its start")
    max_in_flight: int = Field(default=256, ge=1, description="cap on requests in flight at any level")
    warmup: int = Field(default=1, ge=0, description="requests sent before the sweep, not stored")
    alpha: float = Field(default=0.05, gt=0, lt=1, description="accuracy-changes-with-load test")
    slo: SLO = SLO()

    @model_validator(mode="after")
    def _some_level(self) -> LoadSpec:
        if not (self.synchronous or self.concurrencies or self.rates or self.max):
            raise ValueError("no load level: set synchronous, concurrencies, rates or max")
        if any(c < 1 for c in self.concurrencies) or any(r <= 0 for r in self.rates):
            raise ValueError("concurrencies must be >= 1 and rates > 0")
        if self.arrivals != "gamma" and self.burstiness != 1.0:
            raise ValueError("burstiness needs arrivals: gamma")
        return self
