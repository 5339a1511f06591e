"""lm-eval 0.4.13's own task definitions, pointed at local copies of the records bench reads.

Each check task `include`s lm-eval's installed YAML (with its Python helpers) and swaps only the
dataset for a JSON file, so lm-eval builds its prompts its own way from the same raw records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lm_eval

from bench.catalog import DATASETS
from bench.data import olmo

LM_TASKS = Path(lm_eval.__file__).parent / "tasks"


def _boolq(doc: dict[str, Any]) -> dict[str, Any]:
    answer = doc["answer"]
    return {**doc, "label": int(answer == "True" if isinstance(answer, str) else bool(answer))}


def _stringify(key: str) -> Any:
    return lambda doc: {**doc, key: str(doc[key])}


def _intify(key: str) -> Any:
    return lambda doc: {**doc, key: int(doc[key])}


# dataset -> (lm-eval YAML, split, fix-up of the raw record into the HF hub's types, num_fewshot)
CASES: dict[str, tuple[str, str, Any, int]] = {
    "arc_easy": ("arc/arc_easy.yaml", "validation", None, 0),
    "arc_challenge": ("arc/arc_challenge.yaml", "validation", None, 0),
    "hellaswag": ("hellaswag/hellaswag.yaml", "validation", _stringify("label"), 0),
    "piqa": ("piqa/piqa.yaml", "validation", _intify("label"), 0),
    "winogrande": ("winogrande/default.yaml", "validation", _stringify("answer"), 0),
    "commonsense_qa": ("commonsense_qa/default.yaml", "validation", None, 0),
    "openbookqa": ("openbookqa/openbookqa.yaml", "validation", None, 0),
    "boolq": ("super_glue/boolq/default.yaml", "validation", _boolq, 0),
    "mmlu_astronomy": ("mmlu/default/mmlu_astronomy.yaml", "test", _intify("answer"), 5),
}


def raw_records(name: str, split: str) -> list[dict[str, Any]]:
    entry = DATASETS[name]
    with olmo.open_source() as src:
        rows: list[dict[str, Any]] = []
        for member in entry.members[split]:
            rows += olmo.read_rows(src, member)
    return rows


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("\n".join(json.dumps(r, default=str) for r in rows) + "\n")
    return str(path)


def write_check_task(name: str, directory: Path, *, split: str | None = None, fix: Any = None) -> str:
    """Write a task YAML for dataset `name` into `directory`; return the task's name. `split` and
    `fix` override the case's (a split whose raw records need another fix-up, e.g. ARC's test)."""
    yaml_rel, case_split, case_fix, shots = CASES[name]
    split, fix = split or case_split, fix or case_fix or (lambda d: d)
    files = {split: _jsonl(directory / f"{name}.{split}.jsonl", [fix(r) for r in raw_records(name, split)])}
    extra = ""
    if shots:
        files["dev"] = _jsonl(directory / f"{name}.dev.jsonl", [fix(r) for r in raw_records(name, "dev")])
        extra = "fewshot_split: dev\n"
    if split == "test":
        splits = "test_split: test\nvalidation_split: null\n"
    else:
        splits = "validation_split: validation\ntest_split: null\n"
    task = f"bench_check_{name}" if split == case_split else f"bench_check_{name}_{split}"
    (directory / f"{task}.yaml").write_text(
        f"include: {LM_TASKS / yaml_rel}\n"
        f"task: {task}\n"
        "tag: []\n"
        "dataset_path: json\n"
        "dataset_name: null\n"
        f"dataset_kwargs: {{data_files: {json.dumps(files)}}}\n"
        "training_split: null\n"
        f"{splits}{extra}"
        f"num_fewshot: {shots}\n"
    )
    return task
