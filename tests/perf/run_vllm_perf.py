"""`nox -s vllm -- perf`: bench's vLLM backend against vLLM itself on CPU, as ratios measured side by side
in one run (absolute times drift on shared machines). Prints each ratio with its goal and writes JSON.

    nox -s vllm -- perf [--prompts 64 ...], or in that environment:
    python -m tests.perf.run_vllm_perf [--prompts 64] [--max-tokens 64] [--items 40] [--out perf-vllm.json]

- throughput: bench's `generate` on a batch of prompts vs `vllm bench throughput` (its own code,
  vllm.benchmarks.throughput, in a separate process) on the same prompts, model and engine
  settings, both sampling at temperature 1 as vLLM's command does. vLLM's command ignores EOS and
  generates exactly --output-len tokens per prompt; bench stops at EOS, so the figure compared is
  output tokens per second, with each side's token count printed. Goal >= 0.9.
- scoring: bench's `loglikelihood` on ARC-Easy items vs a minimal script making the same
  `LLM.generate` calls (token prompts, prompt_logprobs=1, max_tokens=1) on the same engine, the
  pairs tokenized beforehand. Goal >= 0.95.

Start-up (import + engine load) and steady state (the timed batch, after a warm-up batch) are
reported apart: on this model a load takes ~30 s, longer than the batches, and is not what the ratios
are about. The two engines never run at once: vLLM's command runs first, in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ENV = {"VLLM_CPU_KVCACHE_SPACE": "1"}
# `vllm bench throughput` is vllm.benchmarks.throughput's add_cli_args + main; vLLM's CLI entry
# (`python -m vllm.entrypoints.cli.main`) dies on the vllm-cpu distribution looking up the version
# of a package named vllm, so the subcommand is called as that CLI calls it.
VLLM_BENCH_THROUGHPUT = (
    "import sys; from vllm.benchmarks.throughput import add_cli_args, main; "
    "from vllm.utils.argparse_utils import FlexibleArgumentParser; "
    "p = FlexibleArgumentParser(); add_cli_args(p); main(p.parse_args(sys.argv[1:]))"
)
ENGINE = {"dtype": "bfloat16", "max_model_len": 2048, "seed": 1}
SUBJECTS = ("cat", "robot", "sailor", "baker", "dragon", "teacher", "river", "clock")
PLACES = ("a small town", "the sea", "a forest", "the moon", "a kitchen", "a library", "a train", "a farm")


def prompts(n: int) -> list[str]:
    """n distinct story openings (plain completion: the model rarely ends a story within 64 tokens)."""
    return [
        f"Once upon a time, in {PLACES[(i // len(SUBJECTS)) % len(PLACES)]}, there lived a "
        f"{SUBJECTS[i % len(SUBJECTS)]} number {i} who"
        for i in range(n)
    ]


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def vllm_bench_throughput(folder: Path, texts: list[str], max_tokens: int, warmups: int) -> dict[str, Any]:
    """`vllm bench throughput` on the prompts (as a ShareGPT file, output length fixed)."""
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "prompts.json"
        data.write_text(
            json.dumps(
                [
                    {"conversations": [{"from": "human", "value": t}, {"from": "gpt", "value": "x " * 8}]}
                    for t in texts
                ]
            )
        )
        out = Path(d) / "result.json"
        cmd = [
            sys.executable, "-c", VLLM_BENCH_THROUGHPUT,
            "--model", str(folder), "--dataset-name", "sharegpt", "--dataset-path", str(data),
            "--num-prompts", str(len(texts)), "--output-len", str(max_tokens),
            "--num-warmups", str(warmups), "--dtype", ENGINE["dtype"],
            "--max-model-len", str(ENGINE["max_model_len"]), "--enforce-eager",
            "--seed", str(ENGINE["seed"]), "--output-json", str(out),
        ]  # fmt: skip
        wall, r = _timed(
            lambda: subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **ENV})
        )
        if r.returncode != 0:
            raise RuntimeError(f"vllm bench throughput failed ({r.returncode}): {r.stderr[-3000:]}")
        res = json.loads(out.read_text())
    output_tokens = res["num_requests"] * max_tokens  # ignore_eos: exactly --output-len each
    elapsed = float(res["elapsed_time"])
    return {
        "requests": res["num_requests"],
        "output_tokens": output_tokens,
        "steady_s": elapsed,
        "output_tok_s": output_tokens / elapsed,
        "startup_s": wall - elapsed,  # import, engine load, warm-up and the report
    }


def bench_side(texts: list[str], max_tokens: int, items: int, repeat: int) -> dict[str, Any]:
    os.environ.update(ENV)
    t0 = time.perf_counter()
    from bench.backends.base import GenerateRequest, LoglikelihoodRequest
    from bench.backends.vllm import SCORING_KWARGS, VLLMBackend, continuation_logprob, encode_pairs
    from bench.data import load_dataset
    from bench.specs.models import VLLMSpec

    spec = VLLMSpec(
        name="smollm2-135m",
        backend="vllm",  # the catalog model: bench resolves the same HF folder
        dtype=ENGINE["dtype"],
        max_model_len=ENGINE["max_model_len"],
        enforce_eager=True,
    )
    backend = VLLMBackend.from_spec(spec, seed=ENGINE["seed"])
    startup = time.perf_counter() - t0
    try:
        # temperature 1, as vllm bench throughput samples: the same sampler work per step
        gen_reqs = [
            GenerateRequest(str(i), t, max_tokens=max_tokens, temperature=1.0) for i, t in enumerate(texts)
        ]
        backend.generate(gen_reqs[: max(1, len(gen_reqs) // 8)])  # warm-up, as vLLM's --num-warmups
        gen_runs = [_timed(lambda: backend.generate(gen_reqs)) for _ in range(repeat)]
        gen_s, gen_out = min(gen_runs, key=lambda x: x[0])
        assert all(r.error is None for r in gen_out), [r.error for r in gen_out if r.error][:3]
        gen_tokens = sum(r.output_tokens for r in gen_out)

        recs = load_dataset("arc_easy")[:items]
        ll_reqs = [
            LoglikelihoodRequest(
                str(i), tuple((f"Question: {r['question']}\nAnswer:", " " + c) for c in r["choices"])
            )
            for i, r in enumerate(recs)
        ]
        encoded = [encode_pairs(backend.tokenize, r.pairs, backend.start_token) for r in ll_reqs]
        flat = [c + x for enc in encoded for c, x in enc]
        llm, params = backend.llm, backend._sampling_params(**SCORING_KWARGS)

        def minimal() -> list[int]:
            outs = llm.generate([{"prompt_token_ids": p} for p in flat], params, use_tqdm=False)
            k, preds = 0, []
            for enc in encoded:
                lls = []
                for ctx, cont in enc:
                    lls.append(continuation_logprob(outs[k].prompt_logprobs, len(ctx), cont)[0])
                    k += 1
                preds.append(lls.index(max(lls)))
            return preds

        def with_bench() -> list[int]:
            return [r.logliks.index(max(r.logliks)) for r in backend.loglikelihood(ll_reqs)]

        same = with_bench() == minimal()  # also the warm-up of both
        t_bench, t_raw = [], []
        for _ in range(max(3, repeat)):  # alternated, best of each: the least disturbed
            t_bench.append(_timed(with_bench)[0])
            t_raw.append(_timed(minimal)[0])
    finally:
        backend.close()
    return {
        "startup_s": startup,
        "gen": {"requests": len(gen_reqs), "output_tokens": gen_tokens, "steady_s": gen_s},
        "ll": {
            "items": len(ll_reqs),
            "requests": len(flat),
            "bench_s": min(t_bench),
            "minimal_s": min(t_raw),
            "same_predictions": same,
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--items", type=int, default=40, help="ARC-Easy items for the scoring ratio")
    ap.add_argument("--repeat", type=int, default=1, help="timed generation batches on bench's side")
    ap.add_argument("--out", default="perf-vllm.json")
    args = ap.parse_args(argv)
    from bench.catalog.hf import hf_resolve

    folder = hf_resolve("smollm2-135m")
    texts = prompts(args.prompts)
    theirs = vllm_bench_throughput(folder, texts, args.max_tokens, warmups=max(1, args.prompts // 8))
    ours = bench_side(texts, args.max_tokens, args.items, args.repeat)
    gen = ours["gen"]
    gen["output_tok_s"] = gen["output_tokens"] / gen["steady_s"]
    ll = ours["ll"]
    report: dict[str, Any] = {
        "machine": platform.platform(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "model": "smollm2-135m (bf16 HF folder)",
        "throughput": {
            "bench_output_tok_s": gen["output_tok_s"],
            "vllm_bench_output_tok_s": theirs["output_tok_s"],
            "ratio": gen["output_tok_s"] / theirs["output_tok_s"],
            "goal": ">= 0.9",
            "bench_tokens": gen["output_tokens"],
            "vllm_bench_tokens": theirs["output_tokens"],
            "prompts": gen["requests"],
            "bench_steady_s": gen["steady_s"],
            "vllm_bench_steady_s": theirs["steady_s"],
        },
        "scoring": {
            "bench_s": ll["bench_s"],
            "minimal_s": ll["minimal_s"],
            "ratio": ll["minimal_s"] / ll["bench_s"],
            "goal": ">= 0.95",
            "items": ll["items"],
            "requests": ll["requests"],
            "same_predictions": ll["same_predictions"],
        },
        "startup": {
            "bench_load_s": ours["startup_s"],
            "vllm_bench_startup_s": theirs["startup_s"],
            "note": "import + engine load (vllm bench: + its warm-up); not in the ratios",
        },
    }
    Path(args.out).write_text(json.dumps(report, indent=2))
    t, sc, st = report["throughput"], report["scoring"], report["startup"]
    print(
        f"vLLM throughput (bench / vllm bench throughput): {t['ratio']:.3f} (goal {t['goal']}): "
        f"{t['bench_output_tok_s']:.0f} vs {t['vllm_bench_output_tok_s']:.0f} output tok/s, "
        f"{t['prompts']} prompts, {t['bench_tokens']} vs {t['vllm_bench_tokens']} tokens"
    )
    print(
        f"vLLM scoring (minimal LLM.generate / bench): {sc['ratio']:.3f} (goal {sc['goal']}): "
        f"{sc['bench_s']:.2f} s vs {sc['minimal_s']:.2f} s for {sc['items']} items "
        f"({sc['requests']} requests), same predictions: {sc['same_predictions']}"
    )
    print(
        f"start-up, not in the ratios: bench load {st['bench_load_s']:.1f} s, "
        f"vllm bench start-up {st['vllm_bench_startup_s']:.1f} s"
    )
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
