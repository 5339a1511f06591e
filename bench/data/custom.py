"""Multiple-choice records of custom datasets: choices and answers read without guessing.

An answer such as "2" can mean the choice whose text is "2", index 2, or (for "B") a letter. The
choice texts are tried first; when the same answer is also a valid index or letter of a different
choice, the record is ambiguous and is an error naming it, unless something explicit decides:
`fields.answer_type` (text, index or letter), or choices given with their own labels
({"text": [...], "label": [...]}, as ARC exports them), against which the answer is then matched.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from typing import Any

from bench.data.local import record_where
from bench.errors import DataError

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ANSWER_TYPES = ("auto", "text", "index", "letter")
_HINT = "set fields.answer_type to text, index or letter"


def _kind(value: Any) -> str:
    names = {type(None): "null", dict: "a mapping", list: "a list", bool: "a boolean"}
    return names.get(type(value), type(value).__name__)


def _parse(value: Any, where: str) -> Any:
    """A list or mapping, also when a CSV cell holds it as JSON or a Python repr."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            try:
                return ast.literal_eval(value)
            except (ValueError, SyntaxError):
                raise DataError(f"{where}: must be a list of choices, got {value[:60]!r}") from None
    return value.tolist() if hasattr(value, "tolist") else value


def _texts(value: Any, where: str) -> list[str]:
    if not isinstance(value, list | tuple) or not value:
        raise DataError(f"{where}: must be a non-empty list of choices, got {_kind(value)}")
    out = []
    for j, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise DataError(f"{where}: choice {j} is {_kind(v)}; choices are texts or numbers")
        out.append(str(v))
    return out


def parse_choices(value: Any, where: str) -> tuple[list[str], list[str] | None]:
    """Choice texts, and their labels when the record gives them ({"text": [...], "label": [...]})."""
    value = _parse(value, where)
    if not isinstance(value, Mapping):
        return _texts(value, where), None
    if "text" not in value or "label" not in value:
        raise DataError(f"{where}: a mapping of choices needs 'text' and 'label' lists, has {sorted(value)}")
    texts = _texts(_parse(value["text"], f"{where}.text"), f"{where}.text")
    labels = [s.strip() for s in _texts(_parse(value["label"], f"{where}.label"), f"{where}.label")]
    if len(labels) != len(texts) or len(set(labels)) != len(labels):
        raise DataError(
            f"{where}: needs one distinct label per choice, got {labels} for {len(texts)} choices"
        )
    return texts, labels


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _as_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip() if isinstance(value, str | int | float) else None


def _as_letter(value: Any) -> int | None:
    if isinstance(value, str) and len(value.strip()) == 1 and value.strip().upper() in LETTERS:
        return LETTERS.index(value.strip().upper())
    return None


def _by_position(value: Any, options: list[str], where: str, kind: str) -> int:
    n = len(options)
    idx = _as_int(value) if kind in ("auto", "index") else None
    letter = _as_letter(value) if kind in ("auto", "letter") else None
    if idx is not None:
        if not 0 <= idx < n:
            raise DataError(f"{where}: answer index {idx} out of range for {n} choices")
        return idx
    if letter is not None:
        if letter >= n:
            raise DataError(
                f"{where}: answer {value!r} is not a label of the {n} choices (A-{LETTERS[n - 1]})"
            )
        return letter
    letters = f"A-{LETTERS[min(n, 26) - 1]}"
    allowed = {
        "auto": f"neither one of the choices, an index (0-{n - 1}) nor a letter ({letters})",
        "index": f"not an index (0-{n - 1}), as fields.answer_type says",
        "letter": f"not a letter ({letters}), as fields.answer_type says",
    }[kind]
    raise DataError(f"{where}: answer {value!r} is {allowed}")


