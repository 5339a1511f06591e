"""Perplexity of a text corpus: how much quantization or distillation costs a model.

Each distinct text is scored whole (rolling windows, as lm-eval's loglikelihood_rolling). The
corpus figures divide sums, as lm-eval aggregates them: bits per byte = -sum(log p) / sum(bytes)
/ ln 2, byte and word perplexity = exp(-sum(log p) / sum(bytes or words)). Lower is better. The
metrics (bench.metrics.kinds.PERPLEXITY) are `Ratio`s of the stored per-item `nll`, `bytes` and
`words`: each item's figure and the corpus figure are the same function (bench.metrics.text).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from bench.backends.base import Backend, RollingRequest
from bench.errors import DataError
from bench.metrics import kinds
from bench.metrics.metric import Ratio
from bench.specs.base import dataset_label
from bench.specs.tasks import PerplexitySpec
from bench.tasks.base import Item, PrimaryFromMetrics, prompt_hash

TEXT_FIELDS = {"summarization": "document", "qa": "context", "math": "question", "mcq": "query"}


class PerplexityTask(PrimaryFromMetrics):
    kind = "perplexity"
    metrics = kinds.PERPLEXITY

    def __init__(
        self, spec: PerplexitySpec, *, limit: int | None, num_fewshot: int, seed: int, batch_size: int = 8
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.dataset = dataset_label(spec.dataset)
        self.limit = limit
        self._items: list[Item] | None = None

    def _field(self) -> str:
        if self.spec.text_field:
            return str(self.spec.text_field)
        if isinstance(self.spec.dataset, str):
            from bench.catalog import DATASETS

            return TEXT_FIELDS[DATASETS[self.spec.dataset].kind]
        return "text"

    def items(self) -> list[Item]:
        if self._items is not None:
            return self._items
        from bench import data

        key = self._field()
        seen: set[str] = set()
        items = []
        for i, r in enumerate(data.load_dataset(self.spec.dataset, self.spec.split)):
            text = r.get(key)
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{self.dataset}: record {i} (id {r.get('id')}): no text in field {key!r}")
            if self.spec.max_chars:
                text = text[: self.spec.max_chars]
            digest = hashlib.sha256(text.encode()).hexdigest()[:16]
            if digest in seen:  # squad has many questions per passage: each text once
                continue
            seen.add(digest)
            items.append(Item(id=str(r.get("id", digest)), index=i, record={"text": text}))
        if not items:
            raise DataError(f"{self.dataset}: the split has no records")
        self._items = items[: self.limit] if self.limit else items
        return self._items

    def evaluate(self, backend: Backend, items: Sequence[Item]) -> list[dict[str, Any]]:
        reqs = [RollingRequest(it.id, it.record["text"]) for it in items]
        rows = []
        for it, resp in zip(items, backend.loglikelihood_rolling(reqs), strict=True):
            text = it.record["text"]
            row: dict[str, Any] = {
                "item_id": it.id,
                "item_index": it.index,
                "method": "loglikelihood_rolling",
                "prompt": text,
                "prompt_hash": prompt_hash(text),
                "input_tokens": resp.tokens,
                "output_tokens": 0,
                "tokens_evaluated": resp.tokens_evaluated,
                "latency_s": resp.latency_s,
            }
            if resp.error:
                rows.append({**row, "error": resp.error})
                continue
            parts = {  # what the corpus figures sum (texts are never empty: items() refuses them)
                "nll": -resp.loglik,
                "bytes": float(len(text.encode("utf-8"))),
                "words": float(len(text.split())),
            }
            figures = {m.name: _item(m.corpus, parts) for m in self.metrics}
            rows.append(
                {
                    **row,
                    "score": figures[self.primary_metric],
                    "scores": {**figures, **parts, "tokens": float(resp.tokens)},
                }
            )
        return rows


def _item(corpus: object, parts: dict[str, float]) -> float:
    assert isinstance(corpus, Ratio), corpus  # every perplexity metric is a ratio of sums
    return corpus.item(parts[corpus.num], parts[corpus.den])
