"""`n_threads: auto` on the real SmolLM2 GGUF: the probe runs at load, picks a count the machine has,
sets it in llama.cpp's context, reports its timings, is cached per process, and leaves scores alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import store
from bench.backends import threads
from bench.backends.base import LoglikelihoodRequest
from bench.backends.llamacpp import LlamaCppBackend
from bench.config import parse_suite
from bench.runner import NullDisplay, execute, plan_run


def _timings(s: str) -> dict[int, float]:
    return {int(n): float(t) for n, t in (kv.split(":") for kv in s.split())}


def test_auto_probes_once_picks_a_count_in_range_and_stores_it(
    smollm2_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(threads, "_CACHE", {})
    cores = threads.physical_cores()
    be = LlamaCppBackend(smollm2_path, model_name="s", n_ctx=512)  # auto is the default
    try:
        extra = be.info().extra
        assert extra["n_threads_source"] == "auto"
        chosen = int(extra["n_threads"])
        assert 1 <= chosen <= cores and extra["n_threads_batch"] == str(chosen)
        timings = _timings(extra["thread_probe_s"])
        assert set(timings) <= set(threads.candidates(cores)) and 1 in timings and chosen in timings
        assert all(t > 0 for t in timings.values())
        assert chosen == threads.pick(timings)  # the stored timings explain the choice (3 decimals)
        # a 40-token context and four 6-token continuations, the shared context evaluated once
        assert 40 < int(extra["thread_probe_tokens"]) < 40 + 4 * 7
        assert 0 < float(extra["thread_probe_wall_s"]) < 30
        # llama.cpp's context runs with the chosen count, not the one it was loaded with
        lib = be._llama_cpp
        assert lib.llama_n_threads(be.llm._ctx.ctx) == chosen
        assert lib.llama_n_threads_batch(be.llm._ctx.ctx) == chosen
    finally:
        be.close()

    again = LlamaCppBackend(smollm2_path, model_name="s", n_ctx=512, n_threads="auto")
    try:
        assert again.info().extra["n_threads_source"] == "auto (cached probe)"
        assert again.n_threads == chosen and again.thread_probe is be.thread_probe
    finally:
        again.close()


def test_explicit_count_bypasses_the_probe(smollm2_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_probe(*a: object, **k: object) -> None:
        raise AssertionError("an explicit n_threads must not probe")

    monkeypatch.setattr("bench.backends.llamacpp.probe_cached", no_probe)
    be = LlamaCppBackend(smollm2_path, model_name="s", n_ctx=512, n_threads=1)
    try:
        extra = be.info().extra
        assert extra["n_threads_source"] == "suite" and extra["n_threads"] == "1"
        assert "thread_probe_s" not in extra
        assert be._llama_cpp.llama_n_threads(be.llm._ctx.ctx) == 1
    finally:
        be.close()


def test_probe_leaves_the_cache_clean_and_scores_unchanged(smollm2_path: str) -> None:
    """The probe decodes through the scoring path; afterwards an item scores exactly as in a
    backend that never probed (same thread count, so only the probe's leftovers could differ)."""
    req = LoglikelihoodRequest(
        "q1",
        tuple(
            ("Question: What do plants need to grow?\nAnswer:", f" {c}") for c in ("light", "rocks", "salt")
        ),
    )
    auto = LlamaCppBackend(smollm2_path, model_name="s", n_ctx=512, n_threads="auto")
    try:
        n = auto.n_threads
        got = auto.loglikelihood([req])[0]
    finally:
        auto.close()
    plain = LlamaCppBackend(smollm2_path, model_name="s", n_ctx=512, n_threads=n)
    try:
        want = plain.loglikelihood([req])[0]
    finally:
        plain.close()
    assert got.error is None and want.error is None
    assert got.logliks == want.logliks
    assert got.tokens_evaluated == want.tokens_evaluated


def test_a_run_stores_the_chosen_count_and_its_timings(smollm2_path: str, tmp_path: Path) -> None:
    """Through the public run path: the runs rows carry the engine settings the probe chose."""
    suite = parse_suite(
        {
            "name": "threads",
            "defaults": {"limit": 2, "warmup": 0},
            "models": [{"name": "smollm2-135m", "n_ctx": 512}],
            "tasks": [{"name": "arc", "kind": "mcq", "dataset": "arc_easy"}],
        }
    )
    plan = plan_run(suite, tmp_path)
    execute(plan, NullDisplay(), executor="process")
    runs = store.runs_dataset(tmp_path).to_table().to_pandas()
    assert len(runs) >= 1 and (runs["status"] == "ok").all()
    settings = [json.loads(s) for s in runs["engine_settings"]]
    assert all(s == settings[0] for s in settings)
    s = settings[0]
    assert s["n_threads_source"] == "auto"  # a fresh worker process probes for itself
    timings = _timings(s["thread_probe_s"])
    assert int(s["n_threads"]) == threads.pick(timings)
    assert 1 <= int(s["n_threads"]) <= threads.physical_cores()
