"""Summarization: documents in, summaries out, ROUGE-1/2/L (rouge-score), output length and
compression ratio. Long documents are cut to `max_input_chars` so the prompt fits small contexts."""

from __future__ import annotations

from typing import Any

from bench.metrics import kinds
from bench.specs.tasks import SummarizeSpec
from bench.tasks.generative import GenerativeTask, custom_records

MAX_INPUT_CHARS = 3000


class SummarizeTask(GenerativeTask[SummarizeSpec]):
    kind = "summarize"
    metrics = kinds.SUMMARIZE
    default_max_tokens = 96
    default_stop = ("\n\n", "Article:")

    def _records(self) -> list[dict[str, Any]]:
        from bench import data

        rows = data.load_dataset(self.spec.dataset, self.spec.split)
        if not isinstance(self.spec.dataset, str):
            rows = custom_records(self.spec, rows, input_key="document", target_key="summary")
        return [{**r, "document": _cut(str(r["document"]))} for r in rows]

    @property
    def _length(self) -> str:
        return "in a few sentences" if "cnn" in self.dataset else "in one sentence"

    def question(self, r: dict[str, Any]) -> str:
        return f"Article: {r['document']}\n\nSummarize the article above {self._length}.\nSummary:"

    def answer_text(self, r: dict[str, Any]) -> str:
        return str(r["summary"])

    def instruction(self, r: dict[str, Any]) -> str:
        return f"Summarize the following article {self._length}.\n\n{r['document']}"

    def score(self, r: dict[str, Any], text: str) -> tuple[str | None, str, dict[str, float]]:
        from bench.metrics.text import score_summary

        summary = text.strip()
        s = score_summary(summary, str(r["summary"]), str(r["document"]))
        scores = {k: s[k] for k in ("rouge1", "rouge2", "rougeL", "output_words", "compression_ratio")}
        return summary, str(r["summary"]), {k: float(v) for k, v in scores.items() if v is not None}


def _cut(text: str) -> str:
    if len(text) <= MAX_INPUT_CHARS:
        return text
    cut = text[:MAX_INPUT_CHARS]
    return cut[: cut.rfind(" ")] if " " in cut else cut
