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
        shots = self._draw_shots(records, pool)
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

    def contexts(self, item: Item) -> list[str]:
        r = item.record
        head = (r.get("description") or "") + self.prefixes.get(r.get("subject"), "")
        return [head + _context(r, i) for i in range(len(r["choices"]))]

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, backend: Backend, items: Sequence[Item]) -> list[dict[str, Any]]:
        reqs = []
        for it in items:
            conts = [self.spec.target_delimiter + c for c in it.record["choices"]]
            reqs.append(
                LoglikelihoodRequest(item_id=it.id, pairs=tuple(zip(self.contexts(it), conts, strict=True)))
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
