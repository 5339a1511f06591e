"""The built-in task kinds' spec classes: what a suite's `tasks:` entry may say for each kind.

Registered with their runtime classes in bench/tasks/__init__.py; bench.config builds the union from the
registry. A spec says what to run; the runtime task (bench.tasks.<kind>) runs it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bench.specs.base import DatasetTaskSpec, FieldMap, GenerativeOptions, GenFieldMap, TaskSpecBase


class MCQSpec(DatasetTaskSpec, GenerativeOptions):
    """Multiple choice: by log-likelihood of each choice (lm-eval's acc / acc_norm), or asked
    generatively ("answer with the letter") for backends that give no log-likelihoods."""

    kind: Literal["mcq"]
    method: Literal["loglikelihood", "generate", "auto"] = Field(
        default="auto", description="auto: log-likelihoods where the backend gives them, else generate"
    )
    fields: FieldMap | None = Field(default=None, description="for custom datasets: where the parts are")
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    sample: int | None = Field(
        default=None,
        ge=1,
        description="evaluate a uniform random subset of this many items (without replacement, "
        "seeded by the task's seed, kept in split order); `limit` then takes the first of these",
    )
    fewshot_sampler: Literal["random", "first_n"] | None = Field(
        default=None,
        description="how shots are drawn: seeded random, or the first n (lm-eval's MMLU); "
        "default: first_n from a dedicated few-shot split, else random",
    )


class MathSpec(DatasetTaskSpec, GenerativeOptions):
    """Math word problems: gsm8k (numbers; strict and flexible match) or math500 (LaTeX, equivalence)."""

    kind: Literal["math"]
    answer_format: Literal["number", "latex"] | None = Field(
        default=None, description="how answers compare; default: number for gsm8k, latex for math500"
    )
    fields: GenFieldMap | None = None

    def effective_answer_format(self) -> Literal["number", "latex"]:
        """As set; by default latex for math500 and number for everything else (gsm8k)."""
        if self.answer_format is not None:
            return self.answer_format
        return "latex" if self.stored_dataset() == "math500" else "number"


class SummarizeSpec(DatasetTaskSpec, GenerativeOptions):
    """Documents in, summaries out, scored with ROUGE-1/2/L, output length and compression ratio."""

    kind: Literal["summarize"]
    fields: GenFieldMap | None = None


class QASpec(DatasetTaskSpec, GenerativeOptions):
    """Extractive question answering (squad, drop) scored by exact match and token F1."""

    kind: Literal["qa"]
    fields: GenFieldMap | None = None


class PerplexitySpec(DatasetTaskSpec):
    """Log-likelihood of whole texts: bits per byte, byte and word perplexity."""

    kind: Literal["perplexity"]
    text_field: str | None = Field(
        default=None, description="the field with the text; default: the dataset's"
    )
    max_chars: int | None = Field(
        default=None, ge=1, description="truncate each text to this many characters"
    )


class LmEvalSpec(TaskSpecBase):
    """An lm-eval-harness task (its prompts, filters and metrics) run through bench's backends."""

    kind: Literal["lm_eval"]
    task: str = Field(min_length=1, description="the lm-eval task name")
    include_path: str | None = Field(default=None, description="a folder of extra lm-eval task YAMLs")
    include_defaults: bool = Field(
        default=False, description="also index lm-eval's 14k built-in tasks (slow)"
    )

    def stored_dataset(self) -> str:
        return f"lm_eval:{self.task}"
