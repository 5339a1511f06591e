"""`bench load` against real servers on 127.0.0.1 with the catalog SmolLM2-135M GGUF: llama-cpp-python's
server (one request at a time) and llama.cpp's own server through the xllamacpp wheel (parallel
slots, continuous batching). Every stored level figure is recomputed here from the stored request
rows, and the accuracy from the task's own scorer on the stored answers; a sweep killed (SIGKILL)
in its second level resumes without losing or re-running the finished one.

Bounded: a few items, short answers, each level a fixed number of requests with a per-request
timeout; every server is stopped by its fixture, and every subprocess has a timeout."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from bench.analysis import metric_interval
from bench.config import parse_suite
from bench.load import records
from bench.load.profile import arrival_times
from bench.load.sweep import run_sweep
from tests.integration.test_openai_server import LlamaServer
from tests.servers import ServerProcess, free_port

pytestmark = pytest.mark.slow

SUMS = [(a, b) for a, b in ((2, 3), (4, 4), (1, 6), (3, 5), (7, 2), (5, 5))]
PROMPT = "Q: What is 1 + 1?\nA: The answer is 2.\n\nQ: {{ question }}\nA:"
LOAD_SEED = 5


def _suite(data: Path, url: str, load: dict[str, Any], name: str = "load-test") -> dict[str, Any]:
    return {
        "name": name,
        "defaults": {"limit": len(SUMS), "seed": 3},
        "hardware": {"name": "test-box", "usd_per_hour": 3.6},
        "models": [
            {
                "name": "smol",
                "backend": "openai",
                "preset": "llamacpp-server",
                "model": "smol",
                "base_url": url,
            }
        ],
        "tasks": [
            {
                "name": "sums",
                "kind": "math",
                "dataset": {"path": str(data)},
                "fields": {"id": "id"},
                "prompt": PROMPT,
                "max_tokens": 10,
                "chat": "never",
            }
        ],
        "load": {"seed": LOAD_SEED, "timeout_s": 120, "slo": {"ttft_s": 1.0, "e2e_s": 3.0}, **load},
    }


@pytest.fixture(scope="module")
def sums(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("data") / "sums.jsonl"
    p.write_text(
        "".join(
            json.dumps({"id": f"s{a}{b}", "question": f"What is {a} + {b}?", "answer": str(a + b)}) + "\n"
            for a, b in SUMS
        )
    )
    return p


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory, smollm2_path: str) -> Iterator[LlamaServer]:
    s = LlamaServer(smollm2_path, tmp_path_factory.mktemp("srv") / "llama.log")
    try:
        yield s
    finally:
        s.stop()


# ---------------------------------------------------------------------- recomputing the figures


def _piece_times(r: pd.Series) -> np.ndarray:
    """Every content piece's arrival, rebuilt from the stored first-token time and gaps."""
    gaps = np.asarray(r["itl_s"] if r["itl_s"] is not None else [], dtype=np.float64)
    return r["first_token_s"] + np.concatenate([[0.0], np.cumsum(gaps)])


def _check_level(level: pd.Series, rows: pd.DataFrame, slo: dict[str, float]) -> None:
    """Every figure of a stored level row, recomputed from its stored request rows."""
    ok = rows[rows["error"].isna()]
    assert level["n_requests"] == len(rows) and level["n_errors"] == len(rows) - len(ok)
    # each row's own times agree with each other
    assert np.allclose(rows["ttft_s"], rows["first_token_s"] - rows["start_s"])
    assert np.allclose(rows["e2e_s"], rows["end_s"] - rows["start_s"])
    assert ((rows["ttft_s"] > 0) & (rows["ttft_s"] <= rows["e2e_s"])).all()
    assert (rows["start_s"] >= rows["scheduled_s"]).all()  # nothing is sent before its time
    for _, r in ok.iterrows():
        pieces = _piece_times(r)
        assert len(pieces) >= 1 and pieces[-1] <= r["end_s"] + 1e-9
        assert (
            r["tpot_s"] is None
            or np.isnan(r["tpot_s"])
            or r["tpot_s"] == pytest.approx((r["e2e_s"] - r["ttft_s"]) / (r["output_tokens"] - 1))
        )
    duration = rows["end_s"].max() - rows["start_s"].min()
    assert level["duration_s"] == pytest.approx(duration)
    assert level["requests_per_s"] == pytest.approx(len(ok) / duration)
    assert level["output_tokens_per_s"] == pytest.approx(ok["output_tokens"].sum() / duration)
    assert level["achieved_concurrency"] == pytest.approx(rows["e2e_s"].sum() / duration)
    itl = np.concatenate([np.asarray(x, dtype=np.float64) for x in ok["itl_s"] if x is not None])
    for name, values in (("ttft", ok["ttft_s"]), ("e2e", ok["e2e_s"]), ("itl", itl), ("tpot", ok["tpot_s"])):
        x = np.asarray(values, dtype=np.float64)
        x = x[~np.isnan(x)]
        for q in (50, 90, 95, 99):
            assert level[f"{name}_p{q}"] == pytest.approx(np.percentile(x, q)), (name, q)
    met = ok[(ok["ttft_s"] <= slo["ttft_s"]) & (ok["e2e_s"] <= slo["e2e_s"])]
    assert level["goodput_per_s"] == pytest.approx(len(met) / duration)
    assert level["goodput_per_s"] <= level["requests_per_s"]


