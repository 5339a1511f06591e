"""`nox -s perf`: bench against its engine and against lm-eval, as ratios measured side by side in
one run (absolute times drift on shared machines). Prints a table and writes JSON.

    python -m tests.perf.run_perf [--items 40] [--out perf.json] [--skip-lm-eval]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _best(fn: Callable[[], Any], repeat: int = 3) -> float:
    """Best of `repeat` wall times: the least disturbed by the rest of the machine."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _items(n: int) -> tuple[Any, list[Any]]:
    from bench.specs.tasks import MCQSpec
    from bench.tasks.mcq import MultipleChoice

    task = MultipleChoice(MCQSpec(name="arc", kind="mcq", dataset="arc_easy"), limit=n, num_fewshot=0, seed=1)
    return task, task.items()


def harness_overhead(n: int) -> dict[str, Any]:
    """bench's multiple-choice scoring (task + backend + scoring) vs a minimal script making the same
    llama-cpp-python calls with the same context sharing."""
    import llama_cpp

    from bench.backends.llamacpp import LlamaCppBackend
    from bench.backends.logits import log_softmax_pick
    from bench.catalog import MODELS

    path = str(MODELS["smollm2-135m"].resolve())
    task, items = _items(n)
    backend = LlamaCppBackend(path, model_name="smollm2-135m", n_threads=1)

    def with_bench() -> list[int]:
        return [r["pred_index"] for r in task.evaluate(backend, items)]

    raw = llama_cpp.Llama(
        model_path=path, n_ctx=2048, n_threads=1, n_threads_batch=1, logits_all=True, verbose=False
    )
    prepared = []
    for it in items:
        ctxs = task.contexts(it)
        pairs = [backend.encode_pair(c, " " + x) for c, x in zip(ctxs, it.record["choices"], strict=True)]
        prepared.append(pairs)

    def minimal() -> list[int]:
        preds = []
        for pairs in prepared:
            lls = []
            ctx = pairs[0][0]
            raw.reset()
            raw.eval(ctx)  # the shared context once
            for c, cont in pairs:
                raw.n_tokens = len(c) - 1  # rewind to the last context token, keep the rest
                raw.eval([c[-1], *cont])
                rows = raw.scores[len(c) - 1 : len(c) - 1 + len(cont)]
                lls.append(log_softmax_pick(rows, np.asarray(cont))[0])
            preds.append(int(np.argmax(lls)))
        return preds

    same = with_bench() == minimal()
    t_bench, t_raw = _best(with_bench), _best(minimal)

    def each_choice_in_full() -> None:
        for pairs in prepared:
            for c, cont in pairs:
                raw.reset()
                raw.eval(c + cont)

    t_full = _best(each_choice_in_full, repeat=1)
    backend.close()
    raw.close()
    return {
        "harness_overhead": {
            "bench_s": t_bench,
            "raw_s": t_raw,
            "ratio": t_bench / t_raw,
            "goal": "<= 1.05",
            "same_predictions": same,
            "items": n,
        },
        "context_sharing": {
            "shared_s": t_bench,
            "full_prompt_per_choice_s": t_full,
            "speedup": t_full / t_bench,
        },
    }


def generation(n_tokens: int = 64) -> dict[str, Any]:
    import llama_cpp

    from bench.backends.base import GenerateRequest
    from bench.backends.llamacpp import LlamaCppBackend
    from bench.catalog import MODELS

    path = str(MODELS["smollm2-135m"].resolve())
    prompts = [f"Write a short story about a {w} who" for w in ("cat", "robot", "sailor", "baker")]
    backend = LlamaCppBackend(path, model_name="s", n_threads=1)
    raw = llama_cpp.Llama(model_path=path, n_ctx=2048, n_threads=1, n_threads_batch=1, verbose=False)

    def with_bench() -> int:
        out = backend.generate(
            [GenerateRequest(str(i), p, max_tokens=n_tokens) for i, p in enumerate(prompts)]
        )
        return sum(r.output_tokens for r in out)

    def minimal() -> int:
        total = 0
        for p in prompts:
            raw.reset()
            toks = raw.tokenize(p.encode(), add_bos=True)
            for k, tok in enumerate(raw.generate(toks, temp=0.0, top_k=1)):
                if llama_cpp.llama_vocab_is_eog(raw._model.vocab, tok) or k + 1 >= n_tokens:
                    break
                raw.detokenize([tok])
                total += 1
        return total

    nb, nr = with_bench(), minimal()
    t_bench, t_raw = _best(with_bench), _best(minimal)
    backend.close()
    raw.close()
    return {
        "generation": {
            "bench_tok_s": nb / t_bench,
            "raw_tok_s": nr / t_raw,
            "ratio": (nr / t_raw) / (nb / t_bench),
            "goal": "<= 1.05",
            "tokens": [nb, nr],
        }
    }


