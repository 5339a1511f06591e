"""Issue 12 item 10: a choice's log-likelihood must not depend on how its tokens are batched.

bench decodes an item's context once and each continuation after it; the reference decodes
(context + continuation) in one pass from an empty cache. On Gemma-3-270M (Q4_K_M) ggml's
repacked and tiled K-quant kernels made the two differ (up to 0.55 nats, predictions flipped);
the backend turns both off, and the two must now agree exactly, as SmolLM2 (Q4_1) always did.

The check runs in a fresh interpreter: ggml reads its tiled-matmul switch once per process, at
the first matmul, so a model run earlier in the pytest process must not decide it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, sys, time
from bench.backends.base import LoglikelihoodRequest
from bench.backends.llamacpp import LlamaCppBackend
from bench.catalog import MODELS
from bench.config import parse_suite
from bench.tasks import create_task

model, n = sys.argv[1], int(sys.argv[2])
be = LlamaCppBackend(MODELS[model].resolve(), model_name=model, n_ctx=2048, n_threads=1)
suite = parse_suite({"name": "s", "models": [{"name": "f", "backend": "fake"}],
                     "tasks": [{"name": "a", "kind": "mcq", "dataset": "arc_easy"}]})
task = create_task(suite.tasks[0], {**suite.effective_task(suite.tasks[0]), "limit": n})
reqs = [LoglikelihoodRequest(it.id, tuple(zip(task.contexts(it), [" " + c for c in it.record["choices"]])))
        for it in task.items()]
t0 = time.perf_counter()
got = be.loglikelihood(reqs)
per_item = (time.perf_counter() - t0) / len(reqs)
pairs = []
for req, resp in zip(reqs, got):
    assert resp.error is None, resp.error
    for (c, x), ll in zip(req.pairs, resp.logliks):
        ctx, cont = be.encode_pair(c, x)
        be.llm._ctx.kv_cache_seq_rm(-1, 0, -1)  # empty cache: one pass over context + continuation
        be._kv, be._canon = [], []
        ref, _ = be._decode(ctx + cont, 0, len(ctx) - 1)
        pairs.append([req.item_id, x, ll, ref])
print(json.dumps({"pairs": pairs, "s_per_item": per_item}))
"""


@pytest.mark.parametrize("model", ["gemma3-270m", "smollm2-135m"])
def test_continuation_after_cached_context_equals_one_pass(model: str) -> None:
    pytest.importorskip("llama_cpp", reason="needs the cpu extra: pip install 'bench[cpu]'")
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT, model, "8"], capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    pairs = out["pairs"]
    assert len(pairs) >= 8 * 3  # ARC-Easy has 3-5 choices: most pairs reuse a cached context
    off = [(item, cont, ll - ref) for item, cont, ll, ref in pairs if ll != ref]
    assert not off, (
        f"{len(off)}/{len(pairs)} pairs differ, max {max(abs(d) for *_, d in off):.3g} nats: {off[:3]}"
    )
