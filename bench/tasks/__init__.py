"""Task kinds, created through one registry. Engines and datasets load only when a task runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.registry import Registry
from bench.tasks.base import Item, Task

__all__ = ["TASKS", "Item", "Task", "create_task", "task_dataset", "task_primary_metric"]

TaskFactory = Callable[..., Task]
TASKS: Registry[TaskFactory] = Registry("task kind")


def _kw(eff: dict[str, Any]) -> dict[str, Any]:
    return {"limit": eff["limit"], "num_fewshot": eff["num_fewshot"], "seed": eff["seed"]}


@TASKS.register("mcq")
def _mcq(spec: Any, **eff: Any) -> Task:
    from bench.tasks.mcq import MultipleChoice

    return MultipleChoice(spec, **_kw(eff))


@TASKS.register("math")
def _math(spec: Any, **eff: Any) -> Task:
    from bench.tasks.math import MathTask

    return MathTask(spec, **_kw(eff))


@TASKS.register("summarize")
def _summarize(spec: Any, **eff: Any) -> Task:
    from bench.tasks.summarize import SummarizeTask

    return SummarizeTask(spec, **_kw(eff))


@TASKS.register("qa")
def _qa(spec: Any, **eff: Any) -> Task:
    from bench.tasks.qa import QATask

    return QATask(spec, **_kw(eff))


@TASKS.register("perplexity")
def _perplexity(spec: Any, **eff: Any) -> Task:
    from bench.tasks.perplexity import PerplexityTask

    return PerplexityTask(spec, **_kw(eff))


@TASKS.register("lm_eval")
def _lm_eval(spec: Any, **eff: Any) -> Task:
    from bench.tasks.lm_eval_task import LmEvalTask

    return LmEvalTask(spec, **_kw(eff))


def create_task(spec: Any, eff: dict[str, Any]) -> Task:
    return TASKS.get(spec.kind)(spec, **eff)


def task_dataset(spec: Any) -> str:
    """A task's dataset as stored in results: a catalog name, a path, a hub id or the lm-eval task."""
    if spec.kind == "lm_eval":
        return f"lm_eval:{spec.task}"
    from bench.tasks.mcq import dataset_label

    return dataset_label(spec.dataset)


_PRIMARY = {
    "mcq": "acc",
    "summarize": "rougeL",
    "qa": "f1",
    "perplexity": "bits_per_byte",
    "lm_eval": "score",
}


def task_primary_metric(spec: Any) -> str:
    """The primary metric's name without building the task (for errors recorded before it exists)."""
    if spec.kind == "math":
        latex = spec.answer_format == "latex" or (spec.answer_format is None and spec.dataset == "math500")
        return "exact_match" if latex else "exact_match_strict"
    return _PRIMARY[spec.kind]
