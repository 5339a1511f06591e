"""One writer per sweep: a second `bench load --resume` of a sweep that is being written fails with
one line instead of writing the same level twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.config import parse_suite
from bench.errors import BenchError
from bench.load.sweep import run_sweep
from bench.runner import plan_run, run_lock
from tests.load_sweeps import qa_items, sweep_suite, zero_server


def test_a_sweep_being_written_cannot_be_resumed_beside_it(tmp_path: Path) -> None:
    data = qa_items(tmp_path / "qa.jsonl", n=3)
    load = {"concurrencies": [2], "synchronous": False, "requests": 3, "timeout_s": 10}
    with zero_server(0.0, 0.0) as url:
        suite = parse_suite(sweep_suite("locked", data, [{"name": "m", "base_url": url}], load))
        first = run_sweep(suite, tmp_path)  # a finished sweep, to resume
        assert not first.errors and len(first.levels) == 1
        plan = plan_run(suite, tmp_path, resume=True, run_id=first.run_id)
        with run_lock(plan.dir), pytest.raises(BenchError, match="being written by another bench process"):
            run_sweep(suite, tmp_path, resume=True, run_id=first.run_id)
        again = run_sweep(suite, tmp_path, resume=True, run_id=first.run_id)  # the lock is free again
    assert again.run_id == first.run_id and len(again.levels) == 1
