"""Steady state against lm-eval, and how close each engine comes to the machine's limits.

Each side runs in a fresh interpreter so that start-up (imports, model load) is counted as a user
pays it, then split from the steady per-item rate:

- bench: `bench run` of the default MCQ path (SmolLM2-135M Q4_1 through llama.cpp, the suite's
  default settings: `n_threads: auto`, batch 8, one warm-up item). Start-up = the command's wall time
  minus the task's scoring wall time (the runs row's wall_s, the sum of its batches' wall times).
- lm-eval 0.4.13: its `hf` model on the same GGUF weights (transformers dequantizes them to float32),
  batch 8, torch's default threads. Steady rate = items / time inside `loglikelihood` (lm-eval sends
  all of a task's requests in one call); start-up = everything else, interpreter start included.
  Run with torch's default threads and with one; the faster is the one compared.

Both score the same first N ARC-Easy validation items; predictions are compared item by item.

Utilization = tokens evaluated x 2 x parameters / scoring wall time, against a measured GEMM peak
(numpy and torch float32, torch bfloat16; all cores). Tokens evaluated: bench's own count (shared
context evaluated once per item); for lm-eval, every (context + continuation)[:-1] it runs, padding
left out. 2 x parameters per token counts the output layer for every token, which llama.cpp only
computes for the rows it needs logits of (a slight over-count in bench's favour, said here).

Decode: bench's generation tokens/s against the memory-bandwidth bound (GGUF bytes read per token
/ bandwidth of a large array copy).

    python -m tests.perf.steady_state [--items 200] [--skip-lm-eval]
    python -m tests.perf.steady_state lm-eval-child N OUT.json   (used internally)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

MODEL = "smollm2-135m"


def _load_avg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


# ---------------------------------------------------------------- bench


def bench_side(n: int, workdir: Path, n_threads: int | str = "auto") -> dict[str, Any]:
    import yaml

    from bench import store

    suite = workdir / "steady.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "name": "steady",
                "defaults": {"limit": n},
                "models": [{"name": MODEL, "n_threads": n_threads}],
                "tasks": [{"name": "arc", "kind": "mcq", "dataset": "arc_easy"}],
            }
        )
    )
    root = workdir / f"results-{n_threads}"
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", str(suite), "-o", str(root)],
        capture_output=True,
        text=True,
    )
    e2e = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"bench run failed ({done.returncode}): {done.stderr[-2000:]}")
    runs = store.runs_dataset(root).to_table().to_pandas()
    row = runs[runs["primary"]].iloc[0]
    samples = store.samples_dataset(root).to_table().to_pandas().sort_values("item_index")
    assert len(samples) == n and samples["error"].isna().all()
    return {
        "e2e_s": e2e,
        "scoring_s": float(row["wall_s"]),
        "load_s": float(row["load_s"]),
        "startup_s": e2e - float(row["wall_s"]),
        "items_per_s": n / float(row["wall_s"]),
        "acc": float(row["value"]),
        "preds": [int(x) for x in samples["pred_index"]],
        "tokens_evaluated": int(samples["tokens_evaluated"].sum()),
        "engine_settings": json.loads(row["engine_settings"]),
    }


# ---------------------------------------------------------------- lm-eval (child process)


def _lm_eval_child(n: int, out: Path, threads: int) -> None:
    t_start = time.perf_counter()
    import lm_eval
    import torch
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from bench.catalog import MODELS
    from tests.integration.lm_eval_util import write_check_task

    if threads:
        torch.set_num_threads(threads)
    gguf = MODELS[MODEL].resolve()
    lm = HFLM(pretrained=str(gguf.parent), gguf_file=gguf.name, dtype="float32", device="cpu", batch_size=8)
    t_loaded = time.perf_counter()
    spent: list[float] = []
    seen: list[Any] = []
    inner = lm.loglikelihood

    def timed(requests: Any, *a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        res = inner(requests, *a, **k)
        spent.append(time.perf_counter() - t0)
        seen.extend(requests)
        return res

    lm.loglikelihood = timed  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as d:
        task = write_check_task("arc_easy", Path(d))
        res = lm_eval.simple_evaluate(
            model=lm,
            tasks=[task],
            task_manager=TaskManager(include_path=d, include_defaults=False),
            limit=n,
            bootstrap_iters=0,
            log_samples=True,
        )
    t_end = time.perf_counter()
    assert res is not None
    docs = sorted(res["samples"][task], key=lambda s: s["doc_id"])
    preds = [int(np.argmax([r[0] for r in s["filtered_resps"]])) for s in docs]
    tokens = 0
    for r in seen:
        ctx, cont = lm._encode_pair(*r.args)
        tokens += len(ctx) + len(cont) - 1
    out.write_text(
        json.dumps(
            {
                "import_and_load_s": t_loaded - t_start,
                "scoring_s": sum(spent),
                "in_process_s": t_end - t_start,
                "acc": res["results"][task]["acc,none"],
                "preds": preds,
                "requests": len(seen),
                "tokens_evaluated": tokens,
                "torch_threads": torch.get_num_threads(),
            }
        )
    )


def lm_eval_side(n: int, workdir: Path, threads: int = 0) -> dict[str, Any]:
    """threads: torch's thread count in lm-eval's process (0: torch's default, all cores)."""
    out = workdir / f"lm_eval-{threads}.json"
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tests.perf.steady_state", "lm-eval-child", str(n), str(out), str(threads)],
        capture_output=True,
        text=True,
    )
    e2e = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"lm-eval child failed ({done.returncode}): {done.stderr[-2000:]}")
    r = json.loads(out.read_text())
    return {
        **r,
        "e2e_s": e2e,
        "startup_s": e2e - r["scoring_s"],
        "items_per_s": n / r["scoring_s"],
    }


