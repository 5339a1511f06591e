"""Extractive question answering (squad, drop): a short answer from the passage, scored by
SQuAD's exact match and token F1 against every reference answer."""

from __future__ import annotations

import ast
from typing import Any

from bench.metrics import kinds
from bench.specs.tasks import QASpec
from bench.tasks.generative import GenerativeTask, custom_records


def _answers(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return [value]
        value = parsed
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


class QATask(GenerativeTask[QASpec]):
    kind = "qa"
    metrics = kinds.QA
    default_max_tokens = 32
    default_stop = ("\n",)

    def _records(self) -> list[dict[str, Any]]:
        from bench import data

        rows = data.load_dataset(self.spec.dataset, self.spec.split)
        if not isinstance(self.spec.dataset, str):
            rows = custom_records(self.spec, rows, input_key="question", target_key="answers")
        return [
            {**r, "answers": _answers(r["answers"]), "context": str(r.get("context") or "")} for r in rows
        ]

    def question(self, r: dict[str, Any]) -> str:
        ctx = f"Background: {r['context']}\n\n" if r["context"] else ""
        return f"{ctx}Question: {r['question']}\nAnswer:"

    def answer_text(self, r: dict[str, Any]) -> str:
        return r["answers"][0]

    def instruction(self, r: dict[str, Any]) -> str:
        ctx = f"Passage: {r['context']}\n\n" if r["context"] else ""
        return f"Answer the question with a short span from the passage, nothing else.\n\n{ctx}Question: {r['question']}"

    def score(self, r: dict[str, Any], text: str) -> tuple[str | None, str, dict[str, float]]:
        from bench.metrics.qa import score_qa

        pred = text.strip().split("\n")[0].strip()
        s = score_qa(pred, r["answers"])
        return pred, " | ".join(r["answers"]), {"exact_match": s["exact_match"], "f1": s["f1"]}
