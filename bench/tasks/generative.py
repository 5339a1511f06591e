"""Shared machinery of the tasks where the model writes: prompts (zero/k-shot, optional chain of
thought), the model's chat template when it has one and plain completion when it does not, stop
sequences, and one sample row per item with the raw output and the extracted answer.

A kind supplies its records, its prompt parts and its scorer; everything else lives here.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import jinja2

from bench.backends.base import Backend, GenerateRequest, GenerateResponse
from bench.errors import ConfigError, DataError
from bench.metrics.metric import Metric
from bench.specs.base import GenFieldMap, dataset_label
from bench.specs.tasks import MathSpec, MCQSpec, QASpec, SummarizeSpec
from bench.tasks.base import Item, PrimaryFromMetrics, prompt_hash
from bench.templates import compile_prompt, render

COT_COMPLETION = "Let's think step by step."


def compile_template(text: str | None, task: str) -> jinja2.Template | None:
    return compile_prompt(text, f"task {task!r}: prompt") if text is not None else None


def messages_text(messages: Sequence[tuple[str, str]]) -> str:
    """A plain rendering of chat messages for the stored `prompt` column."""
    return "\n\n".join(f"<{role}>\n{content}" for role, content in messages)


def tpot(resp: GenerateResponse) -> float | None:
    """Time per output token after the first: (latency - TTFT) / (output tokens - 1)."""
    if resp.ttft_s is None or resp.output_tokens < 2:
        return None
    return (resp.latency_s - resp.ttft_s) / (resp.output_tokens - 1)


S = TypeVar("S", MathSpec, SummarizeSpec, QASpec, MCQSpec)


class GenerativeTask(PrimaryFromMetrics, Generic[S]):
    """Base of math, summarize, qa (and mcq asked generatively), generic in its spec class. Subclasses
    set the class attributes (`metrics` from bench.metrics.kinds) and implement `_records`, `question`,
    `answer_text`, `instruction`, `score`."""

    kind = "generate"
    metrics: tuple[Metric, ...]
    default_max_tokens = 256
    default_stop: tuple[str, ...] = ("\n\n",)
    fewshot_delimiter = "\n\n"

    def __init__(
        self, spec: S, *, limit: int | None, num_fewshot: int, seed: int, batch_size: int = 8
    ) -> None:
        self.spec: S = spec
        self.name = spec.name
        self.dataset = dataset_label(spec.dataset)
        self.limit = limit
        self.num_fewshot = num_fewshot
        self.seed = seed
        self.template = compile_template(spec.prompt, spec.name)
        self._items: list[Item] | None = None
        self.shots: list[dict[str, Any]] = []
        self._use_chat: bool | None = None

    # -------------------------------------------------------------- what a kind provides

    def _records(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def question(self, r: dict[str, Any]) -> str:
        """The item as the model sees it in completion mode, ending where its answer starts."""
        raise NotImplementedError

    def answer_text(self, r: dict[str, Any]) -> str:
        """A worked answer, for few-shot examples."""
        raise NotImplementedError

    def instruction(self, r: dict[str, Any]) -> str:
        """The user message in chat mode."""
        raise NotImplementedError

    def score(self, r: dict[str, Any], text: str) -> tuple[str | None, str, dict[str, float]]:
        """(extracted answer, reference, metric values) of one output."""
        raise NotImplementedError

    def fixed_shots(self) -> list[dict[str, Any]] | None:
        """Curated few-shot examples (e.g. gsm8k's chain-of-thought exemplars), or None to draw from data."""
        return None

    # -------------------------------------------------------------- items and prompts

    def items(self) -> list[Item]:
        if self._items is not None:
            return self._items
        records = self._records()
        if not records:
            raise DataError(f"{self.dataset}: the split has no records")
        excluded: set[str] = set()
        if self.num_fewshot:
            fixed = self.fixed_shots()
            if fixed is not None:
                if len(fixed) < self.num_fewshot:
                    raise DataError(
                        f"{self.dataset}: only {len(fixed)} curated shots for num_fewshot={self.num_fewshot}"
                    )
                self.shots = fixed[: self.num_fewshot]
            else:
                if len(records) <= self.num_fewshot:
                    raise DataError(
                        f"{self.dataset}: {len(records)} records cannot give {self.num_fewshot} shots"
                    )
                self.shots = random.Random(self.seed).sample(records, self.num_fewshot)
                excluded = {str(s["id"]) for s in self.shots}
        items = [
            Item(id=str(r["id"]), index=i, record=r)
            for i, r in enumerate(records)
            if str(r["id"]) not in excluded
        ]
        if len({it.id for it in items}) != len(items):
            raise DataError(f"{self.dataset}: item ids are not unique")
        self._items = items[: self.limit] if self.limit else items
        return self._items

    def _question(self, r: dict[str, Any]) -> str:
        if self.template is not None:
            return render(self.template, r, f"{self.dataset}: record {r.get('id')}: prompt")
        return self.question(r)

    def completion_prefix(self, r: dict[str, Any]) -> str:
        """The item-independent start of the completion prompt: the few-shot examples."""
        return "".join(
            self._question(s) + " " + self.answer_text(s) + self.fewshot_delimiter for s in self.shots
        )

    def completion_prompt(self, r: dict[str, Any]) -> str:
        q = self._question(r)
        return self.completion_prefix(r) + q + (" " + COT_COMPLETION if self.spec.cot else "")

    def chat_messages(self, r: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        msgs: list[tuple[str, str]] = []
        if self.spec.system:
            msgs.append(("system", self.spec.system))
        for s in self.shots:
            msgs += [("user", self._instruction(s)), ("assistant", self.answer_text(s))]
        msgs.append(("user", self._instruction(r)))
        return tuple(msgs)

    def _instruction(self, r: dict[str, Any]) -> str:
        if self.template is not None:
            return render(self.template, r, f"{self.dataset}: record {r.get('id')}: prompt")
        return self.instruction(r)

    def use_chat(self, backend: Backend) -> bool:
        if self._use_chat is None:
            mode = self.spec.chat
            has = backend.info().chat_template
            if mode == "always" and not has:
                raise ConfigError(
                    f"task {self.name!r}: chat: always, but {backend.info().name} has no chat template"
                )
            self._use_chat = mode == "always" or (mode == "auto" and has)
        return self._use_chat

    def request(self, backend: Backend, it: Item) -> GenerateRequest:
        max_tokens = self.spec.max_tokens or self.default_max_tokens
        if self.use_chat(backend):
            msgs = self.chat_messages(it.record)
            stop = tuple(self.spec.stop) if self.spec.stop is not None else ()
            return GenerateRequest(
                it.id, messages_text(msgs), max_tokens=max_tokens, stop=stop, messages=msgs
            )
        stop = tuple(self.spec.stop) if self.spec.stop is not None else self.default_stop
        return GenerateRequest(
            it.id,
            self.completion_prompt(it.record),
            max_tokens=max_tokens,
            stop=stop,
            prefix=self.completion_prefix(it.record),
        )

    # -------------------------------------------------------------- evaluation

    def evaluate(self, backend: Backend, items: Sequence[Item]) -> list[dict[str, Any]]:
        reqs = [self.request(backend, it) for it in items]
        rows = []
        for it, req, resp in zip(items, reqs, backend.generate(reqs), strict=True):
            row: dict[str, Any] = {
                "item_id": it.id,
                "item_index": it.index,
                "method": "chat" if req.messages else "generate",
                "prompt": req.prompt,
                "prompt_hash": prompt_hash(req.prompt),
                "input_tokens": resp.input_tokens,
                "output_tokens": resp.output_tokens,
                "tokens_evaluated": None,
                "ttft_s": resp.ttft_s,
                "latency_s": resp.latency_s,
                "tpot_s": tpot(resp),
                "raw_output": resp.text,
                "finish_reason": resp.finish_reason,  # "length": cut at max_tokens, not finished
                "max_tokens": req.max_tokens,
            }
            if resp.error:
                rows.append({**row, "error": resp.error})
                continue
            extracted, reference, scores = self.score(it.record, resp.text)
            primary = scores.get(self.primary_metric)
            rows.append(
                {
                    **row,
                    "extracted": extracted,
                    "prediction": extracted if extracted is not None else resp.text.strip(),
                    "reference": reference,
                    "score": primary,
                    "correct": None if primary is None or primary not in (0.0, 1.0) else bool(primary),
                    "scores": {k: float(v) for k, v in scores.items() if v is not None},
                }
            )
        return rows


def custom_records(
    spec: MathSpec | SummarizeSpec | QASpec, rows: list[dict[str, Any]], *, input_key: str, target_key: str
) -> list[dict[str, Any]]:
    """Map a custom dataset's fields (spec.fields) onto a kind's canonical keys."""
    f = spec.fields or GenFieldMap()
    name = dataset_label(spec.dataset)
    from bench.data.custom import record_ids, require_fields

    require_fields(rows, [f.input, f.target] + [k for k in (f.context, f.id) if k], name)
    out = []
    for r, rid in zip(rows, record_ids(rows, f.id, name), strict=True):
        rec = {
            **r,
            "id": rid,
            input_key: r[f.input],
            target_key: r[f.target],
        }
        if f.context:
            rec["context"] = r[f.context]
        out.append(rec)
    return out
