"""Load profiles: the levels a `load:` block asks for, seeded arrival times, the suite field and
the command line's overrides."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bench.config import parse_suite
from bench.errors import ConfigError
from bench.load.cli import with_load
from bench.load.profile import Level, arrival_times, levels
from bench.specs.load import SLO, LoadSpec

SUITE: dict[str, Any] = {
    "name": "s",
    "models": [{"name": "m", "backend": "fake"}],
    "tasks": [{"name": "t", "kind": "math", "dataset": "gsm8k"}],
}


def test_levels_in_run_order_with_stable_labels() -> None:
    spec = LoadSpec(concurrencies=[2, 8], rates=[0.5, 3], max=True)
    got = levels(spec)
    assert [lv.label for lv in got] == ["sync", "c2", "c8", "r0.5", "r3", "max"]
    assert [lv.in_flight(4) for lv in got] == [1, 2, 4, 4, 4, 4]  # capped by max_in_flight


def test_an_engine_that_cannot_overlap_gets_the_synchronous_level_only() -> None:
    spec = LoadSpec(synchronous=False, concurrencies=[4], rates=[2])
    assert levels(spec, can_overlap=False) == [Level("synchronous")]
    assert [lv.label for lv in levels(spec)] == ["c4", "r2"]


@pytest.mark.parametrize(
    ("arrivals", "burstiness", "cv"),
    [("poisson", 1.0, 1.0), ("gamma", 0.25, 2.0), ("gamma", 4.0, 0.5), ("constant", 1.0, 0.0)],
)
def test_arrival_gaps_have_the_asked_mean_and_burstiness(arrivals: str, burstiness: float, cv: float) -> None:
    t = arrival_times(40_000, 4.0, arrivals=arrivals, burstiness=burstiness, seed=7)
    gaps = np.diff(t)
    assert t[0] == 0.0 and np.all(gaps >= 0)
    assert gaps.mean() == pytest.approx(0.25, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(cv, abs=0.05)  # gamma shape k: CV = 1/sqrt(k)


def test_arrivals_are_seeded() -> None:
    a = arrival_times(50, 2.0, seed=1)
    assert np.array_equal(a, arrival_times(50, 2.0, seed=1))
    assert not np.array_equal(a, arrival_times(50, 2.0, seed=2))
    with pytest.raises(ValueError, match="rate"):
        arrival_times(3, 0.0)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"synchronous": False}, "no load level"),
        ({"rates": [1], "burstiness": 0.5}, "burstiness needs arrivals: gamma"),
        ({"concurrencies": [0]}, "concurrencies must be >= 1"),
        ({"slo": {"ttft_ms": 1}}, "unknown field"),
    ],
)
def test_bad_load_blocks_are_one_line_errors(block: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        parse_suite({**SUITE, "load": block}, "x.yaml")
    assert "\n" not in str(e.value) and "load" in str(e.value)


def test_a_suite_without_a_load_block_keeps_its_hash_and_one_with_it_changes_it() -> None:
    plain = parse_suite(SUITE)
    assert '"load"' not in plain.canonical_json()
    loaded = parse_suite({**SUITE, "load": {"rates": [1.0]}})
    assert loaded.load is not None and loaded.load.rates == [1.0]
    assert loaded.suite_hash() != plain.suite_hash()


def test_command_line_options_go_into_the_suite_and_its_hash() -> None:
    base = parse_suite({**SUITE, "load": {"concurrencies": [2], "slo": {"ttft_s": 1.0}}})
    s = with_load(base, {"rates": [0.5, 1.0], "concurrencies": None}, {"e2e_s": 3.0, "ttft_s": None})
    assert s.load is not None
    assert s.load.concurrencies == [2] and s.load.rates == [0.5, 1.0]
    assert s.load.slo == SLO(ttft_s=1.0, e2e_s=3.0)
    assert s.suite_hash() != base.suite_hash()
    with pytest.raises(ConfigError, match=r"load options: load\.timeout_s"):
        with_load(base, {"timeout_s": -1}, {})
    assert SLO(ttft_s=0.5, itl_s=0.05).named() == {"ttft_s": 0.5, "itl_s": 0.05}
