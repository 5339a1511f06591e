"""Perplexity of a text corpus: how much quantization or distillation costs a model.

Each distinct text is scored whole (rolling windows, as lm-eval's loglikelihood_rolling). The
corpus figures divide sums, as lm-eval aggregates them: bits per byte = -sum(log p) / (sum(bytes)
* ln 2), byte and word perplexity = exp(-sum(log p) / sum(bytes or words)). Lower is better.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any, ClassVar

from bench.backends.base import Backend, RollingRequest
from bench.errors import DataError
from bench.tasks.base import Item, prompt_hash
from bench.tasks.mcq import dataset_label

TEXT_FIELDS = {"summarization": "document", "qa": "context", "math": "question", "mcq": "query"}


class PerplexityTask:
    kind = "perplexity"
    primary_metric = "bits_per_byte"
    metrics: tuple[str, ...] = ("bits_per_byte", "byte_perplexity", "word_perplexity")
    lower_is_better = frozenset(metrics)
    # metric -> (numerator, denominator, transform of the ratio): corpus-level, not a mean of items
    ratio_metrics: ClassVar[dict[str, tuple[str, str, str]]] = {
        "bits_per_byte": ("nll", "bytes", "bits"),
        "byte_perplexity": ("nll", "bytes", "exp"),
        "word_perplexity": ("nll", "words", "exp"),
    }

    def __init__(
        self, spec: Any, *, limit: int | None, num_fewshot: int, seed: int, batch_size: int = 8
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
            n_bytes = len(text.encode("utf-8"))
            n_words = len(text.split())
            nll = -resp.loglik
            bpb = nll / (n_bytes * math.log(2))
            rows.append(
                {
                    **row,
                    "score": bpb,
                    "scores": {
                        "bits_per_byte": bpb,
                        "byte_perplexity": math.exp(nll / n_bytes),
                        "word_perplexity": math.exp(min(nll / max(n_words, 1), 700.0)),
                        "nll": nll,
                        "bytes": float(n_bytes),
                        "words": float(n_words),
                        "tokens": float(resp.tokens),
                    },
                }
            )
        return rows
