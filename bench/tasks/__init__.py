"""Task kinds, created through one registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.registry import Registry
from bench.tasks.base import Item, Task

__all__ = ["TASKS", "Item", "Task", "create_task"]

TaskFactory = Callable[..., Task]
TASKS: Registry[TaskFactory] = Registry("task kind")


@TASKS.register("mcq")
def _mcq(spec: Any, **eff: Any) -> Task:
    from bench.tasks.mcq import MultipleChoice

    return MultipleChoice(spec, limit=eff["limit"], num_fewshot=eff["num_fewshot"], seed=eff["seed"])


def create_task(spec: Any, eff: dict[str, Any]) -> Task:
    return TASKS.get(spec.kind)(spec, **eff)
