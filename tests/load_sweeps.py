"""Real load sweeps for tests: bench's zero-latency server (bench.load.zero_server) on 127.0.0.1
with fixed delays, optionally with a number of slots (requests beyond them wait, as on a server
that answers N at a time), swept by `bench load`'s own run_sweep into a real store.

`two_model_sweep` writes the sweep the Load page tests read: "small" answers fast but one request
at a time, "large" slower but any number at once, so at low load small has the higher goodput
and at concurrency 8 its queue pushes it out of the SLO while large keeps serving: they cross.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.config import parse_suite
from bench.load.sweep import SweepResult, run_sweep

# The zero server with at most `slots` requests answered at once (0: no limit); prints "port N".
_SERVER = """
import asyncio, sys
from bench.load.zero_server import ZeroServer

ttft, itl, slots, answer = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

class Slotted(ZeroServer):
    async def _stream(self, *args, **kwargs):
        if not slots:
            return await super()._stream(*args, **kwargs)
        if not hasattr(self, "free"):
            self.free = asyncio.Semaphore(slots)
        async with self.free:
            await super()._stream(*args, **kwargs)

async def main():
    srv = Slotted(ttft, itl, answer)
    server = await asyncio.start_server(srv.handle, "127.0.0.1", 0, backlog=1024)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""

ANSWERS = ("ruby red wine dark", "sky blue sea deep")  # four pieces, no shared word: F1 is 0 or 1


@contextlib.contextmanager
def zero_server(ttft_s: float, itl_s: float, *, slots: int = 0, answer: str = ANSWERS[0]) -> Iterator[str]:
    """A zero server in its own process group; yields its base URL (…/v1); stopped at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(ttft_s), str(itl_s), str(slots), answer],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        line = proc.stdout.readline().decode() if sel.select(timeout=30) else ""
        sel.close()
        if not line.startswith("port "):
            raise RuntimeError(f"zero server did not start: {line!r} {proc.stdout.read1(4000)!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}/v1"
    finally:
        proc.terminate()  # one process (python -c), no children
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def qa_items(path: Path, n: int = 12) -> Path:
    """Questions whose reference is one of ANSWERS: two in three red, one in three blue."""
    rows = [
        {"id": f"q{i:02d}", "question": f"What colour is item {i}?", "answer": ANSWERS[i % 3 == 0]}
        for i in range(n)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def sweep_suite(
    name: str, data: Path, models: list[dict[str, Any]], load: dict[str, Any], usd_per_hour: float = 3.6
) -> dict[str, Any]:
    return {
        "name": name,
        "defaults": {"seed": 7},
        "hardware": {"name": "test-box", "usd_per_hour": usd_per_hour},
        "models": [{"backend": "openai", "model": "zero", "max_retries": 0, **m} for m in models],
        "tasks": [{"name": "colours", "kind": "qa", "dataset": {"path": str(data)}, "chat": "never"}],
        "load": load,
    }


SLO = {"ttft_s": 0.35, "e2e_s": 1.0}


def two_model_sweep(root: Path, data: Path) -> SweepResult:
    """small: TTFT 40 ms, 20 ms gaps (0.1 s a request), one slot; large: TTFT 150 ms, 30 ms gaps
    (0.24 s), no limit. Levels sync, c2, c8 of 16 requests; SLO TTFT <= 0.35 s and e2e <= 1 s."""
    load = {"concurrencies": [2, 8], "requests": 16, "slo": SLO, "timeout_s": 20}
    with (
        zero_server(0.04, 0.02, slots=1, answer=ANSWERS[1]) as small,
        zero_server(0.15, 0.03, answer=ANSWERS[0]) as large,
    ):
        models = [
            {"name": "small", "base_url": small, "params": 135_000_000},
            {"name": "large", "base_url": large, "params": 70_000_000_000},
        ]
        return run_sweep(parse_suite(sweep_suite("serving", data, models, load)), root)