def _check_accuracy(level: pd.Series, rows: pd.DataFrame, suite: Any) -> None:
    """The level's accuracy and interval are what the task scores from the stored answers."""
    from bench.tasks import create_task

    spec = suite.tasks[0]
    task = create_task(spec, suite.effective_task(spec))
    by_id = {it.id: it.record for it in task.items()}
    ok = rows[rows["error"].isna()]
    scores = []
    for _, r in ok.iterrows():
        extracted, reference, s = task.score(by_id[r["item_id"]], r["raw_output"])
        assert r["reference"] == reference and r["score"] == s[task.primary_metric]
        assert r["prediction"] == (extracted if extracted is not None else r["raw_output"].strip())
        scores.append(s[task.primary_metric])
    iv = metric_interval(np.asarray(scores, dtype=np.float64))
    assert level["n_scored"] == len(scores) and level["metric"] == task.primary_metric
    assert level["accuracy"] == pytest.approx(iv.mean)
    assert (level["accuracy_low"], level["accuracy_high"]) == pytest.approx((iv.ci_low, iv.ci_high))


def _overlapping_pairs(rows: pd.DataFrame) -> int:
    """Pairs of requests whose streamed pieces interleave in time (the server worked on both at once)."""
    spans = [(p[0], p[-1]) for p in (_piece_times(r) for _, r in rows[rows["error"].isna()].iterrows())]
    return sum(1 for i, a in enumerate(spans) for b in spans[i + 1 :] if a[0] < b[1] and b[0] < a[1])


# ---------------------------------------------------------------------- llama-cpp-python's server


def test_sweep_against_llama_cpp_python_server(llama_server: LlamaServer, sums: Path, tmp_path: Path) -> None:
    """Synchronous, concurrency 2 and Poisson 2 req/s against llama-cpp-python's server; every figure
    recomputed from the stored request rows."""
    load = {"concurrencies": [2], "rates": [2.0]}
    suite = parse_suite(_suite(sums, llama_server.url, load))
    result = run_sweep(suite, tmp_path)
    assert not result.errors, result.errors
    levels = records.read_levels(tmp_path)
    reqs = records.read_requests(tmp_path)
    assert list(levels["level"]) == ["sync", "c2", "r2"]
    assert (levels["run_id"] == result.run_id).all() and (levels["backend"] == "openai").all()
    for _, lv in levels.iterrows():
        rows = reqs[reqs["level"] == lv["level"]].sort_values("seq")
        assert list(rows["seq"]) == list(range(len(SUMS))) and rows["error"].isna().all()
        assert sorted(rows["item_id"]) == sorted(f"s{a}{b}" for a, b in SUMS)
        _check_level(lv, rows, {"ttft_s": 1.0, "e2e_s": 3.0})
        _check_accuracy(lv, rows, suite)
        assert lv["usd_per_1k_requests"] == pytest.approx(lv["cost_usd"] / len(rows) * 1000)
    sync, c2, r2 = (levels.iloc[k] for k in range(3))
    # the Poisson level sent at the seeded arrival times, from its first request
    rr = reqs[reqs["level"] == "r2"].sort_values("seq")
    sent = rr["scheduled_s"].to_numpy() - rr["scheduled_s"].min()
    assert np.allclose(sent, arrival_times(len(SUMS), 2.0, seed=LOAD_SEED))
    assert r2["level_kind"] == "rate" and r2["level_value"] == 2.0 and r2["arrivals"] == "poisson"
    # one request at a time at sync; llama-cpp-python's server serves one at a time, so at c2 the
    # second request waits: its pieces never interleave with another's
    assert sync["achieved_concurrency"] <= 1.0 + 1e-9 and 1.0 < c2["achieved_concurrency"] <= 2.0 + 1e-9
    assert _overlapping_pairs(reqs[reqs["level"] == "c2"]) == 0
    # greedy, one at a time: the same answers at every level
    for lv in ("c2", "r2"):
        row = levels[levels["level"] == lv].iloc[0]
        assert row["vs_level"] == "sync" and not row["accuracy_changed"]
    answers = reqs.pivot(index="item_id", columns="level", values="raw_output")
    assert (answers["sync"] == answers["c2"]).all() and (answers["sync"] == answers["r2"]).all()
    assert sync["accuracy"] > 0  # the model adds some of these small numbers


# ---------------------------------------------------------------------- killed mid-level, resumed


def _stderr_lines(proc: subprocess.Popen[str]) -> tuple[queue.Queue[str], threading.Thread]:
    q: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            q.put(line)

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    return q, t


def _digest(p: Path) -> tuple[str, int]:
    return hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns


