"""The async load generator: sends a level's requests on its schedule and times every piece.

- synchronous: one request at a time, the next when the last one ends;
- concurrency N: a closed loop, N requests in flight, a new one as soon as one ends;
- rate R: an open loop, requests sent at seeded arrival times whether or not earlier ones have
  finished (bench.load.profile), at most `max_in_flight` at once (a request waiting for a slot
  starts late, and its `start - scheduled` shows it);
- max: every request at once, capped by `max_in_flight`.

Bounded: `requests` per level, no new request after `duration_s`, each request cut after
`timeout_s`, and a level ends at most `timeout_s` after its last start.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import httpx

from bench.backends.base import GenerateRequest
from bench.load.client import Outcome, Target, stream_one
from bench.load.profile import Level, arrival_times


async def _timed(
    client: httpx.AsyncClient, target: Target, req: GenerateRequest, out: Outcome, timeout_s: float
) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            await stream_one(client, target, req, out)
    except TimeoutError:
        out.timed_out, out.error = True, f"timed out after {timeout_s:g} s"
        if out.end != out.end:  # cancelled before its `finally` ran
            out.end = time.perf_counter()


async def run_level(
    level: Level,
    reqs: Sequence[GenerateRequest],
    target: Target,
    *,
    seed: int = 0,
    arrivals: str = "poisson",
    burstiness: float = 1.0,
    duration_s: float | None = None,
    timeout_s: float = 60.0,
    max_in_flight: int = 256,
) -> list[Outcome]:
    """Every request of the level that was sent, in send order (requests after `duration_s` are not)."""
    clock = time.perf_counter
    width = level.in_flight(max_in_flight)
    async with target.client(width, timeout_s) as client:
        t0 = clock()
        deadline = t0 + duration_s if duration_s is not None else float("inf")
        outs: list[Outcome] = []
        if level.kind == "rate":
            assert level.value is not None
            at = arrival_times(len(reqs), level.value, arrivals=arrivals, burstiness=burstiness, seed=seed)
            slots = asyncio.Semaphore(width)

            async def one(k: int) -> None:
                async with slots:
                    await _timed(client, target, reqs[k], outs[k], timeout_s)

            tasks = []
            for k, req in enumerate(reqs):
                when = t0 + float(at[k])
                if when > deadline:
                    break
                delay = when - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                outs.append(Outcome(k, req.item_id, scheduled=when))
                tasks.append(asyncio.create_task(one(k)))
            await asyncio.gather(*tasks)
            return outs

        queue = list(enumerate(reqs))
        queue.reverse()

        async def worker() -> None:
            while queue and clock() <= deadline:
                k, req = queue.pop()
                out = Outcome(k, req.item_id, scheduled=clock())
                outs.append(out)
                await _timed(client, target, req, out, timeout_s)

        await asyncio.gather(*(worker() for _ in range(min(width, len(reqs)))))
        outs.sort(key=lambda o: o.seq)
        return outs
