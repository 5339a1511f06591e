"""Generative task plumbing: prompts (k-shot, chain of thought, chat vs completion), stop sequences,
answer extraction into rows, corpus-level perplexity, custom fields and bad data. A recording
backend stands in for the engine: the thing under test is what bench sends and stores."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.backends.base import (
    GenerateRequest,
    GenerateResponse,
    LoglikelihoodRequest,
    LoglikelihoodResponse,
    ModelInfo,
    RollingRequest,
    RollingResponse,
)
from bench.errors import ConfigError, DataError
from bench.specs import LocalDataset
from bench.specs.tasks import MathSpec, MCQSpec, PerplexitySpec, QASpec, SummarizeSpec
from bench.store import SAMPLES_SCHEMA, rows_to_table
from bench.summary import task_summary
from bench.tasks.math import MathTask as MathImpl
from bench.tasks.mcq import MultipleChoice
from bench.tasks.perplexity import PerplexityTask as PplImpl
from bench.tasks.qa import QATask as QAImpl
from bench.tasks.summarize import SummarizeTask as SumImpl


class Recorder:
    """Answers with scripted text and keeps every request."""

    name = "recorder"

    def __init__(self, answers: dict[str, str] | None = None, *, chat: bool = False, ll: bool = True) -> None:
        self.answers = answers or {}
        self.chat = chat
        self.ll = ll
        self.requests: list[Any] = []

    def info(self) -> ModelInfo:
        return ModelInfo(name="rec", backend="recorder", chat_template=self.chat, loglikelihood=self.ll)

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[GenerateResponse]:
        self.requests += reqs
        return [
            GenerateResponse(self.answers.get(r.item_id, "no idea"), 10, 5, 0.1, 0.5, "stop") for r in reqs
        ]

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResponse]:
        self.requests += reqs
        return [
            LoglikelihoodResponse(
                [-1.0] * len(r.pairs), [False] * len(r.pairs), [1] * len(r.pairs), 5, 5, 0.1
            )
            for r in reqs
        ]

    def loglikelihood_rolling(self, reqs: Sequence[RollingRequest]) -> list[RollingResponse]:
        self.requests += reqs
        return [RollingResponse(-float(len(r.text)), len(r.text) // 4, len(r.text) // 4, 0.1) for r in reqs]

    def close(self) -> None:
        pass


def _gsm(**kw: Any) -> MathImpl:
    spec = MathSpec(name="g", kind="math", dataset="gsm8k", **kw)
    return MathImpl(spec, limit=kw.get("limit", 3), num_fewshot=kw.get("num_fewshot", 0) or 0, seed=1)


def test_gsm8k_completion_prompt_uses_the_cot_exemplars_and_stop_sequences() -> None:
    task = MathImpl(
        MathSpec(name="g", kind="math", dataset="gsm8k", num_fewshot=8), limit=2, num_fewshot=8, seed=1
    )
    items = task.items()
    assert [it.index for it in items] == [0, 1]  # curated shots: nothing excluded from the test split
    req = task.request(Recorder(), items[0])
    assert req.messages is None
    assert req.prompt.count("Q: ") == 9 and req.prompt.count("The answer is") == 8
    assert req.prompt.startswith("Q: There are 15 trees in the grove.")
    assert req.prompt.endswith("farmers' market?\nA:")
    assert "Q:" in req.stop and "\n\n\n" in req.stop and req.max_tokens == 256


def test_chat_prompt_when_the_model_has_a_template_and_few_shot_as_turns() -> None:
    task = MathImpl(
        MathSpec(name="g", kind="math", dataset="gsm8k", num_fewshot=2, cot=True, system="Be brief."),
        limit=1,
        num_fewshot=2,
        seed=1,
    )
    it = task.items()[0]
    req = task.request(Recorder(chat=True), it)
    assert req.messages is not None
    roles = [r for r, _ in req.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert "Think step by step" in req.messages[-1][1] and "Janet" in req.messages[-1][1]
    assert req.messages[2][1].endswith("The answer is 6.")
    assert req.stop == ()  # the chat template's end-of-turn token ends generation
    never = MathImpl(
        MathSpec(name="g", kind="math", dataset="gsm8k", chat="never"), limit=1, num_fewshot=0, seed=1
    )
    assert never.request(Recorder(chat=True), never.items()[0]).messages is None
    always = MathImpl(
        MathSpec(name="g", kind="math", dataset="gsm8k", chat="always"), limit=1, num_fewshot=0, seed=1
    )
    with pytest.raises(ConfigError, match="no chat template"):
        always.request(Recorder(chat=False), always.items()[0])


def test_gsm8k_rows_keep_raw_output_extracted_answer_and_both_matches() -> None:
    task = MathImpl(MathSpec(name="g", kind="math", dataset="gsm8k"), limit=3, num_fewshot=0, seed=1)
    items = task.items()
    answers = {
        items[0].id: "She sells 9 eggs for $2 each. The answer is 18.",
        items[1].id: "It takes 2 + 1 = 3 bolts. So 3",  # flexible only
        items[2].id: "The answer is 12.",  # wrong
    }
    rows = task.evaluate(Recorder(answers), items)
    assert [r["raw_output"] for r in rows] == [answers[it.id] for it in items]
    assert [dict(r["scores"]) for r in rows] == [
        {"exact_match_strict": 1.0, "exact_match_flexible": 1.0},
        {"exact_match_strict": 0.0, "exact_match_flexible": 1.0},
        {"exact_match_strict": 0.0, "exact_match_flexible": 0.0},
    ]
    assert rows[0]["extracted"] == "18" and rows[0]["reference"] == "18" and rows[0]["score"] == 1.0
    assert rows[1]["extracted"] == "3" and rows[1]["correct"] is False
    assert rows[0]["tpot_s"] == pytest.approx((0.5 - 0.1) / 4)


def test_math500_compares_by_equivalence() -> None:
    task = MathImpl(MathSpec(name="m", kind="math", dataset="math500"), limit=1, num_fewshot=0, seed=1)
    it = task.items()[0]
    assert task.primary_metric == "exact_match"
    ref = it.record["answer"]
    rows = task.evaluate(
        Recorder({it.id: "So the point is $\\boxed{\\left(3, \\frac{\\pi}{2}\\right)}$."}), [it]
    )
    assert rows[0]["score"] == 1.0 and rows[0]["reference"] == ref
    rows = task.evaluate(Recorder({it.id: "$\\boxed{(3, \\pi)}$"}), [it])
    assert rows[0]["score"] == 0.0


def test_mcq_asked_generatively_extracts_the_letter() -> None:
    spec = MCQSpec(name="a", kind="mcq", dataset="arc_easy", method="generate", num_fewshot=1)
    task = MultipleChoice(spec, limit=2, num_fewshot=1, seed=3)
    items = task.items()
    gold = [int(it.record["answer"]) for it in items]
    letters = "ABCD"
    answers = {
        items[0].id: f"The answer is {letters[gold[0]]}.",
        items[1].id: f"({letters[(gold[1] + 1) % 4]})",
    }
    rec = Recorder(answers, ll=True)
    rows = task.evaluate(rec, items)
    assert [r["score"] for r in rows] == [1.0, 0.0]
    assert rows[0]["method"] == "generate_letter" and rows[0]["pred_index"] == gold[0]
    prompt = rec.requests[0].prompt
    assert prompt.count("Question:") == 2 and "\nA. " in prompt and prompt.endswith("Answer:")
    # auto: log-likelihood when the backend gives it, letters when it does not
    auto = MultipleChoice(MCQSpec(name="a", kind="mcq", dataset="arc_easy"), limit=2, num_fewshot=0, seed=3)
    assert auto.method(Recorder(ll=True)) == "loglikelihood"
    assert auto.method(Recorder(ll=False)) == "generate"
    strict = MultipleChoice(
        MCQSpec(name="a", kind="mcq", dataset="arc_easy", method="loglikelihood"),
        limit=2,
        num_fewshot=0,
        seed=3,
    )
    with pytest.raises(ConfigError, match="gives no log-likelihoods"):
        strict.method(Recorder(ll=False))


def test_summaries_are_scored_with_rouge_and_length() -> None:
    from rouge_score import rouge_scorer

    task = SumImpl(SummarizeSpec(name="s", kind="summarize", dataset="xsum"), limit=2, num_fewshot=0, seed=1)
    items = task.items()
    out = "Rory McIlroy is one shot behind the leaders in Abu Dhabi."
    rows = task.evaluate(Recorder({items[0].id: out}), items[:1])
    ref = items[0].record["summary"]
    want = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True).score(ref, out)
    s = dict(rows[0]["scores"])
    assert s["rougeL"] == pytest.approx(want["rougeL"].fmeasure) and s["rouge2"] == pytest.approx(
        want["rouge2"].fmeasure
    )
    assert s["output_words"] == len(out.split())
    assert s["compression_ratio"] == pytest.approx(
        len(items[0].record["document"].split()) / len(out.split())
    )
    assert "one sentence" in task.request(Recorder(), items[0]).prompt


def test_qa_scores_exact_match_and_f1_against_all_answers() -> None:
    task = QAImpl(QASpec(name="q", kind="qa", dataset="squad"), limit=1, num_fewshot=0, seed=1)
    it = task.items()[0]
    rows = task.evaluate(Recorder({it.id: " 23\nQuestion: more"}), [it])
    assert rows[0]["extracted"] == "23" and dict(rows[0]["scores"]) == {"exact_match": 1.0, "f1": 1.0}
    req = task.request(Recorder(), it)
    assert req.stop == ("\n",) and req.prompt.startswith("Background: ") and req.prompt.endswith("Answer:")


def test_perplexity_is_corpus_level_and_texts_are_deduplicated() -> None:
    task = PplImpl(
        PerplexitySpec(name="p", kind="perplexity", dataset="squad"), limit=None, num_fewshot=0, seed=1
    )
    items = task.items()
    texts = [it.record["text"] for it in items]
    assert len(texts) == len(set(texts)) and len(items) < 1000  # one row per distinct passage
    rows = task.evaluate(Recorder(), items[:20])
    table = rows_to_table(rows, SAMPLES_SCHEMA)
    out = task_summary(table, task=task, base={}, seed=1, usd_per_hour=0.0, price=None)
    by = {r["metric"]: r for r in out}
    nll = sum(len(t) for t in texts[:20])  # the recorder's loglik is -len(text)
    n_bytes = sum(len(t.encode()) for t in texts[:20])
    assert by["bits_per_byte"]["value"] == pytest.approx(nll / (n_bytes * math.log(2)))
    assert by["bits_per_byte"]["higher_is_better"] is False and by["bits_per_byte"]["primary"]
    assert by["word_perplexity"]["value"] == pytest.approx(
        math.exp(nll / sum(len(t.split()) for t in texts[:20]))
    )
    # the corpus figure is a ratio of sums, not the mean of per-item figures
    assert by["bits_per_byte"]["value"] != pytest.approx(np.mean([r["score"] for r in rows]), abs=1e-12)
    assert by["bits_per_byte"]["ci_low"] <= by["bits_per_byte"]["value"] <= by["bits_per_byte"]["ci_high"]


def test_custom_generative_dataset_fields_and_bad_records(tmp_path: Path) -> None:
    p = tmp_path / "arith.jsonl"
    p.write_text(
        "\n".join(json.dumps({"q": f"What is {i} + {i}?", "a": str(2 * i), "key": f"k{i}"}) for i in range(4))
    )
    spec = MathSpec(
        name="arith",
        kind="math",
        dataset=LocalDataset(path=str(p)),
        fields={"id": "key", "input": "q", "target": "a"},
        prompt="Compute: {{ question }}\nResult:",
    )
    task = MathImpl(spec, limit=None, num_fewshot=0, seed=1)
    items = task.items()
    assert [it.id for it in items] == ["k0", "k1", "k2", "k3"]
    rows = task.evaluate(Recorder({"k3": "The answer is 6."}), items)
    assert [r["score"] for r in rows] == [0.0, 0.0, 0.0, 1.0]
    assert task.request(Recorder(), items[1]).prompt == "Compute: What is 1 + 1?\nResult:"

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"q": "x", "a": "1"}) + "\n" + json.dumps({"q": "y"}) + "\n")
    spec = MathSpec(
        name="bad", kind="math", dataset=LocalDataset(path=str(bad)), fields={"input": "q", "target": "a"}
    )
    with pytest.raises(DataError, match=r"bad.jsonl:2: record 1: field 'a' is missing \(has: q\)"):
        MathImpl(spec, limit=None, num_fewshot=0, seed=1).items()

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    spec = SummarizeSpec(name="e", kind="summarize", dataset=LocalDataset(path=str(empty)))
    with pytest.raises(DataError, match="no records"):
        SumImpl(spec, limit=None, num_fewshot=0, seed=1).items()


def test_mcq_bad_custom_records_name_the_dataset_and_record(tmp_path: Path) -> None:
    p = tmp_path / "mc.jsonl"
    p.write_text(
        json.dumps({"question": "ok?", "choices": ["a", "b"], "answer": 1})
        + "\n"
        + json.dumps({"question": "bad?", "choices": ["a", "b"], "answer": 5})
        + "\n"
    )
    task = MultipleChoice(
        MCQSpec(name="m", kind="mcq", dataset=LocalDataset(path=str(p))), limit=None, num_fewshot=0, seed=1
    )
    with pytest.raises(
        DataError, match=r"mc.jsonl:2: record 1 \(id 1\): answer index 5 out of range for 2 choices"
    ):
        task.items()
    p.write_text(json.dumps({"question": "ok?", "choices": ["a", "b"], "answer": "Z"}) + "\n")
    task = MultipleChoice(
        MCQSpec(name="m", kind="mcq", dataset=LocalDataset(path=str(p))), limit=None, num_fewshot=0, seed=1
    )
    with pytest.raises(
        DataError, match=r"mc.jsonl:1: record 0 \(id 0\): answer 'Z' is not a label of the 2 choices \(A-B\)"
    ):
        task.items()
