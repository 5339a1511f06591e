"""Task kinds: each registered here once (spec, runtime class, metrics, usable dataset kinds).

The runtime classes are imported inside their factories: engines and datasets load only when a task
runs, and importing the registry (bench.config does) stays fast. A task kind outside bench registers
itself the same way from its own module (see bench.registry).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.metrics import kinds
from bench.metrics.metric import Metric
from bench.registry import TASKS, TaskPlugin, register_task
from bench.specs.tasks import LmEvalSpec, MathSpec, MCQSpec, PerplexitySpec, QASpec, SummarizeSpec
from bench.tasks.base import Item, Task

if TYPE_CHECKING:
    from bench.specs.base import TaskSpecBase

__all__ = ["TASKS", "Item", "Task", "create_task", "task_dataset", "task_primary", "task_primary_metric"]


def _mcq(spec: MCQSpec, *, limit: int | None, num_fewshot: int, seed: int) -> Task:
    from bench.tasks.mcq import MultipleChoice

    return MultipleChoice(spec, limit=limit, num_fewshot=num_fewshot, seed=seed)


def _math(spec: MathSpec, *, limit: int | None, num_fewshot: int, seed: int) -> Task:
    from bench.tasks.math import MathTask

    return MathTask(spec, limit=limit, num_fewshot=num_fewshot, seed=seed)


def _summarize(spec: SummarizeSpec, *, limit: int | None, num_fewshot: int, seed: int) -> Task:
    from bench.tasks.summarize import SummarizeTask

    return SummarizeTask(spec, limit=limit, num_fewshot=num_fewshot, seed=seed)


def _qa(spec: QASpec, *, limit: int | None, num_fewshot: int, seed: int) -> Task:
    from bench.tasks.qa import QATask

    return QATask(spec, limit=limit, num_fewshot=num_fewshot, seed=seed)


def _perplexity(spec: PerplexitySpec, *, limit: int | None, num_fewshot: int, seed: int) -> Task:
    from bench.tasks.perplexity import PerplexityTask

    return PerplexityTask(spec, limit=limit, num_fewshot=num_fewshot, seed=seed)


def _lm_eval(spec: LmEvalSpec, *, limit: int | None, num_fewshot: int, seed: int) -> Task:
    from bench.tasks.lm_eval_task import LmEvalTask

    return LmEvalTask(spec, limit=limit, num_fewshot=num_fewshot, seed=seed)


def _math_metrics(spec: MathSpec) -> tuple[Metric, ...]:
    return kinds.math_metrics(spec.effective_answer_format())


register_task(
    TaskPlugin(name="mcq", spec=MCQSpec, factory=_mcq, metrics=kinds.MCQ, dataset_kinds=frozenset({"mcq"}))
)
register_task(
    TaskPlugin(
        name="math", spec=MathSpec, factory=_math, metrics=_math_metrics, dataset_kinds=frozenset({"math"})
    )
)
register_task(
    TaskPlugin(
        name="summarize",
        spec=SummarizeSpec,
        factory=_summarize,
        metrics=kinds.SUMMARIZE,
        dataset_kinds=frozenset({"summarization"}),
    )
)
register_task(
    TaskPlugin(name="qa", spec=QASpec, factory=_qa, metrics=kinds.QA, dataset_kinds=frozenset({"qa"}))
)
register_task(
    TaskPlugin(
        name="perplexity",
        spec=PerplexitySpec,
        factory=_perplexity,
        metrics=kinds.PERPLEXITY,
        dataset_kinds=frozenset({"summarization", "qa", "math", "mcq"}),
    )
)
register_task(TaskPlugin(name="lm_eval", spec=LmEvalSpec, factory=_lm_eval, metrics=kinds.LM_EVAL))


def create_task(spec: TaskSpecBase, eff: dict[str, Any]) -> Task:
    """The runtime task of a spec, with the suite's effective settings (`Suite.effective_task`)."""
    return TASKS.get(spec.kind).factory(
        spec, limit=eff["limit"], num_fewshot=eff["num_fewshot"], seed=eff["seed"]
    )


def task_dataset(spec: TaskSpecBase) -> str:
    """A task's dataset as stored in results: a catalog name, a path, a hub id or the lm-eval task."""
    return spec.stored_dataset()


def task_primary_metric(spec: TaskSpecBase) -> str:
    """The primary metric's name without building the task (for errors recorded before it exists)."""
    return TASKS.get(spec.kind).primary(spec)


def task_primary(spec: TaskSpecBase) -> Metric:
    """The primary Metric itself (name and direction), without building the task."""
    from bench.metrics.metric import primary_of

    return primary_of(TASKS.get(spec.kind).metrics_for(spec))
