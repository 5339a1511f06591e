"""The load generator's own overhead, measured against bench.load.zero_server (a local server that
answers at once and stamps every event it sends on the shared perf_counter clock).

- stamp accuracy: how far the generator's timestamps sit from the server's. Per request,
  TTFT error = client TTFT - server TTFT (first piece sent - request read) and e2e error = client
  e2e - server e2e (last event sent - request read); per piece, the arrival minus its send stamp.
  Each is >= 0 up to clock noise (the loopback and the event loop's turn come on top of the
  server's own figure); reported as median and p99 in milliseconds.
- sustained rate: open-loop Poisson levels of rising rate (a fixed ladder, each a bounded number
  of requests); a rate is sustained when every request succeeds, the completed rate reaches 90%
  of the rate the schedule offered, and the lag behind the schedule does not grow: the median lag
  of the level's last third is within 5 ms of its first third's. A generator that cannot keep up
  starts each request later than the one before (the lag grows by seconds over a level); one that
  keeps up lags by its fixed cost per request (building it in httpx, 1-3 ms on a busy 2-core
  machine) plus the scheduler's preemptions (the p99, ~10 ms on a shared machine at any rate).

    python -m bench.load.overhead [--rates 25,50,...] [--seconds 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from bench.backends.base import GenerateRequest
from bench.load.client import Outcome, Target
from bench.load.generator import run_level
from bench.load.profile import Level

RATES = (25.0, 50.0, 100.0, 200.0, 400.0, 800.0)
MAX_REQUESTS = 2000  # per level, whatever the rate
DRIFT_S = 0.005
ACHIEVED_SHARE = 0.9


@contextlib.contextmanager
def zero_server(ttft_s: float = 0.0, itl_s: float = 0.0, start_timeout_s: float = 30.0) -> Iterator[str]:
    """bench.load.zero_server in its own process (its own core, as a real server would be); yields
    its base URL and always stops it."""
    cmd = [sys.executable, "-m", "bench.load.zero_server", "--port", "0"]
    cmd += ["--ttft-s", str(ttft_s), "--itl-s", str(itl_s)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + start_timeout_s
        line = ""
        while time.monotonic() < deadline and not line.startswith("port "):
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                raise RuntimeError(f"zero server exited {proc.returncode}")
        if not line.startswith("port "):
            raise RuntimeError("zero server did not report its port")
        yield f"http://127.0.0.1:{int(line.split()[1])}/v1"
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def requests(n: int, max_tokens: int) -> list[GenerateRequest]:
    return [GenerateRequest(str(k), f"request {k}", max_tokens=max_tokens) for k in range(n)]


def _ms(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return {"median_ms": math.nan, "p99_ms": math.nan, "max_ms": math.nan}
    return {
        "median_ms": float(np.median(x) * 1e3),
        "p99_ms": float(np.percentile(x, 99) * 1e3),
        "max_ms": float(x.max() * 1e3),
    }


def stamp_errors(outs: Sequence[Outcome]) -> dict[str, Any]:
    """Client timestamps against the server's stamps, from requests that succeeded with stamps."""
    ok = [o for o in outs if o.error is None and o.server_start is not None and o.first is not None]
    ttft = [(o.first - o.start) - (o.server_times[0] - o.server_start) for o in ok]  # type: ignore[operator]
    e2e = [(o.end - o.start) - (o.server_end - o.server_start) for o in ok]  # type: ignore[operator]
    pieces = [c - s for o in ok for c, s in zip(o.chunk_times, o.server_times, strict=True)]
    return {
        "requests": len(ok),
        "ttft_error": _ms(ttft),
        "e2e_error": _ms(e2e),
        "piece_lag": _ms(pieces),
        "client_ttft_s": [o.first - o.start for o in ok],  # type: ignore[operator]
    }


