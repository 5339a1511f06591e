"""A task kind added from outside bench, in one file: does the model's answer equal the item's target?

Items come from a dataset with `text` and `target` fields. It registers itself when imported; nothing
under bench/ names it. Its metrics are declared once, as `Metric` objects: a primary mean, a
lower-is-better mean and a lower-is-better ratio of sums (character error rate over the corpus). Used by tests/unit/test_plugins.py, the way the README's "Extending bench" says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from bench.backends.base import Backend, GenerateRequest
from bench.metrics import Metric, Ratio
from bench.registry import TaskPlugin, register_task
from bench.specs import DatasetTaskSpec
from bench.tasks.base import Item, PrimaryFromMetrics, prompt_hash


class LastWordSpec(DatasetTaskSpec):
    """What a suite may say for this kind (its `tasks:` entry)."""

    kind: Literal["lastword"]
    ignore_case: bool = Field(default=False, description="compare answers case-insensitively")


METRICS: tuple[Metric, ...] = (
    Metric("exact", primary=True, description="the answer equals the target"),
    Metric("length_gap", higher_is_better=False, description="|answer length - target length|"),
    Metric(
        "char_error_rate",
        higher_is_better=False,
        corpus=Ratio("wrong_chars", "target_chars"),
        description="characters wrong or missing over target characters, summed over items",
    ),
)


class LastWordTask(PrimaryFromMetrics):  # primary_metric: the metric flagged primary
    kind = "lastword"
    metrics = METRICS

    def __init__(self, spec: LastWordSpec, *, limit: int | None, num_fewshot: int, seed: int) -> None:
        self.spec = spec
        self.name = spec.name
        self.dataset = spec.stored_dataset()
        self.limit = limit

    def items(self) -> list[Item]:
        from bench import data

        rows = data.load_dataset(self.spec.dataset, self.spec.split)
        items = [Item(id=str(r["id"]), index=i, record=r) for i, r in enumerate(rows)]
        return items[: self.limit] if self.limit else items

    def evaluate(self, backend: Backend, items: Sequence[Item]) -> list[dict[str, Any]]:
        reqs = [GenerateRequest(it.id, str(it.record["text"]), max_tokens=4) for it in items]
        rows = []
        for it, req, resp in zip(items, reqs, backend.generate(reqs), strict=True):
            row: dict[str, Any] = {
                "item_id": it.id,
                "item_index": it.index,
                "method": "generate",
                "prompt": req.prompt,
                "prompt_hash": prompt_hash(req.prompt),
                "input_tokens": resp.input_tokens,
                "output_tokens": resp.output_tokens,
                "latency_s": resp.latency_s,
                "raw_output": resp.text,
            }
            if resp.error:
                rows.append({**row, "error": resp.error})
                continue
            got, want = resp.text.strip(), str(it.record["target"])
            ok = got.lower() == want.lower() if self.spec.ignore_case else got == want
            a, b = (got.lower(), want.lower()) if self.spec.ignore_case else (got, want)
            wrong = sum(x != y for x, y in zip(a, b, strict=False)) + abs(len(a) - len(b))
            rows.append(
                {
                    **row,
                    "prediction": got,
                    "reference": want,
                    "score": float(ok),
                    "correct": ok,
                    "scores": {
                        "exact": float(ok),
                        "length_gap": float(abs(len(got) - len(want))),
                        "wrong_chars": float(wrong),
                        "target_chars": float(len(want)),
                    },
                }
            )
        return rows


register_task(TaskPlugin(name="lastword", spec=LastWordSpec, factory=LastWordTask, metrics=METRICS))
