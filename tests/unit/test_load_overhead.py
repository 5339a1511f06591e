"""The load generator's overhead figures come from real stamps: hand-made outcomes give known
errors, and against the zero-latency server (its own process, a fixed TTFT delay) every figure
respects the order that causality imposes on one shared clock. No timing goals here: those are in
`nox -s perf` (tests/perf/run_perf.py, load section)."""

from __future__ import annotations

import math

import pytest

from bench.load.client import Outcome
from bench.load.overhead import rate_level, stamp_errors, summary, zero_server


def _out(
    seq: int, start: float, first: float, end: float, s0: float, sends: list[float], arrivals: list[float]
):
    o = Outcome(seq, str(seq), scheduled=start, start=start, first=first, end=end)
    o.server_start, o.server_times, o.server_end = s0, sends, sends[-1] + 0.0001
    o.chunk_times = arrivals
    o.finish_reason = "length"
    return o


def test_errors_are_client_minus_server_figures() -> None:
    # a: client TTFT 10.3 ms vs the server's 10.0 (first send - read): 0.3 ms; e2e 20.5 vs 20.1
    # (its last stamp + 0.1): 0.4 ms; pieces arrive 0.2 and 0.3 ms after their send stamps
    a = _out(0, 1.0, 1.0103, 1.0205, 1.0001, [1.0101, 1.0201], [1.0103, 1.0204])
    # b: TTFT 11.1 vs 10.0: 1.1 ms; e2e 20.4 vs 20.1: 0.3 ms; pieces 1.0 and 0.4 ms
    b = _out(1, 2.0, 2.0111, 2.0204, 2.0001, [2.0101, 2.0201], [2.0111, 2.0205])
    failed = Outcome(2, "2", scheduled=3.0, start=3.0, end=3.5)
    failed.error = "HTTP 500"
    got = stamp_errors([a, b, failed])
    assert got["requests"] == 2
    assert got["ttft_error"]["median_ms"] == pytest.approx((0.3 + 1.1) / 2, abs=1e-6)
    assert got["ttft_error"]["max_ms"] == pytest.approx(1.1, abs=1e-6)
    assert got["e2e_error"]["median_ms"] == pytest.approx((0.4 + 0.3) / 2, abs=1e-6)
    assert got["piece_lag"]["median_ms"] == pytest.approx((0.3 + 0.4) / 2, abs=1e-6)
    assert got["piece_lag"]["max_ms"] == pytest.approx(1.0, abs=1e-6)
    assert math.isnan(stamp_errors([failed])["ttft_error"]["p99_ms"])


def test_against_the_zero_server_with_a_fixed_ttft_delay() -> None:
    delay = 0.05
    with zero_server(ttft_s=delay) as url:
        lv = rate_level(url, 50.0, 12, max_tokens=4)
    s = lv["stamps"]
    assert lv["errors"] == 0 and s["requests"] == 12
    # the server sleeps `delay` before its first piece: the client cannot see it sooner
    assert min(s["client_ttft_s"]) >= delay
    # one clock, causal order: the client sends before the server reads, and receives after it sends
    assert s["ttft_error"]["median_ms"] >= 0 and s["e2e_error"]["median_ms"] >= 0
    assert s["piece_lag"]["median_ms"] >= 0
    # the server's TTFT (from its stamps) holds the delay, so the error is not the delay itself
    assert s["ttft_error"]["median_ms"] < delay * 1e3
    assert lv["offered_per_s"] > 0 and lv["achieved_per_s"] > 0


def test_summary_reports_the_highest_sustained_rate() -> None:
    stamps = stamp_errors([])
    ladder = [
        {"rate": 25.0, "sustained": True, "achieved_per_s": 24.0, "stamps": stamps},
        {"rate": 50.0, "sustained": True, "achieved_per_s": 48.0, "stamps": stamps},
        {"rate": 100.0, "sustained": False, "achieved_per_s": 61.0, "stamps": stamps},
    ]
    got = summary(
        {"accuracy": {"rate": 20.0, "stamps": stamps}, "ladder": ladder, "max_sustained_per_s": 50.0}
    )
    assert got["max_sustained_per_s"] == 50.0 and got["achieved_at_max_per_s"] == 48.0
    assert got["first_unsustained"] == 100.0


def test_every_stamp_keeps_the_causal_order_of_one_clock() -> None:
    """Per request: stamped 'sent' before the server read it, each piece after the server sent it, the
    end after the server's last event (a 'sent' stamp taken once the body was written failed the
    first, by ~0.2 ms: the server had already read it)."""
    import asyncio

    from bench.load.client import Target
    from bench.load.generator import run_level
    from bench.load.overhead import requests
    from bench.load.profile import Level

    with zero_server(ttft_s=0.002, itl_s=0.001) as url:
        t = Target(base_url=url, model="zero", chat=False)
        outs = asyncio.run(run_level(Level("concurrency", 4.0), requests(24, 5), t))
    assert len(outs) == 24 and all(o.error is None for o in outs)
    for o in outs:
        assert o.server_start is not None and o.server_end is not None and o.first is not None
        assert o.scheduled <= o.start < o.server_start
        assert len(o.chunk_times) == len(o.server_times) == 5 == o.output_tokens
        assert all(c > s for c, s in zip(o.chunk_times, o.server_times, strict=True))
        assert o.first == o.chunk_times[0] and o.server_end < o.end