def rate_level(url: str, rate: float, n: int, *, max_tokens: int = 8, seed: int = 0) -> dict[str, Any]:
    """One open-loop Poisson level of n requests against the server at `url`."""
    target = Target(base_url=url, model="zero", chat=False)
    t0 = time.perf_counter()
    outs = asyncio.run(
        run_level(Level("rate", rate), requests(n, max_tokens), target, seed=seed, timeout_s=30.0)
    )
    wall = time.perf_counter() - t0
    done = [o for o in outs if o.error is None]
    scheduled = np.array([o.scheduled for o in outs])
    offered = (len(outs) - 1) / float(scheduled.max() - scheduled.min()) if len(outs) > 1 else math.nan
    span = max(o.end for o in outs) - min(o.start for o in outs) if outs else math.nan
    achieved = len(done) / span if span and span > 0 else math.nan
    lag = np.array([o.start - o.scheduled for o in outs])
    lag_p50 = float(np.median(lag)) if lag.size else math.nan
    lag_p99 = float(np.percentile(lag, 99)) if lag.size else math.nan
    third = max(1, lag.size // 3)
    drift = float(np.median(lag[-third:]) - np.median(lag[:third])) if lag.size else math.nan
    sustained = len(done) == n == len(outs) and achieved >= ACHIEVED_SHARE * offered and drift <= DRIFT_S
    return {
        "rate": rate,
        "requests": n,
        "errors": n - len(done),
        "offered_per_s": offered,
        "achieved_per_s": achieved,
        "schedule_lag_p50_ms": lag_p50 * 1e3,
        "schedule_lag_drift_ms": drift * 1e3,
        "schedule_lag_p99_ms": lag_p99 * 1e3,
        "sustained": bool(sustained),
        "wall_s": wall,
        "stamps": stamp_errors(outs),
    }


def measure(
    rates: Sequence[float] = RATES,
    *,
    seconds: float = 2.0,
    accuracy_rate: float = 20.0,
    accuracy_requests: int = 200,
    max_tokens: int = 8,
    ttft_s: float = 0.0,
) -> dict[str, Any]:
    """Stamp accuracy at a model-like rate, then the rate ladder until a rate is not sustained."""
    with zero_server(ttft_s=ttft_s) as url:
        rate_level(url, accuracy_rate, 10, max_tokens=max_tokens)  # warm-up: imports, first connections
        accuracy = rate_level(url, accuracy_rate, accuracy_requests, max_tokens=max_tokens, seed=1)
        ladder = []
        for r in sorted(rates):
            n = max(10, min(MAX_REQUESTS, int(r * seconds)))
            lv = rate_level(url, r, n, max_tokens=max_tokens, seed=2)
            ladder.append(lv)
            if not lv["sustained"]:
                break
    best = max((lv["rate"] for lv in ladder if lv["sustained"]), default=0.0)
    return {"accuracy": accuracy, "ladder": ladder, "max_sustained_per_s": best}


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The figures worth printing (no per-request lists)."""
    a = report["accuracy"]
    s = a["stamps"]
    top = next((lv for lv in report["ladder"] if lv["rate"] == report["max_sustained_per_s"]), None)
    return {
        "accuracy_rate_per_s": a["rate"],
        "ttft_error_median_ms": s["ttft_error"]["median_ms"],
        "ttft_error_p99_ms": s["ttft_error"]["p99_ms"],
        "e2e_error_median_ms": s["e2e_error"]["median_ms"],
        "e2e_error_p99_ms": s["e2e_error"]["p99_ms"],
        "piece_lag_p99_ms": s["piece_lag"]["p99_ms"],
        "max_sustained_per_s": report["max_sustained_per_s"],
        "achieved_at_max_per_s": top["achieved_per_s"] if top else math.nan,
        "ttft_error_p99_at_max_ms": top["stamps"]["ttft_error"]["p99_ms"] if top else math.nan,
        "first_unsustained": next((lv["rate"] for lv in report["ladder"] if not lv["sustained"]), None),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default=",".join(f"{r:g}" for r in RATES))
    ap.add_argument("--seconds", type=float, default=2.0, help="per ladder level")
    ap.add_argument("--json", help="write the full report here")
    a = ap.parse_args(argv)
    report = measure([float(r) for r in a.rates.split(",")], seconds=a.seconds)
    for lv in report["ladder"]:
        print(
            f"rate {lv['rate']:g}/s: achieved {lv['achieved_per_s']:.1f}/s of {lv['offered_per_s']:.1f} "
            f"offered, schedule lag p50/p99 {lv['schedule_lag_p50_ms']:.2f}/{lv['schedule_lag_p99_ms']:.2f} ms "
            f"(drift {lv['schedule_lag_drift_ms']:.2f}), "
            f"TTFT error p99 {lv['stamps']['ttft_error']['p99_ms']:.3f} ms, "
            f"{'sustained' if lv['sustained'] else 'NOT sustained'}"
        )
    print(json.dumps(summary(report), indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
