"""Multiple choice by log-likelihood: lm-eval's prompts, acc and acc_norm.

Few-shot examples are drawn once per task (seeded) rather than per item: every item then shares
the same prefix, which the engine's KV cache evaluates once, and the drawn examples are excluded
from evaluation when they come from the evaluated split.
"""

from __future__ import annotations

import ast
import json
import random
from collections.abc import Sequence
from typing import Any

import jinja2

from bench.backends.base import Backend, LoglikelihoodRequest
from bench.config import DatasetRef, MCQTask
from bench.errors import ConfigError, DataError
from bench.metrics.choice import score_choices
from bench.tasks.base import Item, prompt_hash
from bench.tasks.generative import GenerativeTask

DEFAULT_PROMPT = "Question: {{ question }}\nAnswer:"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


def dataset_label(ref: DatasetRef) -> str:
    if isinstance(ref, str):
        return ref
    return str(getattr(ref, "path", None) or getattr(ref, "hub", "custom"))


def _as_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                raise DataError(f"{where}: choices must be a list, got {value[:60]!r}") from None
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, list | tuple) or not value:
        raise DataError(f"{where}: choices must be a non-empty list, got {type(value).__name__}")
    return [str(v) for v in value]


def _as_index(value: Any, options: list[str], where: str) -> int:
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int | float) and float(value).is_integer():
        idx = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        idx = int(value.strip())
    elif isinstance(value, str) and len(value.strip()) == 1 and value.strip().upper() in _LETTERS:
        idx = _LETTERS.index(value.strip().upper())
        if idx >= len(options):
            raise DataError(
                f"{where}: answer {value!r} is not a label of the {len(options)} choices (A-{_LETTERS[len(options) - 1]})"
            )
    elif isinstance(value, str) and value in options:
        idx = options.index(value)
    else:
        raise DataError(f"{where}: answer {value!r} is neither an index, a letter nor one of the choices")
    if not 0 <= idx < len(options):
        raise DataError(f"{where}: answer index {idx} out of range for {len(options)} choices")
    return idx


class MultipleChoice:
    kind = "mcq"
    primary_metric = "acc"
    metrics: tuple[str, ...] = ("acc", "acc_norm")

    def __init__(self, spec: MCQTask, *, limit: int | None, num_fewshot: int, seed: int) -> None:
        self.spec = spec
        self.name = spec.name
        self.dataset = dataset_label(spec.dataset)
        self.limit = limit
        self.num_fewshot = num_fewshot
        self.seed = seed
        try:
            self._template = _env.from_string(spec.prompt) if spec.prompt else None
        except jinja2.TemplateSyntaxError as e:
            raise ConfigError(f"task {spec.name!r}: prompt: invalid Jinja template: {e.message}") from None
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
            out = [self._map_custom(r, i) for i, r in enumerate(records)]
        if self._template is not None or not isinstance(self.spec.dataset, str):
            template = self._template or _env.from_string(DEFAULT_PROMPT)
            for i, r in enumerate(out):
                try:
                    r["query"] = template.render(**r, letters=_LETTERS)
                except jinja2.UndefinedError as e:
                    raise DataError(
                        f"{self.dataset}: record {i} (id {r.get('id')}): prompt: {e.message}"
                    ) from None
                r["contexts"] = None
        return out

    def _map_custom(self, rec: dict[str, Any], i: int) -> dict[str, Any]:
        f = self.spec.fields
        assert f is not None
        where = f"{self.dataset}: record {i}"
        for key in (f.question, f.choices, f.answer):
            if key not in rec:
                raise DataError(f"{where}: missing field {key!r} (has: {', '.join(sorted(rec)[:10])})")
        options = _as_list(rec[f.choices], where)
        rid = str(rec[f.id]) if f.id and f.id in rec else f"{i}"
        return {
            **rec,
            "id": rid,
            "question": str(rec[f.question]),
            "options": options,
            "choices": options,
            "answer": _as_index(rec[f.answer], options, where),
            "contexts": None,
            "description": None,
        }

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


def _default_fields() -> Any:
    from bench.config import FieldMap

    return FieldMap()


class LetterChoice(GenerativeTask):
    """Multiple choice asked generatively ("answer with the letter"), for backends without
    log-likelihoods (chat APIs). Same items and shots as the log-likelihood form; acc only."""

    kind = "mcq"
    primary_metric = "acc"
    metrics: tuple[str, ...] = ("acc",)

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