def store_speed(rows: int = 100_000) -> dict[str, Any]:
    import pyarrow.dataset as ds

    from bench import store

    template = {
        "run_id": "r",
        "suite": "s",
        "suite_hash": "h",
        "seed": 1,
        "bench_version": "x",
        "git_sha": "g",
        "hardware": "hw",
        "task": "t",
        "task_kind": "mcq",
        "dataset": "d",
        "model": "m",
        "backend": "b",
        "method": "loglikelihood",
        "prompt": "Question: what?\nAnswer:",
        "score": 1.0,
        "correct": True,
        "scores": {"acc": 1.0, "acc_norm": 0.0},
        "choice_logliks": [-1.0, -2.0, -3.0, -4.0],
        "latency_s": 0.1,
        "input_tokens": 40,
        "tokens_evaluated": 44,
        "warmup": False,
    }
    with tempfile.TemporaryDirectory() as d:
        w = store.RunWriter(Path(d), "m", "t")
        batch = [{**template, "item_id": f"i{k}", "item_index": k} for k in range(1000)]
        t0 = time.perf_counter()
        for _ in range(rows // 1000):
            w.append(batch)
        t_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        n = (
            store.samples_dataset(Path(d))
            .to_table(filter=ds.field("model") == "m", columns=["score"])
            .num_rows
        )
        t_read = time.perf_counter() - t0
    return {
        "store": {
            "append_rows": rows,
            "append_s": t_write,
            "rows_per_s": rows / t_write,
            "filtered_read_s": t_read,
            "rows_read": n,
        }
    }


def against_lm_eval(n: int, *, skip_lm_eval: bool) -> dict[str, Any]:
    """Start-up and steady per-item rate apart, bench's default MCQ path vs lm-eval's `hf` model on
    the same >= 200 ARC-Easy items and weights; utilization and the decode bound (steady_state.py)."""
    from tests.perf.steady_state import steady_state

    return steady_state(n, skip_lm_eval=skip_lm_eval)


def startup() -> dict[str, Any]:
    import subprocess

    def t(args: list[str]) -> float:
        return _best(
            lambda: subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True), 3
        )

    return {
        "startup": {
            "help_s": t(["--help"]),
            "validate_s": t(["validate", "suites/reasoning.yaml"]),
            "goal": "< 1 s",
        }
    }


def load_generator() -> dict[str, Any]:
    """`bench load`'s generator against the zero-latency server (bench.load.overhead): its stamps vs
    the server's, and its highest sustained Poisson rate against what SmolLM2 serves here (short
    answers, one at a time through llama.cpp: the rate a 2-core machine's models can serve)."""
    from bench.backends.base import GenerateRequest
    from bench.backends.llamacpp import LlamaCppBackend
    from bench.catalog import MODELS
    from bench.load.overhead import measure, summary

    got = summary(measure())
    backend = LlamaCppBackend(str(MODELS["smollm2-135m"].resolve()), model_name="s", n_threads=1)
    reqs = [GenerateRequest(str(k), f"Q: What is {k} + {k + 1}?\nA:", max_tokens=16) for k in range(8)]
    backend.generate(reqs[:1])
    t0 = time.perf_counter()
    backend.generate(reqs)
    model_rate = len(reqs) / (time.perf_counter() - t0)
    backend.close()
    return {
        "load_generator": {
            **got,
            "ttft_error_p99_vs_1ms": got["ttft_error_p99_ms"] / 1.0,
            "goal_stamps": "p99 error < 1 ms (ratio < 1)",
            "smollm2_req_s": model_rate,
            "rate_vs_model": got["max_sustained_per_s"] / model_rate,
            "goal_rate": ">= 10",
        }
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--items", type=int, default=40)
    ap.add_argument("--out", default="perf.json")
    ap.add_argument("--skip-lm-eval", action="store_true")
    ap.add_argument("--steady-items", type=int, default=200, help="ARC-Easy items for the steady state")
    args = ap.parse_args(argv)
    report: dict[str, Any] = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    report |= startup()
    report |= harness_overhead(args.items)
    report |= generation()
    report |= store_speed()
    report |= load_generator()
    report |= against_lm_eval(args.steady_items, skip_lm_eval=args.skip_lm_eval)
    Path(args.out).write_text(json.dumps(report, indent=2))
    for section, vals in report.items():
        if isinstance(vals, dict):
            print(
                f"{section:>18}: "
                + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in vals.items())
            )
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
