"""Any lm-eval-harness task, run through bench's backends and measurements.

lm-eval builds the requests (its prompts, few-shot sampling, chat-free formatting), bench's backend
answers them (log-likelihoods with the shared context, generations, rolling log-likelihoods),
then lm-eval's own filters and `process_results` score each document. bench stores one row per
document with lm-eval's per-document metrics, so its means equal lm-eval's for mean-aggregated
metrics. Corpus-level metrics (e.g. BLEU) are not per-item numbers and are left out.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from bench.backends.base import Backend, GenerateRequest, LoglikelihoodRequest, RollingRequest
from bench.errors import BackendUnavailable, ConfigError
from bench.metrics import kinds
from bench.metrics.metric import Metric, primary_of
from bench.registry import did_you_mean
from bench.specs.tasks import LmEvalSpec
from bench.tasks.base import Item, prompt_hash

HINT = "pip install 'bench[lmeval]'"


class LmEvalTask:
    kind = "lm_eval"

    def __init__(
        self, spec: LmEvalSpec, *, limit: int | None, num_fewshot: int, seed: int, batch_size: int = 8
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.dataset = f"lm_eval:{spec.task}"
        self.limit = limit
        self.num_fewshot = spec.num_fewshot  # None: the task's own default
        self.seed = seed
        self._task: Any = None
        self._items: list[Item] | None = None
        self.metrics: tuple[Metric, ...] = kinds.LM_EVAL  # until items() loads lm-eval's task

    @property
    def primary_metric(self) -> str:
        """lm-eval's first listed metric ("score" when its task lists none)."""
        return primary_of(self.metrics).name if self.metrics else "score"

    def _load(self) -> Any:
        try:
            from lm_eval.tasks import TaskManager
        except ImportError as e:
            raise BackendUnavailable("lm_eval", f"lm-eval is not installed ({e})", HINT) from None
        os.environ.setdefault("HF_DATASETS_TRUST_REMOTE_CODE", "0")
        tm = TaskManager(include_path=self.spec.include_path, include_defaults=self.spec.include_defaults)
        if self.spec.task not in tm.all_tasks:
            where = (
                ""
                if self.spec.include_defaults
                else " (set include_defaults: true for lm-eval's built-in tasks)"
            )
            raise ConfigError(
                f"task {self.name!r}: unknown lm-eval task {self.spec.task!r}{where}; "
                f"{did_you_mean(self.spec.task, list(tm.all_tasks))}"
            )
        loaded = tm.load([self.spec.task])["tasks"]
        if len(loaded) != 1:
            raise ConfigError(
                f"task {self.name!r}: {self.spec.task!r} is a group of {len(loaded)} tasks; "
                f"name one of them: {', '.join(sorted(loaded)[:8])}"
            )
        task = next(iter(loaded.values()))
        if self.num_fewshot is not None:
            task.set_config(key="num_fewshot", value=self.num_fewshot)
        task.set_fewshot_seed(seed=self.seed)
        return task

    def items(self) -> list[Item]:
        if self._items is not None:
            return self._items
        task = self._task = self._load()
        task.build_all_requests(limit=self.limit, rank=0, world_size=1)
        by_doc: dict[int, list[Any]] = {}
        for inst in task.instances:
            by_doc.setdefault(inst.doc_id, []).append(inst)
        self._items = [
            Item(id=str(doc_id), index=doc_id, record={"instances": sorted(insts, key=lambda i: i.idx)})
            for doc_id, insts in sorted(by_doc.items())
        ]
        self.metrics = task_metrics(task)
        return self._items

    def evaluate(self, backend: Backend, items: Sequence[Item]) -> list[dict[str, Any]]:
        task = self._task
        insts = [inst for it in items for inst in it.record["instances"]]
        for inst in insts:
            inst.resps.clear()
            inst.filtered_resps.clear()
        timing = {
            it.id: {"latency_s": 0.0, "input_tokens": 0, "output_tokens": 0, "ttft_s": None} for it in items
        }
        errors: dict[str, str] = {}
        self._answer_loglikelihood(backend, items, timing, errors)
        self._answer_generate(backend, items, timing, errors)
        self._answer_rolling(backend, items, timing, errors)
        ok_insts = [i for i in insts if str(i.doc_id) not in errors]
        if ok_insts:
            for f in task._filters:
                f.apply(ok_insts)
        rows = []
        for it in items:
            first = it.record["instances"][0]
            row: dict[str, Any] = {
                "item_id": it.id,
                "item_index": it.index,
                "method": f"lm_eval:{first.request_type}",
                "prompt": str(first.args[0]),
                "prompt_hash": prompt_hash(*(str(a) for i in it.record["instances"] for a in i.args[:2])),
                "tokens_evaluated": None,
                **timing[it.id],
            }
            if it.id in errors:
                rows.append({**row, "error": errors[it.id]})
                continue
            rows.append({**row, **self._score(it)})
        return rows

    def _score(self, it: Item) -> dict[str, Any]:
        task = self._task
        instances = it.record["instances"]
        doc = instances[0].doc
        scores: dict[str, float] = {}
        for key in instances[0].filtered_resps:
            results = [inst.filtered_resps[key] for inst in instances]
            for metric, value in task.process_results(doc, results).items():
                if isinstance(value, bool | int | float):
                    scores[metric if key == "none" or not scores else f"{metric},{key}"] = float(value)
        out: dict[str, Any] = {"scores": scores, "score": scores.get(self.primary_metric)}
        if out["score"] in (0.0, 1.0):
            out["correct"] = bool(out["score"])
        try:
            out["reference"] = str(task.doc_to_target(doc))
        except Exception:  # some tasks have no single target
            out["reference"] = None
        first = instances[0]
        if first.request_type == "generate_until":
            out["raw_output"] = str(first.resps[0])
            filtered = next(iter(first.filtered_resps.values()))
            out["prediction"] = out["extracted"] = str(filtered)
        elif first.request_type == "loglikelihood":
            lls = [float(inst.resps[0][0]) for inst in instances]
            out["choice_logliks"] = lls
            best = max(range(len(lls)), key=lls.__getitem__)
            out["pred_index"] = best
            out["prediction"] = str(instances[best].args[1]).strip()
        return out

    # ---------------------------------------------------------------- answering lm-eval's requests

    def _answer_loglikelihood(
        self, backend: Backend, items: Sequence[Item], timing: Any, errors: Any
    ) -> None:
        groups = [
            (
                it,
                [i for i in it.record["instances"] if i.request_type in ("loglikelihood", "multiple_choice")],
            )
            for it in items
        ]
        groups = [(it, g) for it, g in groups if g]
        if not groups:
            return
        reqs = [
            LoglikelihoodRequest(it.id, tuple((str(i.args[0]), str(i.args[1])) for i in g))
            for it, g in groups
        ]
        for (it, g), resp in zip(groups, backend.loglikelihood(reqs), strict=True):
            if resp.error:
                errors[it.id] = resp.error
                continue
            for inst, ll, greedy in zip(g, resp.logliks, resp.is_greedy, strict=True):
                inst.resps.append((ll, greedy))
            timing[it.id]["latency_s"] += resp.latency_s
            timing[it.id]["input_tokens"] += resp.input_tokens
            timing[it.id]["tokens_evaluated"] = resp.tokens_evaluated

    def _answer_generate(self, backend: Backend, items: Sequence[Item], timing: Any, errors: Any) -> None:
        pending = [
            (it, i) for it in items for i in it.record["instances"] if i.request_type == "generate_until"
        ]
        if not pending:
            return
        reqs = []
        for it, inst in pending:
            context, kwargs = inst.args[0], (inst.args[1] if len(inst.args) > 1 else {}) or {}
            until = kwargs.get("until") or []
            reqs.append(
                GenerateRequest(
                    it.id,
                    str(context),
                    max_tokens=int(kwargs.get("max_gen_toks", 256)),
                    stop=tuple([until] if isinstance(until, str) else until),
                    temperature=float(kwargs.get("temperature", 0.0)) if kwargs.get("do_sample") else 0.0,
                )
            )
        for (it, inst), req, resp in zip(pending, reqs, backend.generate(reqs), strict=True):
            if resp.error:
                errors[it.id] = resp.error
                continue
            inst.resps.append(resp.text)
            t = timing[it.id]
            if t.get("finish_reason") != "length":  # an item is cut when any of its generations is
                t["finish_reason"] = resp.finish_reason
            t["max_tokens"] = max(t.get("max_tokens") or 0, req.max_tokens)
            t["latency_s"] += resp.latency_s
            t["input_tokens"] += resp.input_tokens
            t["output_tokens"] += resp.output_tokens
            t["ttft_s"] = resp.ttft_s if t["ttft_s"] is None else t["ttft_s"]

    def _answer_rolling(self, backend: Backend, items: Sequence[Item], timing: Any, errors: Any) -> None:
        pending = [
            (it, i)
            for it in items
            for i in it.record["instances"]
            if i.request_type == "loglikelihood_rolling"
        ]
        if not pending:
            return
        reqs = [RollingRequest(it.id, str(inst.args[0])) for it, inst in pending]
        for (it, inst), resp in zip(pending, backend.loglikelihood_rolling(reqs), strict=True):
            if resp.error:
                errors[it.id] = resp.error
                continue
            inst.resps.append(resp.loglik)
            timing[it.id]["latency_s"] += resp.latency_s
            timing[it.id]["input_tokens"] += resp.tokens


def task_metrics(task: Any) -> tuple[Metric, ...]:
    """An lm-eval task's metrics as bench's: its `metric_list` order (else its higher_is_better
    keys), the first primary, direction from the task's `higher_is_better()`, means of items."""
    names = [m["metric"] for m in task.config.metric_list or []] or list(task.higher_is_better())
    hib = task.higher_is_better()
    return tuple(
        Metric(str(n), higher_is_better=hib.get(str(n)) is not False, primary=i == 0)
        for i, n in enumerate(names)
    )