# ---------------------------------------------------------------- the machine's limits


def _best(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def gemm_peak(size: int = 2048, repeat: int = 5) -> dict[str, float]:
    """GFLOP/s of a square matmul, best of `repeat`; torch at one thread and at all cores, the
    better counted (on a loaded VM two threads can lose to one, as llama.cpp's do)."""
    flops = 2 * size**3
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((size, size), dtype=np.float32)
    out = {"numpy_f32_gflops": flops / _best(lambda: a @ b, repeat) / 1e9}
    import torch

    default = torch.get_num_threads()
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    ha, hb = ta.to(torch.bfloat16), tb.to(torch.bfloat16)
    for n in sorted({1, default}):
        torch.set_num_threads(n)
        torch.matmul(ta, tb)
        out[f"torch_f32_{n}t_gflops"] = flops / _best(lambda: torch.matmul(ta, tb), repeat) / 1e9
        torch.matmul(ha, hb)
        out[f"torch_bf16_{n}t_gflops"] = flops / _best(lambda: torch.matmul(ha, hb), repeat) / 1e9
    torch.set_num_threads(default)
    out["torch_f32_gflops"] = max(v for k, v in out.items() if k.startswith("torch_f32_"))
    out["torch_bf16_gflops"] = max(v for k, v in out.items() if k.startswith("torch_bf16_"))
    return out


def copy_bandwidth(mb: int = 512, repeat: int = 5) -> float:
    """GB/s of a large array copy (bytes read + bytes written)."""
    src = np.ones(mb * 2**20 // 8, dtype=np.float64)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    t = _best(lambda: np.copyto(dst, src), repeat)
    return 2 * src.nbytes / t / 1e9


def decode_speed(n_tokens: int = 64) -> dict[str, Any]:
    """bench's generation decode rate (output tokens / time after the first), default threads."""
    from bench.backends.base import GenerateRequest
    from bench.backends.llamacpp import LlamaCppBackend
    from bench.catalog import MODELS

    path = MODELS[MODEL].resolve()
    be = LlamaCppBackend(path, model_name=MODEL)
    try:
        prompts = [f"Write a short story about a {w} who" for w in ("cat", "robot", "sailor", "baker")]
        reqs = [GenerateRequest(str(i), p, max_tokens=n_tokens) for i, p in enumerate(prompts)]
        be.generate(reqs[:1])  # warm-up
        best = 0.0
        for _ in range(3):
            out = be.generate(reqs)
            toks = sum(max(r.output_tokens - 1, 0) for r in out)
            secs = sum(r.latency_s - (r.ttft_s or 0.0) for r in out)
            best = max(best, toks / secs)
        return {
            "decode_tok_s": best,
            "n_threads": be.n_threads,
            "params": int(be.llm._model.n_params()),
            "file_bytes": path.stat().st_size,
        }
    finally:
        be.close()


# ---------------------------------------------------------------- the report


def steady_state(n: int = 200, *, skip_lm_eval: bool = False) -> dict[str, Any]:
    """The sections `nox -s perf` prints: steady_state, utilization, decode_bound."""
    load_before = _load_avg()
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        bench = bench_side(n, work)
        lm = None
        if not skip_lm_eval:
            # torch's default (all cores) and one thread: compared against lm-eval's faster one,
            # since on some machines one thread is much faster (see bench's n_threads: auto)
            runs = [lm_eval_side(n, work, t) for t in (0, 1)]
            lm = min(runs, key=lambda r: r["scoring_s"])
            lm["other_threads_items_per_s"] = max(runs, key=lambda r: r["scoring_s"])["items_per_s"]
    peak = gemm_peak()
    bw = copy_bandwidth()
    dec = decode_speed()
    flops_per_token = 2 * dec["params"]
    report: dict[str, Any] = {}
    st: dict[str, Any] = {
        "items": n,
        "load_avg_before": load_before,
        "load_avg_after": _load_avg(),
        "bench_startup_s": bench["startup_s"],
        "bench_load_s": bench["load_s"],
        "bench_items_per_s": bench["items_per_s"],
        "bench_e2e_s": bench["e2e_s"],
        "acc_bench": bench["acc"],
        "bench_n_threads": bench["engine_settings"]["n_threads"],
        "bench_thread_probe_s": bench["engine_settings"].get("thread_probe_s"),
    }
    if lm is not None:
        agree = sum(a == b for a, b in zip(bench["preds"], lm["preds"], strict=True))
        st |= {
            "lm_eval_startup_s": lm["startup_s"],
            "lm_eval_items_per_s": lm["items_per_s"],
            "lm_eval_e2e_s": lm["e2e_s"],
            "acc_lm_eval": lm["acc"],
            "acc_diff": bench["acc"] - lm["acc"],
            "same_predictions": f"{agree}/{n}",
            "per_item_rate_ratio": bench["items_per_s"] / lm["items_per_s"],
            "per_item_goal": ">= 3",
            "e2e_ratio": lm["e2e_s"] / bench["e2e_s"],
            "e2e_goal": ">= 3",
            "lm_eval_torch_threads": lm["torch_threads"],
            "lm_eval_other_threads_items_per_s": lm["other_threads_items_per_s"],
        }
    report["steady_state"] = st
    best_f32 = max(peak["numpy_f32_gflops"], peak["torch_f32_gflops"])
    util: dict[str, Any] = {
        **peak,
        "bench_tokens_evaluated": bench["tokens_evaluated"],
        "bench_gflops": bench["tokens_evaluated"] * flops_per_token / bench["scoring_s"] / 1e9,
    }
    util["bench_of_f32_peak"] = util["bench_gflops"] / best_f32
    util["bench_of_bf16_peak"] = util["bench_gflops"] / peak["torch_bf16_gflops"]
    util["goal"] = ">= 0.5 (bench, of the f32 peak)"
    if lm is not None:
        util["lm_eval_tokens_evaluated"] = lm["tokens_evaluated"]
        util["lm_eval_gflops"] = lm["tokens_evaluated"] * flops_per_token / lm["scoring_s"] / 1e9
        util["lm_eval_of_f32_peak"] = util["lm_eval_gflops"] / best_f32
    report["utilization"] = util
    bound = bw * 1e9 / dec["file_bytes"]
    report["decode_bound"] = {
        "copy_gb_s": bw,
        "model_mb_per_token": dec["file_bytes"] / 1e6,
        "bound_tok_s": bound,
        "bench_decode_tok_s": dec["decode_tok_s"],
        "of_bound": dec["decode_tok_s"] / bound,
        "n_threads": dec["n_threads"],
    }
    return report


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["lm-eval-child"]:
        _lm_eval_child(int(argv[1]), Path(argv[2]), int(argv[3]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--skip-lm-eval", action="store_true")
    args = ap.parse_args(argv)
    rep = steady_state(args.items, skip_lm_eval=args.skip_lm_eval)
    for section, vals in rep.items():
        print(
            f"{section:>14}: "
            + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in vals.items())
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
