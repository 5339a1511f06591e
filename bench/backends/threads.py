"""`n_threads: auto`: the thread count an engine runs fastest with, measured on the spot.

No rule of thumb is right everywhere: on one 2-core VM llama.cpp with 2 threads ran ~10x slower than
with 1, on another 1.6x faster. So at load time a short fixed workload is timed for each candidate
count (best of a few tries) and the fastest wins; near-ties go to fewer threads (they leave cores to
the rest of the machine and suffer less from a noisy neighbour). The result is cached per (model
file, machine, process): a worker probes once, not once per task.

The engine supplies the workload as a callable (`measure(n) -> seconds`), so this module is plain
Python, tested without any engine.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "AUTO",
    "ThreadProbe",
    "ThreadSetting",
    "candidates",
    "physical_cores",
    "pick",
    "probe",
    "probe_cached",
]

AUTO: Literal["auto"] = "auto"
ThreadSetting = int | Literal["auto"]

# Relative margin under which two timings count as a tie (fewer threads win). The probe runs on
# shared machines; a 3% gap between counts is inside their noise.
TIE = 0.03


@dataclass(frozen=True)
class ThreadProbe:
    """What the probe measured: the count it chose and each tried count's best time (seconds)."""

    chosen: int
    timings: dict[int, float]
    tokens: int  # tokens evaluated by one try of the workload
    probe_s: float  # wall time of the whole probe

    def describe(self) -> str:
        """Per-count timings as one short string, e.g. '1:0.412 2:0.251' (seconds, best of tries)."""
        return " ".join(f"{n}:{t:.3f}" for n, t in sorted(self.timings.items()))


def physical_cores() -> int:
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:  # pragma: no cover - psutil is a dependency
        return os.cpu_count() or 1


def candidates(cores: int) -> list[int]:
    """1..cores on small machines; on large ones 1-4, the powers of two and cores-1 / cores
    (probing 64 counts one by one would take longer than it saves)."""
    if cores <= 8:
        return list(range(1, cores + 1))
    out = {1, 2, 3, 4, cores - 1, cores}
    k = 8
    while k < cores:
        out.add(k)
        k *= 2
    return sorted(out)


def pick(timings: Mapping[int, float], tie: float = TIE) -> int:
    """The fastest count; a count within `tie` (relative) of the fastest that uses fewer threads
    wins over it."""
    if not timings:
        raise ValueError("no timings to pick a thread count from")
    best = min(timings.values())
    return min(n for n, t in timings.items() if t <= best * (1 + tie))


def probe(
    measure: Callable[[int, float | None], float],
    counts: Sequence[int],
    *,
    tokens: int,
    repeats: int = 3,
    budget_s: float = 3.0,
    give_up: float = 2.0,
    clock: Callable[[], float] = time.perf_counter,
) -> ThreadProbe:
    """Time `measure(n, cap)` (one try of the workload with n threads, in seconds) for every count,
    in rounds (1, 2, ..., 1, 2, ...: a neighbour's burst of load hits all counts alike), keeping
    each count's best. Up to `repeats` rounds; no new round starts once `budget_s` has passed, but
    the first round always completes, so every count is measured at least once.

    `cap` is `give_up` x the best time so far (None for the first try): `measure` may stop a try
    that has run past it and return the time it took so far (a lower bound, and a loser anyway).
    On a loaded 2-core VM one try with 2 threads took 11 s against 0.8 s with 1."""
    t0 = clock()
    timings: dict[int, float] = {}
    for r in range(repeats):
        if r and clock() - t0 > budget_s:
            break
        for n in counts:
            cap = give_up * min(timings.values()) if timings else None
            t = measure(n, cap)
            timings[n] = min(t, timings.get(n, t))
    return ThreadProbe(chosen=pick(timings), timings=timings, tokens=tokens, probe_s=clock() - t0)


_CACHE: dict[tuple[str, int, int, str, int, str], ThreadProbe] = {}


def probe_cached(path: Path, variant: str, run: Callable[[], ThreadProbe]) -> tuple[ThreadProbe, bool]:
    """`run()`'s probe for this model file on this machine in this process, computed once.
    `variant` names anything else the timings depend on (e.g. a fixed n_threads_batch).
    Returns the probe and whether it came from the cache."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, platform.node(), os.getpid(), variant)
    if key in _CACHE:
        return _CACHE[key], True
    result = run()
    _CACHE[key] = result
    return result, False
