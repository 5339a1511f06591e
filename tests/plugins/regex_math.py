"""A test-only math task kind whose strict answer extraction is a suite setting: gsm8k exactly as
bench's `math` kind asks and scores it, except that `answer_regex` (its first group is the answer)
replaces the strict "The answer is N" / "#### N" rule. Registered when imported ($BENCH_PLUGINS), so
the same rule reaches a run's worker process and `bench rescore --set tasks.NAME.answer_regex=...`.
Used by tests/integration/test_rescore.py to change an extraction rule between a run and its rescore.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from bench.metrics import kinds
from bench.metrics.gsm8k import normalize_number, score_gsm8k
from bench.registry import TaskPlugin, register_task
from bench.specs.tasks import MathSpec
from bench.tasks.math import MathTask

BENCH_STRICT = r"(?:#### ?|[Tt]he answer is:? ?)\$?(-?[.,]*[0-9][0-9.,]*)"


class RegexMathSpec(MathSpec):
    kind: Literal["regex_math"]  # type: ignore[assignment]
    answer_regex: str = Field(
        default=BENCH_STRICT, description="strict answer: the first group of the first match"
    )


class RegexMathTask(MathTask):
    kind = "regex_math"

    def score(self, r: dict[str, Any], text: str) -> tuple[str | None, str, dict[str, float]]:
        reference = str(r["answer"])
        assert isinstance(self.spec, RegexMathSpec)
        m = re.search(self.spec.answer_regex, text, flags=re.DOTALL)
        strict = m.group(1).strip() if m else None
        s = score_gsm8k(text, reference)
        ok = (
            strict is not None
            and normalize_number(strict) not in (None, "")
            and normalize_number(strict) == normalize_number(reference)
        )
        extracted = (normalize_number(strict) or strict) if strict is not None else None
        return (
            extracted,
            reference,
            {"exact_match_strict": float(ok), "exact_match_flexible": s["exact_match_flexible"]},
        )


register_task(
    TaskPlugin(
        name="regex_math",
        spec=RegexMathSpec,
        factory=RegexMathTask,  # type: ignore[arg-type]
        metrics=kinds.GSM8K,
        dataset_kinds=frozenset({"math"}),
    )
)