def test_sigkill_in_the_second_level_then_resume(
    llama_server: LlamaServer, sums: Path, tmp_path: Path
) -> None:
    n = 2 * len(SUMS)  # each item twice per level: the second level lasts a few seconds
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(
        yaml.safe_dump(_suite(sums, llama_server.url, {"concurrencies": [2], "requests": n}))
    )
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "bench.cli", "load", str(suite_file), "-o", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines, pump = _stderr_lines(proc)
    try:
        seen, deadline = [], time.monotonic() + 300
        while not any("· sync:" in ln for ln in seen):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(seen)
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=1))
        time.sleep(0.5)  # inside the second level
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        pump.join(30)  # the pipe ends with the process
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    (run_dir,) = {p.parent for p in out.rglob("run.json")}
    sync_files = [records.level_path(run_dir, "smol", "sums", "sync")]
    sync_files.append(run_dir / sync_files[0].name.replace("load-levels-", "load-requests-"))
    assert all(p.exists() for p in sync_files)
    assert not records.level_path(run_dir, "smol", "sums", "c2").exists(), (
        "the kill came after the second level"
    )
    assert not list(run_dir.glob("load-requests-*c2*.parquet"))
    before = {p: _digest(p) for p in sync_files}
    sync_rows = records.read_requests(out)

    p = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "smol · sums · sync: stored, skipped" in p.stderr
    assert {q.parent for q in out.rglob("run.json")} == {run_dir}  # the same run, continued
    assert {q: _digest(q) for q in sync_files} == before  # the finished level was not rewritten
    levels = records.read_levels(out)
    reqs = records.read_requests(out)
    assert list(levels["level"]) == ["sync", "c2"]
    pd.testing.assert_frame_equal(
        reqs[reqs["level"] == "sync"].reset_index(drop=True), sync_rows.reset_index(drop=True)
    )
    assert not reqs.duplicated(["level", "seq"]).any()
    for lv in ("sync", "c2"):
        rows = reqs[reqs["level"] == lv].sort_values("seq")
        assert list(rows["seq"]) == list(range(n)) and rows["error"].isna().all()
        _check_level(levels[levels["level"] == lv].iloc[0], rows, {"ttft_s": 1.0, "e2e_s": 3.0})
    assert "sync" in p.stdout and "c2" in p.stdout  # the sweep table


# ---------------------------------------------------------------------- llama.cpp's own server

XLLAMACPP_SERVER = """
import sys, time
import xllamacpp as x
p = x.CommonParams()
p.model.path = sys.argv[1]
p.port = int(sys.argv[2])
p.n_parallel = int(sys.argv[3])
p.n_ctx = 1024 * p.n_parallel
p.cont_batching = True
p.cpuparams.n_threads = 1
p.cpuparams_batch.n_threads = 1
s = x.Server(p)
print(s.listening_address, flush=True)
while True:
    time.sleep(3600)
"""


class NativeServer(ServerProcess):
    """llama.cpp's C++ server (the xllamacpp wheel) in its own process, with parallel slots."""

    def __init__(self, model: str, log: Path, slots: int) -> None:
        self.port = free_port()
        cmd = [sys.executable, "-c", XLLAMACPP_SERVER, model, str(self.port), str(slots)]
        super().__init__("xllamacpp", cmd, f"http://127.0.0.1:{self.port}/v1", log, timeout_s=120)


@pytest.fixture(scope="module")
def native_server(tmp_path_factory: pytest.TempPathFactory, smollm2_path: str) -> Iterator[NativeServer]:
    if not os.environ.get("CI"):
        pytest.importorskip("xllamacpp", reason="needs llama.cpp's own server: pip install xllamacpp")
    s = NativeServer(smollm2_path, tmp_path_factory.mktemp("srv") / "native.log", slots=4)
    try:
        yield s
    finally:
        s.stop()


def test_parallel_slots_overlap_requests_and_raise_throughput(
    native_server: NativeServer, sums: Path, tmp_path: Path
) -> None:
    """llama.cpp's own server with 4 slots batches the requests in flight into one decode step: at c4
    the streams interleave, and completed requests per second rise above the synchronous level (with
    one thread per server; on this 2-core machine 4 in flight gave 1.2-1.8x, 2 in flight ~1.0-1.1x,
    and 2 threads ran ~10x slower than 1)."""
    suite = parse_suite(_suite(sums, native_server.url, {"concurrencies": [4], "requests": 3 * len(SUMS)}))
    result = run_sweep(suite, tmp_path)
    assert not result.errors, result.errors
    levels = records.read_levels(tmp_path).set_index("level")
    reqs = records.read_requests(tmp_path)
    for lv in ("sync", "c4"):
        rows = reqs[reqs["level"] == lv].sort_values("seq")
        assert rows["error"].isna().all(), rows["error"].dropna().tolist()[:3]
        _check_level(levels.loc[lv], rows, {"ttft_s": 1.0, "e2e_s": 3.0})
        _check_accuracy(levels.loc[lv], rows, suite)
    assert _overlapping_pairs(reqs[reqs["level"] == "c4"]) >= 3 * len(SUMS)  # they run side by side
    assert levels.loc["c4", "achieved_concurrency"] > 3.0
    assert levels.loc["c4", "requests_per_s"] > levels.loc["sync", "requests_per_s"]
