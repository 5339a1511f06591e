"""Generate a large synthetic results store and time what the dashboard's leaderboard page does.

    python -m bench.perf.store_bench /tmp/big-store            # 1,000 runs x 1,000 samples, then time
    python -m bench.perf.store_bench /tmp/big-store --no-generate
    python -m bench.perf.store_bench /tmp/old-store --fresh --no-summaries   # a store without summaries

Rows are written with `bench.store.write_table`, so the files have the real schemas and layout
(`<root>/<suite>/<date>/<run_id>/{run.json, samples-*, runs-*, summary.parquet}`). Correctness is drawn from a
per-model ability and a per-item difficulty, confidence is higher on correct items, and one model
regresses half way through, so every dashboard page has something to show.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from bench import __version__, store


@dataclass(frozen=True)
class SynthModel:
    name: str
    params: int
    quant: str
    backend: str
    hardware: str
    ability: float  # logit offset: higher answers more items right
    latency_s: float  # median seconds per item
    peak_rss_mb: float
    usd_per_hour: float


MODELS: tuple[SynthModel, ...] = (
    SynthModel("smollm2-135m", 135_000_000, "Q4_1", "llamacpp", "cpu-2core", -0.6, 0.05, 310.0, 0.10),
    SynthModel("gemma3-270m", 268_000_000, "Q4_K_M", "llamacpp", "cpu-2core", -0.3, 0.09, 520.0, 0.10),
    SynthModel("qwen2.5-7b", 7_600_000_000, "Q4_K_M", "llamacpp", "cpu-16core", 0.9, 0.6, 5400.0, 0.80),
    SynthModel("llama3.1-70b", 70_600_000_000, "fp8", "vllm", "h100", 2.0, 0.25, 81000.0, 4.00),
)
TASKS: tuple[str, ...] = ("arc_easy", "hellaswag")
SUITES: tuple[str, ...] = ("nightly", "reasoning")
REGRESSING_MODEL = "gemma3-270m"
TARGET_S = 3.0  # issue 6: the leaderboard page renders in under 3 s on a 1,000-run store


@lru_cache(maxsize=16)
def _item_pool(task: str, n_items: int) -> tuple[dict[str, Any], ...]:
    """Item-level constants (prompt, reference, difficulty) shared by every run."""
    rng = np.random.default_rng(int(hashlib.sha256(task.encode()).hexdigest()[:8], 16))
    items = []
    for i in range(n_items):
        gold = int(rng.integers(0, 4))
        choices = [f"choice {k} of item {i}" for k in range(4)]
        prompt = (
            f"Question: {task} item {i}. " + "Which of these statements about the scene is correct? " * 4
        ) + "\nAnswer:"
        items.append(
            {
                "item_id": f"{task}-{i:05d}",
                "item_index": i,
                "prompt": prompt,
                "prompt_hash": hashlib.sha256(prompt.encode()).hexdigest()[:16],
                "reference": choices[gold],
                "gold_index": gold,
                "choices": choices,
                "difficulty": float(rng.normal(0.0, 1.2)),
            }
        )
    return tuple(items)


def _run_id(i: int, start: datetime) -> str:
    return (start + timedelta(hours=8 * i)).strftime("%Y%m%dT%H%M%SZ") + f"-{i:06x}"


def write_run(
    root: Path,
    i: int,
    n_items: int,
    start: datetime,
    models: Sequence[SynthModel] = MODELS,
    with_summary: bool = True,
) -> int:
    """Write run number `i` (manifest, samples, runs and, as `bench run` does at the end, the
    run's summary.parquet); returns the number of sample rows."""
    rng = np.random.default_rng(1000 + i)
    run_id = _run_id(i, start)
    suite = SUITES[1] if i % 5 == 4 else SUITES[0]
    git_sha = hashlib.sha1(f"commit-{i // 3}".encode()).hexdigest()
    directory = store.run_dir(root, suite, run_id)
    created = start + timedelta(hours=8 * i)
    manifest = {
        "schema_version": store.SCHEMA_VERSION,
        "run_id": run_id,
        "suite": suite,
        "suite_hash": hashlib.sha256(suite.encode()).hexdigest()[:16],
        "suite_config": {"name": suite, "tasks": [{"name": t} for t in TASKS]},
        "seed": 1234,
        "created_at": created.isoformat(),
        "bench_version": __version__,
        "git_sha": git_sha,
        "hardware": "mixed",
        "packages": {"bench": __version__},
        "python_version": "3.11.7",
    }
    store.write_manifest(directory, manifest)
    n_rows = 0
    for m in models:
        ability = m.ability - (0.8 if m.name == REGRESSING_MODEL and i >= 600 else 0.0)
        for task in TASKS:
            items = _item_pool(task, n_items)
            base = {
                "run_id": run_id,
                "suite": suite,
                "suite_hash": manifest["suite_hash"],
                "seed": 1234,
                "bench_version": __version__,
                "git_sha": git_sha,
                "hardware": m.hardware,
                "task": task,
                "task_kind": "mcq",
                "dataset": task,
                "model": m.name,
                "backend": m.backend,
            }
            diff = np.array([it["difficulty"] for it in items])
            p = 1.0 / (1.0 + np.exp(-(ability - diff)))
            correct = rng.random(n_items) < p
            errors = rng.random(n_items) < 0.002
            conf = np.where(correct, rng.beta(5, 2, n_items), rng.beta(2, 3, n_items)) * 0.75 + 0.25
            latency = rng.lognormal(math.log(m.latency_s), 0.3, n_items)
            in_tok = rng.integers(60, 120, n_items)
            wall = latency * 1.05
            rows = []
            for k, it in enumerate(items):
                ok = bool(correct[k])
                pred = it["gold_index"] if ok else (it["gold_index"] + 1 + k % 3) % 4
                err = "timeout after 30 s" if errors[k] else None
                rows.append(
                    {
                        **base,
                        "item_id": it["item_id"],
                        "item_index": it["item_index"],
                        "method": "loglikelihood",
                        "prompt_hash": it["prompt_hash"],
                        "prompt": it["prompt"],
                        "prediction": None if err else it["choices"][pred],
                        "pred_index": None if err else pred,
                        "reference": it["reference"],
                        "gold_index": it["gold_index"],
                        "correct": None if err else ok,
                        "score": None if err else float(ok),
                        "scores": None if err else {"acc": float(ok), "acc_norm": float(ok)},
                        "choice_logliks": None if err else [-1.0, -2.0, -3.0, -4.0],
                        "confidence": None if err else float(conf[k]),
                        "gold_prob": None if err else float(conf[k] if ok else 1 - conf[k]),
                        "input_tokens": int(in_tok[k]),
                        "output_tokens": 0,
                        "tokens_evaluated": int(in_tok[k]),
                        "latency_s": float(latency[k]),
                        "wall_s": float(wall[k]),
                        "mode": "throughput",
                        "concurrency": 1,
                        "warmup": False,
                        "error": err,
                        "started_at": created,
                    }
                )
            store.write_table(
                directory / f"samples-{store.safe_name(m.name)}-{store.safe_name(task)}-000000.parquet",
                rows,
                store.SAMPLES_SCHEMA,
            )
            n_rows += len(rows)
            scored = correct[~errors].astype(float)
            mean = float(scored.mean())
            se = float(scored.std(ddof=1) / math.sqrt(scored.size))
            wall_s = float(wall.sum())
            cost = m.usd_per_hour * wall_s / 3600.0
            pct = np.percentile(latency, [50, 90, 95, 99])
            summary = {
                **base,
                "status": "ok",
                "n": n_items,
                "n_errors": int(errors.sum()),
                "num_fewshot": 0,
                "item_limit": n_items,
                "model_params": m.params,
                "quant": m.quant,
                "latency_p50": float(pct[0]),
                "latency_p90": float(pct[1]),
                "latency_p95": float(pct[2]),
                "latency_p99": float(pct[3]),
                "tokens_per_s": float(in_tok.sum() / latency.sum()),
                "items_per_s": n_items / wall_s,
                "wall_s": wall_s,
                "load_s": 1.0,
                "mode": "throughput",
                "concurrency": 1,
                "device": "cuda" if m.backend == "vllm" else "cpu",
                "peak_rss_mb": m.peak_rss_mb,
                "usd_per_hour": m.usd_per_hour,
                "cost_usd": cost,
                "usd_per_1k_items": cost / n_items * 1000,
                "usd_per_correct": cost / max(scored.sum(), 1.0),
                "started_at": created,
                "finished_at": created + timedelta(seconds=wall_s),
                "python_version": "3.11.7",
                "packages": json.dumps({"bench": __version__}),
                "hardware_info": json.dumps({"name": m.hardware}),
            }
            runs_rows = [
                {
                    **summary,
                    "metric": metric,
                    "primary": metric == "acc",
                    "higher_is_better": True,
                    "value": mean,
                    "stderr": se,
                    "ci_low": max(0.0, mean - 1.96 * se),
                    "ci_high": min(1.0, mean + 1.96 * se),
                }
                for metric in ("acc", "acc_norm")
            ]
            store.write_table(
                directory / f"runs-{store.safe_name(m.name)}-{store.safe_name(task)}.parquet",
                runs_rows,
                store.RUNS_SCHEMA,
            )
    if with_summary:
        store.consolidate(directory)
    return n_rows


def _write_one(args: tuple[str, int, int, str, bool]) -> int:
    root, i, n_items, start, summary = args
    return write_run(Path(root), i, n_items, datetime.fromisoformat(start), with_summary=summary)


def generate(
    root: Path, runs: int = 1000, items: int = 125, jobs: int | None = None, summaries: bool = True
) -> int:
    """Write `runs` runs of len(MODELS) x len(TASKS) x `items` sample rows; returns the row count.
    `summaries=False` writes a store as bench did before runs had a summary.parquet."""
    root.mkdir(parents=True, exist_ok=True)
    start = datetime(2025, 1, 1, 2, 0, tzinfo=UTC).isoformat()
    work = [(str(root), i, items, start, summaries) for i in range(runs)]
    jobs = jobs or os.cpu_count() or 1
    if jobs == 1:
        return sum(map(_write_one, work))
    with mp.get_context("spawn").Pool(jobs) as pool:
        return sum(pool.imap_unordered(_write_one, work, chunksize=8))


def time_data_layer(root: Path) -> dict[str, float]:
    """Seconds for each data-layer call the leaderboard page makes: the runs tables read without
    the dashboard's index (its first visit ever), then with it (every later process)."""
    from bench import dashboard_data as dd

    out: dict[str, float] = {}
    t0 = time.perf_counter()
    scan = dd.scan_store(root)
    out["scan_store"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    dd.load_primary_runs(root, scan)
    out["load_primary_runs (no index yet)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    runs = dd.load_primary_runs(root, dd.scan_store(root))
    out["scan + load_primary_runs (index)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    selected = dd.select_results(runs, dd.Filters(suite=dd.default_suite(runs)))
    board = dd.leaderboard_table(selected)
    for axis in dd.PARETO_AXES:
        dd.pareto_points(board, axis)
    out["select + leaderboard + pareto"] = time.perf_counter() - t0
    out["primary rows"] = float(len(runs))
    out["run folders"] = float(len(scan))
    return out


def render_leaderboard(root: Path, runs: int = 2, timeout: float = 120.0) -> list[float]:
    """Seconds for `runs` AppTest renders of the leaderboard page (the default page) in this
    process: the first pays streamlit's start-up and empty st.cache_data, later ones are reruns."""
    from streamlit.testing.v1 import AppTest

    app = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
    os.environ["BENCH_RESULTS_DIR"] = str(root)
    out = []
    for _ in range(runs):
        at = AppTest.from_file(str(app), default_timeout=timeout)
        t0 = time.perf_counter()
        at.run()
        out.append(time.perf_counter() - t0)
        if at.exception:
            raise RuntimeError(f"the app raised: {at.exception[0].message}")
        if not at.dataframe or len(at.get("plotly_chart")) != 4:
            raise RuntimeError("the leaderboard page rendered no table or not every Pareto plot")
    return out


def time_app(root: Path) -> dict[str, float]:
    """Leaderboard renders, each case in a fresh process as a server start would be:
    no index yet (a first visit ever), then with the index (every later server start), then a
    rerun in that process (st.cache_data warm)."""
    env = {**os.environ, "BENCH_CACHE_DIR": tempfile.mkdtemp(prefix="bench-store-bench-app-")}
    cmd = [sys.executable, "-m", "bench.perf.store_bench", str(root), "--render-only"]
    out: dict[str, float] = {}
    for label in ("render, new process, no index (first visit ever)", "render, new process, index"):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        first, rerun = json.loads(r.stdout.strip().splitlines()[-1])
        out[label] = first
    out["render, rerun (st.cache_data warm)"] = rerun
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="store directory to create (or reuse with --no-generate)")
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--items", type=int, default=125, help="items per (model, task) per run")
    ap.add_argument("--jobs", type=int, default=None, help="writer processes (default: all cores)")
    ap.add_argument("--no-generate", action="store_true", help="time an existing store")
    ap.add_argument("--fresh", action="store_true", help="delete ROOT first")
    ap.add_argument(
        "--no-summaries", action="store_true", help="generate runs without summary.parquet (older stores)"
    )
    ap.add_argument("--render-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.render_only:  # one process of time_app
        print(json.dumps(render_leaderboard(args.root)))
        return 0
    if args.fresh and args.root.exists():
        shutil.rmtree(args.root)
    # A fresh index folder, so the first read is timed as a first visit ever.
    os.environ["BENCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-store-bench-")
    if not args.no_generate:
        t0 = time.perf_counter()
        n = generate(args.root, args.runs, args.items, args.jobs, summaries=not args.no_summaries)
        print(f"generated {args.runs} runs, {n:,} sample rows in {time.perf_counter() - t0:.1f} s")
    for k, v in time_data_layer(args.root).items():
        print(f"data layer  {k:50s} {v:10.3f}" + ("" if k in ("primary rows", "run folders") else " s"))
    for k, v in time_app(args.root).items():
        verdict = "within" if v < TARGET_S else "OVER"
        print(
            f"app         {k:50s} {v:10.3f} s   {v / TARGET_S:4.2f} of the {TARGET_S:.0f} s target ({verdict})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
