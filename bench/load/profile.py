"""Load levels and arrival times: what a sweep runs, in order, from the suite's `load:` block.

Open-loop rates draw inter-arrival gaps from a gamma distribution of shape `burstiness` and mean
1/rate (shape 1 is the exponential, i.e. Poisson arrivals; vLLM's `bench serve --burstiness` and
GuideLLM use the same family), seeded, so a rerun sends at the same instants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from bench.specs.load import LoadSpec

Kind = Literal["synchronous", "concurrency", "rate", "max"]


@dataclass(frozen=True)
class Level:
    kind: Kind
    value: float | None = None  # concurrency (requests in flight) or rate (requests/s)

    @property
    def label(self) -> str:
        """Short, stable, file-name safe: sync, c4, r0.5, max."""
        if self.kind == "synchronous":
            return "sync"
        if self.kind == "max":
            return "max"
        assert self.value is not None
        v = f"{self.value:g}"
        return f"c{v}" if self.kind == "concurrency" else f"r{v}"

    def in_flight(self, cap: int) -> int:
        """At most this many requests in flight."""
        if self.kind == "synchronous":
            return 1
        if self.kind == "concurrency":
            assert self.value is not None
            return min(int(self.value), cap)
        return cap


def levels(spec: LoadSpec, *, can_overlap: bool = True) -> list[Level]:
    """The sweep's levels in run order; an engine that cannot overlap requests gets the synchronous one."""
    out: list[Level] = [Level("synchronous")] if spec.synchronous or not can_overlap else []
    if not can_overlap:
        return out
    out += [Level("concurrency", float(c)) for c in spec.concurrencies]
    out += [Level("rate", float(r)) for r in spec.rates]
    out += [Level("max")] if spec.max else []
    return out


def arrival_times(
    n: int, rate: float, *, arrivals: str = "poisson", burstiness: float = 1.0, seed: int = 0
) -> npt.NDArray[np.float64]:
    """Send times (seconds from the level's start) of n requests at `rate` per second; the first at 0."""
    if n <= 0:
        return np.zeros(0)
    if rate <= 0:
        raise ValueError(f"rate must be > 0, got {rate!r}")
    if arrivals == "constant":
        gaps = np.full(n, 1.0 / rate)
    else:
        shape = 1.0 if arrivals == "poisson" else burstiness
        gaps = np.random.default_rng(seed).gamma(shape, 1.0 / (rate * shape), size=n)
    times = np.concatenate([[0.0], np.cumsum(gaps[:-1])])
    return np.asarray(times, dtype=np.float64)
