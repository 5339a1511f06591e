"""Runs that survive: SIGKILL at random moments and resume, memory limits, corrupt model files,
one writer per run; and efficiency figures present on every row, consistent with the outside view."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pytest

from bench import store

SUITE = """
name: durable
defaults: {{limit: {limit}, seed: 5, batch_size: 3}}
hardware: {{name: test-box, usd_per_hour: 1.8}}
models:
  - name: smollm2-135m
  - {{name: scripted, backend: fake, accuracy: 0.7}}
tasks:
  - {{name: arc_easy, kind: mcq, dataset: arc_easy}}
  - {{name: piqa, kind: mcq, dataset: piqa, limit: 9}}
"""


def _bench(*args: str, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _samples(root: Path) -> pd.DataFrame:
    return store.samples_dataset(root).to_table().to_pandas()


def _stored_rows(root: Path) -> dict[tuple[str, str], int]:
    """Rows stored so far per (model, task), while a run may be writing (parts appear whole)."""
    t = store.samples_dataset(root).to_table(columns=["model", "task"]).to_pandas()
    return {k: int(n) for k, n in t.groupby(["model", "task"]).size().items()}


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(
    tmp_path: Path, smollm2_path: str
) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.format(limit=24))
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    p = _bench("run", str(suite), "-o", str(clean))
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-2000:]

    # Three kills, each followed by a resume, at random points inside smollm2's arc_easy task (24
    # items in batches of 3; the first model's first task, slow enough to land in): each kill
    # comes once a random number of rows is stored and at least two batches remain, and the
    # store after it must show the task cut mid-way and more rows than the kill before.
    total = {(m, t): n for m in ("smollm2-135m", "scripted") for t, n in (("arc_easy", 24), ("piqa", 9))}
    first = ("smollm2-135m", "arc_easy")
    targets = sorted(random.Random(7).sample(range(1, 16), 3))
    stored, before = 0, 0
    for attempt, target in enumerate(targets):
        p = _bench("run", str(suite), "-o", str(killed), *(["--resume"] if attempt else []))
        deadline = time.monotonic() + 300
        while p.poll() is None and time.monotonic() < deadline:
            if max(target, before + 1) <= _stored_rows(killed).get(first, 0) <= 24 - 6:
                break
            time.sleep(0.05)
        assert p.poll() is None, f"the run ended before kill {attempt + 1}: {p.communicate()[1][-2000:]}"
        workers = psutil.Process(p.pid).children(recursive=True)
        os.kill(p.pid, signal.SIGKILL)  # the main process; its workers die with it (PDEATHSIG)
        _, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive, alive
        p.communicate()
        counts = _stored_rows(killed)
        assert stored < sum(counts.values()) < sum(total.values()), (attempt, counts)
        cut = [k for k, n in counts.items() if 0 < n < total[k]]
        assert cut, f"kill {attempt + 1} landed between tasks, not inside one: {counts}"
        stored, before = sum(counts.values()), counts[first]
    p = _bench("run", str(suite), "-o", str(killed), "--resume")
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-2000:]
    assert "Resuming" in err

    a = _samples(clean).sort_values(["model", "task", "item_id"]).reset_index(drop=True)
    b = _samples(killed).sort_values(["model", "task", "item_id"]).reset_index(drop=True)
    assert not b.duplicated(["model", "task", "item_id"]).any()
    assert len(b) == len(a) == 2 * (24 + 9)
    assert b["run_id"].nunique() == 1  # one run, resumed, not several
    assert list(a["item_id"]) == list(b["item_id"])
    assert list(a["score"]) == list(b["score"])  # bit-for-bit: results do not depend on history
    ra = store.runs_dataset(clean).to_table().to_pandas().set_index(["model", "task", "metric"])["value"]
    rb = store.runs_dataset(killed).to_table().to_pandas().set_index(["model", "task", "metric"])["value"]
    pd.testing.assert_series_equal(ra.sort_index(), rb.sort_index())
    assert not list(killed.rglob(".tmp-*"))


@pytest.mark.slow
def test_corrupt_file_and_memory_limit_are_that_models_errors(tmp_path: Path, smollm2_path: str) -> None:
    bad = tmp_path / "corrupt.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(4096))
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: failing\n"
        "defaults: {limit: 4}\n"
        "models:\n"
        f"  - {{name: corrupt, backend: llamacpp, path: {bad}}}\n"
        "  - {name: greedy, max_memory_mb: 60}\n"  # smollm2 needs ~250 MB resident
        "  - {name: fine, backend: fake, accuracy: 1.0}\n"
        "tasks:\n"
        "  - {name: arc_easy, kind: mcq, dataset: arc_easy}\n"
    )
    suite.write_text(suite.read_text().replace("name: greedy,", "name: smollm2-135m,"))
    p = _bench("run", str(suite), "-o", str(tmp_path / "out"))
    out, err = p.communicate(timeout=600)
    assert p.returncode == 1, err[-2000:]
    assert "Traceback" not in err
    runs = store.runs_dataset(tmp_path / "out").to_table().to_pandas().query("primary").set_index("model")
    assert runs.loc["fine", "status"] == "ok" and runs.loc["fine", "n"] == 4
    assert runs.loc["corrupt", "status"] == "error" and "could not load" in runs.loc["corrupt", "error"]
    assert runs.loc["smollm2-135m", "status"] == "error"
    assert "exceeded its memory limit of 60 MB" in runs.loc["smollm2-135m", "error"]
    assert "memory limit" in out and "could not load" in out


@pytest.mark.slow
def test_efficiency_figures_on_every_row_agree_with_the_outside_view(
    tmp_path: Path, smollm2_path: str
) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        SUITE.format(limit=6).replace("  - {name: scripted, backend: fake, accuracy: 0.7}\n", "")
    )
    t0 = time.perf_counter()
    p = _bench("run", str(suite), "-o", str(tmp_path / "out"), "--mode", "latency")
    peak = 0.0
    while p.poll() is None:  # the outside view of the model's worker: its RSS, sampled by us
        for c in psutil.Process(p.pid).children(recursive=True) if p.poll() is None else []:
            with contextlib.suppress(psutil.Error):
                peak = max(peak, c.memory_info().rss / 2**20)
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    _, err = p.communicate()
    assert p.returncode == 0, err[-2000:]
    root = tmp_path / "out"
    s = _samples(root)
    assert s["latency_s"].gt(0).all() and s["wall_s"].gt(0).all() and s["input_tokens"].gt(0).all()
    assert (s["mode"] == "latency").all() and (s["concurrency"] == 1).all()
    warm = list(root.rglob("warmup-*.parquet"))
    assert len(warm) == 2  # one warm-up per (model, task), kept apart
    w = pd.concat([pd.read_parquet(f) for f in warm])
    assert w["warmup"].all() and not s["warmup"].any()
    r = store.runs_dataset(root).to_table().to_pandas()
    assert r["latency_p50"].gt(0).all() and r["peak_rss_mb"].gt(0).all()
    assert r["prompt_tokens_per_s"].gt(0).all()
    # our lifetime peak is the worker's own; the outside sampler sees the same process
    ours = r["process_peak_rss_mb"].max()
    assert peak * 0.8 <= ours <= max(peak * 1.25, peak + 60), (peak, ours)
    assert (r["peak_rss_mb"] <= r["process_peak_rss_mb"] + 1).all()  # a task's peak is within it
    # per-item wall time adds up to less than the whole command's wall time
    assert s["wall_s"].sum() < wall
    # cost = $/hour x item wall time; $ per 1k items and per correct answer follow
    for _, row in r[r.metric == "acc"].iterrows():
        g = s[s.task == row["task"]]
        cost = 1.8 * g["wall_s"].sum() / 3600
        assert row["cost_usd"] == pytest.approx(cost)
        assert row["usd_per_1k_items"] == pytest.approx(cost / len(g) * 1000)
        if g["score"].sum():
            assert row["usd_per_correct"] == pytest.approx(cost / g["score"].sum())


def test_one_writer_per_run(tmp_path: Path, mcq_jsonl: Path) -> None:
    from bench.config import parse_suite
    from bench.errors import BenchError
    from bench.runner import NullDisplay, execute, plan_run, run_lock
    from tests.conftest import fake_suite

    plan = plan_run(parse_suite(fake_suite(mcq_jsonl)), tmp_path)
    with run_lock(plan.dir), pytest.raises(BenchError, match="being written by another bench process"):
        execute(plan, NullDisplay(), executor="inline")
    execute(plan, NullDisplay(), executor="inline")  # free again
    assert len(_samples(tmp_path)) == 2 * 23