def answer_index(
    value: Any, options: list[str], where: str, *, labels: list[str] | None = None, kind: str = "auto"
) -> int:
    """The index of the gold choice; `kind` is fields.answer_type (see the module docstring)."""
    if value is None:
        raise DataError(f"{where}: answer is null")
    text = _as_text(value)
    if labels is not None and kind == "auto":
        if text in labels:
            return labels.index(text)
        raise DataError(f"{where}: answer {value!r} is not one of the choice labels {labels}")
    if kind in ("index", "letter"):
        return _by_position(value, options, where, kind)
    hits = [j for j, o in enumerate(options) if text is not None and o.strip() == text]
    if len(hits) > 1:
        raise DataError(
            f"{where}: answer {value!r} is the text of choices {hits[0]} and {hits[1]}: which is meant?"
        )
    if kind == "text" and not hits:
        raise DataError(f"{where}: answer {value!r} is none of the choice texts, as fields.answer_type says")
    if not hits:
        return _by_position(value, options, where, "auto")
    if kind == "auto":
        pos, how = _as_int(value), "index"
        if pos is None:
            pos, how = _as_letter(value), "letter"
        if pos is not None and 0 <= pos < len(options) and pos != hits[0]:
            raise DataError(
                f"{where}: answer {value!r} is ambiguous: the text of choice {hits[0]} ({options[hits[0]]!r}) "
                f"but also {how} {value!r} = choice {pos} ({options[pos]!r}); {_HINT}"
            )
    return hits[0]


def require_fields(records: list[dict[str, Any]], keys: list[str], label: str) -> None:
    """Every record has every key, not null; else an error naming the first record that lacks one."""
    for i, rec in enumerate(records):
        for key in keys:
            if rec.get(key) is None:
                what = "is null" if key in rec else f"is missing (has: {', '.join(sorted(rec)[:10])})"
                raise DataError(f"{record_where(records, i, label)}: field {key!r} {what}")


def record_ids(records: list[dict[str, Any]], key: str | None, label: str) -> list[str]:
    """Each record's id: its `key` field (a text or an integer, never used twice), else its index."""
    if key is None:
        return [str(i) for i in range(len(records))]
    origins = getattr(records, "origins", None)
    seen: dict[str, int] = {}
    for i, rec in enumerate(records):
        value, where = rec.get(key), record_where(records, i, label)
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise DataError(
                f"{where}: field {key!r} (the id) must be a text or an integer, got {_kind(value)}"
            )
        rid = str(value)
        if rid in seen:
            j = seen[rid]
            first = f"record {j}" + (f" ({origins[j]})" if origins else "")
            raise DataError(f"{where} (id {rid}): id already used by {first}")
        seen[rid] = i
    return list(seen)


def map_mcq_records(records: list[dict[str, Any]], fields: Any, label: str) -> list[dict[str, Any]]:
    """Canonical MCQ records of a custom dataset, mapped with its FieldMap `fields`.

    Every bad record (a missing field, a wrong type, an ambiguous answer, an id used twice) is one
    DataError naming the file, the line (for line-based files) and the record."""
    kind = getattr(fields, "answer_type", "auto")
    need = [fields.question, fields.choices, fields.answer] + ([fields.id] if fields.id else [])
    require_fields(records, need, label)
    ids = record_ids(records, fields.id, label)
    out: list[dict[str, Any]] = []
    for i, (rec, rid) in enumerate(zip(records, ids, strict=True)):
        where = f"{record_where(records, i, label)} (id {rid})"
        question = rec[fields.question]
        if not isinstance(question, str):
            raise DataError(f"{where}: field {fields.question!r} must be text, got {_kind(question)}")
        options, labels = parse_choices(rec[fields.choices], f"{where}: field {fields.choices!r}")
        answer = answer_index(rec[fields.answer], options, where, labels=labels, kind=kind)
        out.append(
            {
                **rec,
                "id": rid,
                "question": question,
                "options": options,
                "choices": options,
                "answer": answer,
                "contexts": None,
                "description": None,
            }
        )
    return out
