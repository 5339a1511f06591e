"""Multiple choice by log-likelihood: lm-eval's prompts, acc and acc_norm.

Few-shot examples are drawn once per task (seeded) rather than per item: every item then shares
the same prefix, which the engine's KV cache evaluates once, and the drawn examples are excluded
from evaluation when they come from the evaluated split.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from bench.backends.base import Backend, LoglikelihoodRequest
from bench.data.custom import map_mcq_records
from bench.data.subset import sample_in_order
from bench.errors import ConfigError, DataError
from bench.metrics import kinds
from bench.metrics.choice import score_choices
from bench.specs.base import FieldMap, dataset_label
from bench.specs.tasks import MCQSpec
from bench.tasks.base import Item, PrimaryFromMetrics, prompt_hash
from bench.tasks.generative import GenerativeTask
from bench.templates import compile_prompt, render

DEFAULT_PROMPT = "Question: {{ question }}\nAnswer:"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class MultipleChoice(PrimaryFromMetrics):
    kind = "mcq"
    metrics = kinds.MCQ

    def __init__(self, spec: MCQSpec, *, limit: int | None, num_fewshot: int, seed: int) -> None:
        self.spec = spec
        self.name = spec.name
        self.dataset = dataset_label(spec.dataset)
        self.limit = limit
        self.num_fewshot = num_fewshot
        self.seed = seed
        self._template = compile_prompt(spec.prompt, f"task {spec.name!r}: prompt") if spec.prompt else None
        self._items: list[Item] | None = None
        self.fewshot_ids: list[str] = []
        self.prefixes: dict[str | None, str] = {}
        self.shots: dict[str | None, list[dict[str, Any]]] = {}
        self._letters: LetterChoice | None = None
        if self.spec.fields is not None and isinstance(spec.dataset, str):
            raise ConfigError(f"task {spec.name!r}: fields: only for custom (path/hub) datasets")
        if self.spec.fields is None and not isinstance(spec.dataset, str):
            self.spec = spec.model_copy(update={"fields": spec.fields or _default_fields()})

    # ------------------------------------------------------------------ records

    def _canonical(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if isinstance(self.spec.dataset, str):
            out = records
        else:
            out = map_mcq_records(records, self.spec.fields, self.dataset)
        if self._template is not None or not isinstance(self.spec.dataset, str):
            template = self._template or compile_prompt(DEFAULT_PROMPT, "default prompt")
            for i, r in enumerate(out):
                where = f"{self.dataset}: record {i} (id {r.get('id')}): prompt"
                r["query"] = render(template, r, where, letters=_LETTERS)
                r["contexts"] = None
        return out

    def _load(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        from bench import data

        ref = self.spec.dataset
        records = self._canonical(data.load_dataset(ref, self.spec.split))
        if not records:
            raise DataError(f"{self.dataset}: the split has no records")
        pool = records
        if self.num_fewshot and isinstance(ref, str):
            eval_split = self.spec.split or data.get_entry(ref).split
            if data.fewshot_split(ref, self.spec.split) != eval_split:  # e.g. MMLU's dev split
                pool = self._canonical(data.load_fewshot_pool(ref, self.spec.split))
        return records, pool

    # ------------------------------------------------------------------ items

    def items(self) -> list[Item]:
        if self._items is not None:
            return self._items
        records, pool = self._load()
        shots = self.shots = self._draw_shots(records, pool)
        self.fewshot_ids = sorted({str(s["id"]) for group in shots.values() for s in group})
        excluded = set(self.fewshot_ids) if pool is records else set()
        self.prefixes = {
            subject: "".join(
                _context(s, s["answer"])
                + self.spec.target_delimiter
                + s["choices"][s["answer"]]
                + self.spec.fewshot_delimiter
                for s in group
            )
            for subject, group in shots.items()
        }
        items = []
        for i, r in enumerate(records):
            rid = str(r["id"])
            if rid in excluded:
                continue
            items.append(Item(id=rid, index=i, record=r))
        if len({it.id for it in items}) != len(items):
            raise DataError(f"{self.dataset}: item ids are not unique")
        if self.spec.sample:
            items = sample_in_order(items, self.spec.sample, self.seed)
        self._items = items[: self.limit] if self.limit else items
        return self._items

    def _draw_shots(
        self, records: list[dict[str, Any]], pool: list[dict[str, Any]]
    ) -> dict[str | None, list[dict[str, Any]]]:
        """Few-shot examples per subject (MMLU's shots come from the item's own subject)."""
        if not self.num_fewshot:
            return {}
        sampler = self.spec.fewshot_sampler or ("random" if pool is records else "first_n")
        by_subject: dict[str | None, list[dict[str, Any]]] = {}
        for r in pool:
            by_subject.setdefault(r.get("subject"), []).append(r)
        needed = {r.get("subject") for r in records}
        shots = {}
        for subject in needed:
            group = by_subject.get(subject, [])
            if len(group) < self.num_fewshot + (1 if pool is records else 0):
                where = f" (subject {subject})" if subject else ""
                raise DataError(
                    f"{self.dataset}: {len(group)} records{where} cannot give {self.num_fewshot} shots"
                )
            if sampler == "first_n":
                shots[subject] = group[: self.num_fewshot]
            else:
                shots[subject] = random.Random(self.seed).sample(group, self.num_fewshot)
        return shots

    def head(self, r: dict[str, Any]) -> str:
        """The item-independent start of every context: description and few-shot examples."""
        return (r.get("description") or "") + self.prefixes.get(r.get("subject"), "")

    def contexts(self, item: Item) -> list[str]:
        r = item.record
        head = self.head(r)
        return [head + _context(r, i) for i in range(len(r["choices"]))]

    # ------------------------------------------------------------------ evaluation

    def method(self, backend: Backend) -> str:
        """How this backend answers: log-likelihoods when it can score continuations, else letters."""
        m = self.spec.method
        if m == "auto":
            return "loglikelihood" if backend.info().loglikelihood else "generate"
        if m == "loglikelihood" and not backend.info().loglikelihood:
            raise ConfigError(
                f"task {self.name!r}: method: loglikelihood, but {backend.info().name} gives no log-likelihoods "
                "(use method: generate or auto)"
            )
        return m

    def evaluate(self, backend: Backend, items: Sequence[Item]) -> list[dict[str, Any]]:
        if self.method(backend) == "generate":
            if self._letters is None:
                self._letters = LetterChoice(self)
            return self._letters.evaluate(backend, items)
        reqs = []
        for it in items:
            conts = [self.spec.target_delimiter + c for c in it.record["choices"]]
            reqs.append(
                LoglikelihoodRequest(
                    item_id=it.id,
                    pairs=tuple(zip(self.contexts(it), conts, strict=True)),
                    prefix=self.head(it.record),
                )
            )
        responses = backend.loglikelihood(reqs)
        rows = []
        for it, req, resp in zip(items, reqs, responses, strict=True):
            r = it.record
            gold = int(r["answer"])
            row: dict[str, Any] = {
                "item_id": it.id,
                "item_index": it.index,
                "prompt": req.pairs[0][0],
                "prompt_hash": prompt_hash(*(c + x for c, x in req.pairs)),
                "reference": r["choices"][gold],
                "gold_index": gold,
                "input_tokens": resp.input_tokens,
                "output_tokens": 0,
                "tokens_evaluated": resp.tokens_evaluated,
                "latency_s": resp.latency_s,
                "method": "loglikelihood",
            }
            if resp.error:
                rows.append({**row, "error": resp.error})
                continue
            s = score_choices(resp.logliks, r["choices"], gold)
            rows.append(
                {
                    **row,
                    "prediction": r["choices"][s.pred],
                    "pred_index": s.pred,
                    "score": s.acc,
                    "correct": bool(s.acc),
                    "scores": {"acc": s.acc, "acc_norm": s.acc_norm},
                    "choice_logliks": list(resp.logliks),
                    "confidence": s.confidence,
                    "gold_prob": s.gold_prob,
                }
            )
        return rows


def _context(r: dict[str, Any], i: int) -> str:
    contexts = r.get("contexts")
    return str(contexts[i]) if contexts is not None and len(contexts) else str(r["query"])


def _default_fields() -> FieldMap:
    return FieldMap()


class LetterChoice(GenerativeTask[MCQSpec]):
    """Multiple choice asked generatively ("answer with the letter"), for backends without
    log-likelihoods (chat APIs). Same items and shots as the log-likelihood form; acc only."""

    kind = "mcq"
    metrics = kinds.MCQ_LETTER

    def __init__(self, parent: MultipleChoice) -> None:
        super().__init__(parent.spec, limit=parent.limit, num_fewshot=0, seed=parent.seed)
        self.parent = parent
        self.template = None  # the parent's prompt template shapes the log-likelihood form only
        cot = parent.spec.cot
        self.default_max_tokens = 256 if cot else 12
        self.default_stop = ("\n\n\n", "Question:") if cot else ("\n",)

    def _block(self, r: dict[str, Any]) -> str:
        opts = "\n".join(f"{_LETTERS[i]}. {o}" for i, o in enumerate(r["options"]))
        return f"Question: {r['question'].strip()}\n{opts}"

    def completion_prefix(self, r: dict[str, Any]) -> str:
        shots = "".join(
            f"{self._block(s)}\nAnswer: {_LETTERS[int(s['answer'])]}\n\n"
            for s in self.parent.shots.get(r.get("subject"), [])
        )
        return (r.get("description") or "") + shots

    def completion_prompt(self, r: dict[str, Any]) -> str:
        tail = "Answer: Let's think step by step." if self.spec.cot else "Answer:"
        return f"{self.completion_prefix(r)}{self._block(r)}\n{tail}"

    def chat_messages(self, r: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        ask = (
            "Think step by step, then finish with 'The answer is X' where X is the letter of the correct option."
            if self.spec.cot
            else "Answer with the letter of the correct option only."
        )
        msgs: list[tuple[str, str]] = [("system", self.spec.system)] if self.spec.system else []
        for s in self.parent.shots.get(r.get("subject"), []):
            msgs += [("user", f"{self._block(s)}\n\n{ask}"), ("assistant", _LETTERS[int(s["answer"])])]
        msgs.append(("user", f"{(r.get('description') or '')}{self._block(r)}\n\n{ask}"))
        return tuple(msgs)

    def score(self, r: dict[str, Any], text: str) -> tuple[str | None, str, dict[str, float]]:
        from bench.metrics.choice_letter import extract_letter

        gold = int(r["answer"])
        pred = extract_letter(text, len(r["options"]))
        letter = _LETTERS[pred] if pred is not None else None
        return letter, _LETTERS[gold], {"acc": float(pred == gold)}

    def evaluate(self, backend: Backend, items: Sequence[Item]) -> list[dict[str, Any]]:
        rows = super().evaluate(backend, items)
        for it, row in zip(items, rows, strict=True):
            row["gold_index"] = int(it.record["answer"])
            if row.get("extracted") is not None:
                row["pred_index"] = _LETTERS.index(row["extracted"])
            row["method"] = "generate_letter" if row["method"] == "generate" else "chat_letter"
        return rows
