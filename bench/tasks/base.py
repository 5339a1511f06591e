"""The task protocol: a task turns dataset records into requests and scores the responses.

One module per task kind; the runner only sees this protocol.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bench.backends.base import Backend
from bench.metrics.metric import Metric, primary_of


@dataclass(frozen=True)
class Item:
    id: str
    index: int  # position in the evaluated split (stable across runs of the same suite)
    record: dict[str, Any]


class Task(Protocol):
    name: str
    kind: str
    dataset: str
    metrics: tuple[Metric, ...]  # what the runs rows report, each with its direction and aggregation

    @property
    def primary_metric(self) -> str:
        """The primary metric's name (`PrimaryFromMetrics` derives it from `metrics`)."""
        ...

    def items(self) -> list[Item]:
        """The items to evaluate, in order, after the limit and few-shot exclusions."""
        ...

    def evaluate(self, backend: Backend, items: Sequence[Item]) -> list[dict[str, Any]]:
        """One sample row (task columns only) per item, in order; a failed item has `error` set."""
        ...


class PrimaryFromMetrics:
    """`primary_metric` derived from the task's `metrics` list, the one way bench's tasks name it."""

    metrics: tuple[Metric, ...]

    @property
    def primary_metric(self) -> str:
        return primary_of(self.metrics).name


def prompt_hash(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()[:16]
