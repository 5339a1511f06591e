"""`n_threads: auto`: the picker, the probe loop, its cache and the suite field (no engine needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.backends import threads
from bench.backends.threads import ThreadProbe, candidates, pick, probe, probe_cached
from bench.config import parse_suite
from bench.errors import ConfigError


@pytest.mark.parametrize(
    ("timings", "chosen"),
    [
        ({1: 0.40, 2: 0.25}, 2),  # the AMD VM: 2 threads faster
        ({1: 0.07, 2: 0.70}, 1),  # the Intel VM: 2 threads 10x slower
        ({1: 0.9, 2: 0.5, 3: 0.3, 4: 0.6}, 3),  # argmin in the middle
        ({1: 0.30, 2: 0.30}, 1),  # exact tie: fewer threads
        ({1: 0.300, 2: 0.295}, 1),  # within the 3% tie band: fewer threads
        ({1: 0.300, 2: 0.280}, 2),  # outside it: the faster count
        ({4: 0.2, 2: 0.2, 8: 0.1}, 8),  # order of the mapping does not matter
        ({3: 0.5}, 3),
    ],
)
def test_pick_is_the_argmin_and_ties_go_to_fewer_threads(timings: dict[int, float], chosen: int) -> None:
    assert pick(timings) == chosen


def test_pick_with_no_tie_band_and_no_timings() -> None:
    assert pick({1: 0.300, 2: 0.299}, tie=0.0) == 2
    with pytest.raises(ValueError, match="no timings"):
        pick({})


@pytest.mark.parametrize(
    ("cores", "expected"),
    [
        (1, [1]),
        (2, [1, 2]),
        (8, [1, 2, 3, 4, 5, 6, 7, 8]),
        (16, [1, 2, 3, 4, 8, 15, 16]),
        (64, [1, 2, 3, 4, 8, 16, 32, 63, 64]),
    ],
)
def test_candidates_cover_one_to_cores(cores: int, expected: list[int]) -> None:
    assert candidates(cores) == expected


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_probe_keeps_each_counts_best_try_and_picks_from_them() -> None:
    clock = FakeClock()
    tries = {1: [0.50, 0.40, 0.45], 2: [0.30, 0.60, 0.35], 3: [0.31, 0.33, 0.32]}
    calls: list[int] = []

    def measure(n: int, cap: float | None) -> float:
        calls.append(n)
        t = tries[n][sum(1 for c in calls if c == n) - 1]
        clock.t += t
        return t

    p = probe(measure, [1, 2, 3], tokens=96, repeats=3, budget_s=100, clock=clock)
    assert calls == [1, 2, 3, 1, 2, 3, 1, 2, 3]  # rounds over the counts, in increasing order
    assert p.timings == {1: 0.40, 2: 0.30, 3: 0.31}
    assert p.chosen == 2 and p.tokens == 96
    assert p.probe_s == pytest.approx(sum(sum(v) for v in tries.values()))
    assert p.describe() == "1:0.400 2:0.300 3:0.310"


def test_probe_stops_starting_rounds_past_its_budget_but_measures_every_count() -> None:
    clock = FakeClock()
    calls: list[int] = []

    def measure(n: int, cap: float | None) -> float:
        calls.append(n)
        clock.t += 1.0  # each try takes 1 s, whatever n
        return 1.0 / n

    p = probe(measure, [1, 2], tokens=10, repeats=3, budget_s=3.0, clock=clock)
    assert calls == [1, 2, 1, 2]  # 2 s after round one: a second round; 4 s: no third
    assert p.chosen == 2
    # a loaded machine (the budget spent before the first round ends) still measures every count
    calls.clear()
    p = probe(measure, [1, 2, 4, 8], tokens=10, repeats=3, budget_s=0.5, clock=clock)
    assert calls == [1, 2, 4, 8] and p.chosen == 8


def test_probe_caps_a_try_at_twice_the_best_so_far() -> None:
    caps: list[tuple[int, float | None]] = []
    full = {1: 0.8, 2: 11.0, 3: 0.5}

    def measure(n: int, cap: float | None) -> float:
        caps.append((n, cap))
        return min(full[n], cap) if cap is not None else full[n]  # stops where the cap says

    p = probe(measure, [1, 2, 3], tokens=1, repeats=1, budget_s=100, clock=FakeClock())
    assert caps == [(1, None), (2, 1.6), (3, 1.6)]
    assert p.timings == {1: 0.8, 2: 1.6, 3: 0.5} and p.chosen == 3


def test_probe_result_is_cached_per_file_and_variant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "_CACHE", {})
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    a.write_bytes(b"x")
    b.write_bytes(b"y")
    runs: list[str] = []

    def run(tag: str, chosen: int) -> ThreadProbe:
        runs.append(tag)
        return ThreadProbe(chosen=chosen, timings={chosen: 0.1}, tokens=1, probe_s=0.1)

    first, cached = probe_cached(a, "v", lambda: run("a", 2))
    assert (first.chosen, cached) == (2, False)
    again, cached = probe_cached(a, "v", lambda: run("a-again", 1))
    assert again is first and cached
    assert probe_cached(b, "v", lambda: run("b", 1))[0].chosen == 1
    assert probe_cached(a, "w", lambda: run("a-w", 1))[0].chosen == 1
    a.write_bytes(b"changed file")  # another size: another model file
    assert probe_cached(a, "v", lambda: run("a-changed", 1))[1] is False
    assert runs == ["a", "b", "a-w", "a-changed"]
    # another process (a forked worker) probes for itself
    monkeypatch.setattr(os, "getpid", lambda: -1)
    assert probe_cached(b, "v", lambda: run("b-other-process", 3))[0].chosen == 3


SUITE = {"name": "x", "tasks": [{"name": "t", "kind": "mcq", "dataset": "arc_easy"}]}


@pytest.mark.parametrize(
    ("value", "expected"), [("absent", "auto"), (None, "auto"), ("auto", "auto"), (1, 1), (3, 3)]
)
def test_suite_n_threads_accepts_whole_numbers_and_auto(value: object, expected: object) -> None:
    model: dict[str, object] = {"name": "smollm2-135m"}
    if value != "absent":
        model["n_threads"] = value
    suite = parse_suite({**SUITE, "models": [model]}, "s.yaml")
    assert suite.models[0].n_threads == expected  # type: ignore[union-attr]


@pytest.mark.parametrize("value", ["fast", "Auto", "2", 0, -1, True, 1.5])
def test_suite_n_threads_rejects_anything_else_in_one_line(value: object) -> None:
    with pytest.raises(ConfigError) as e:
        parse_suite({**SUITE, "models": [{"name": "smollm2-135m", "n_threads": value}]}, "s.yaml")
    msg = str(e.value)
    assert msg.startswith("s.yaml: models[0].n_threads: ") and "\n" not in msg
    assert f"must be a whole number >= 1 or 'auto', not {value!r}" in msg, msg
