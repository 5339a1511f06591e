"""Math word problems. gsm8k: numeric answers, lm-eval's strict ("The answer is N" / "#### N") and
flexible (last number) matches reported separately. math500: LaTeX final answers compared by
mathematical equivalence (math-verify), not by string."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import yaml

from bench.metrics.kinds import math_metrics
from bench.specs.tasks import MathSpec
from bench.tasks.generative import GenerativeTask, custom_records

NUMBER_STOP = ("Q:", "Question:", "</s>", "<|im_end|>", "\n\n\n")
LATEX_STOP = ("Problem:", "</s>", "<|im_end|>", "\n\n\n")


@functools.cache
def gsm8k_exemplars() -> list[dict[str, Any]]:
    text = resources.files("bench.tasks").joinpath("fewshot/gsm8k_cot.yaml").read_text(encoding="utf-8")
    return [
        {"id": f"gsm8k-cot-{i}", "question": s["question"], "solution": s["target"], "answer": None}
        for i, s in enumerate(yaml.safe_load(text)["samples"])
    ]


class MathTask(GenerativeTask[MathSpec]):
    kind = "math"
    default_max_tokens = 256

    def __init__(self, spec: MathSpec, *, limit: int | None, num_fewshot: int, seed: int) -> None:
        super().__init__(spec, limit=limit, num_fewshot=num_fewshot, seed=seed)
        fmt = spec.effective_answer_format()
        self.answer_format = fmt
        self.metrics = math_metrics(fmt)
        if fmt == "number":
            self.default_stop = NUMBER_STOP
        else:
            self.default_stop = LATEX_STOP
            self.default_max_tokens = 512

    def _records(self) -> list[dict[str, Any]]:
        from bench import data

        rows = data.load_dataset(self.spec.dataset, self.spec.split)
        if isinstance(self.spec.dataset, str):
            return rows
        return custom_records(self.spec, rows, input_key="question", target_key="answer")

    def fixed_shots(self) -> list[dict[str, Any]] | None:
        return gsm8k_exemplars() if self.answer_format == "number" else None

    def question(self, r: dict[str, Any]) -> str:
        if self.answer_format == "number":
            return f"Q: {r['question']}\nA:"
        return f"Problem:\n{r['question']}\n\nSolution:"

    def answer_text(self, r: dict[str, Any]) -> str:
        sol = str(r.get("solution") or r["answer"])
        if self.answer_format == "number" and "The answer is" not in sol:
            body = sol.split("####")[0].strip()
            sol = f"{body} The answer is {r['answer']}."
        if self.answer_format == "latex" and "\\boxed" not in sol:
            sol = f"{sol}\nThe final answer is $\\boxed{{{r['answer']}}}$."
        return sol

    def instruction(self, r: dict[str, Any]) -> str:
        if self.answer_format == "number":
            how = "Think step by step, then finish" if self.spec.cot else "Finish"
            return f"Solve this math problem. {how} with 'The answer is N.'\n\n{r['question']}"
        how = "Think step by step and put" if self.spec.cot else "Put"
        return f"Solve this math problem. {how} the final answer in \\boxed{{}}.\n\n{r['question']}"

    def score(self, r: dict[str, Any], text: str) -> tuple[str | None, str, dict[str, float]]:
        reference = str(r["answer"])
        if self.answer_format == "number":
            from bench.metrics.math import normalize_number, score_gsm8k

            s = score_gsm8k(text, reference)
            raw = s["extracted_strict"] if s["extracted_strict"] is not None else s["extracted_flexible"]
            extracted = (normalize_number(raw) or raw) if raw is not None else None
            return (
                extracted,
                reference,
                {
                    "exact_match_strict": s["exact_match_strict"],
                    "exact_match_flexible": s["exact_match_flexible"],
                },
            )
        from bench.metrics.math import score_math

        m = score_math(text, reference)
        return m["extracted"], reference, {"exact_match": m["exact_match"]}
