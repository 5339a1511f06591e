"""bench builds exactly lm-eval 0.4.13's requests for the catalog datasets.

lm-eval's own task YAMLs (and their Python helpers: hellaswag's preprocessing, winogrande's partial
evaluation) are loaded with the dataset swapped for a local JSON file of the same raw records that
bench reads, and every (context, continuation) pair lm-eval would score is compared with bench's.
Identical requests + identical log-likelihoods = identical acc / acc_norm.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

lm_eval = pytest.importorskip("lm_eval", reason="lm-eval is the reference here: pip install 'bench[lmeval]'")

from bench.catalog import DATASETS  # noqa: E402
from bench.config import MCQTask  # noqa: E402
from bench.data import olmo  # noqa: E402
from bench.tasks.mcq import MultipleChoice  # noqa: E402

N = 25
LM_TASKS = Path(lm_eval.__file__).parent / "tasks"


def _boolq(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        **doc,
        "label": int(bool(doc["answer"]) if not isinstance(doc["answer"], str) else doc["answer"] == "True"),
    }


def _stringify(key: str):  # type: ignore[no-untyped-def]
    return lambda doc: {**doc, key: str(doc[key])}


def _intify(key: str):  # type: ignore[no-untyped-def]
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


@pytest.fixture(scope="module")
def lm_eval_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("lm_eval_tasks")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["HF_DATASETS_CACHE"] = str(d / "hf-cache")
    return d


def _raw(name: str, split: str) -> list[dict[str, Any]]:
    entry = DATASETS[name]
    with olmo.open_source() as src:
        rows: list[dict[str, Any]] = []
        for member in entry.members[split]:
            rows += olmo.read_rows(src, member)
    return rows


def _lm_eval_requests(name: str, tmp: Path) -> dict[int, list[tuple[str, str]]]:
    from lm_eval.tasks import TaskManager

    yaml_rel, split, fix, shots = CASES[name]
    rows = _raw(name, split)
    fix = fix or (lambda d: d)
    data = tmp / f"{name}.{split}.jsonl"
    data.write_text("\n".join(json.dumps(fix(r), default=str) for r in rows) + "\n")
    files = {split: str(data)}
    extra = ""
    if shots:
        dev = tmp / f"{name}.dev.jsonl"
        dev.write_text("\n".join(json.dumps(fix(r), default=str) for r in _raw(name, "dev")) + "\n")
        files["dev"] = str(dev)
        extra = "fewshot_split: dev\n"
    split_keys = (
        "test_split: test\nvalidation_split: null\n"
        if split == "test"
        else "validation_split: validation\ntest_split: null\n"
    )
    (tmp / f"check_{name}.yaml").write_text(
        f"include: {LM_TASKS / yaml_rel}\n"
        f"task: bench_check_{name}\n"
        "tag: []\n"
        "dataset_path: json\n"
        "dataset_name: null\n"
        f"dataset_kwargs: {{data_files: {json.dumps(files)}}}\n"
        "training_split: null\n"
        f"{split_keys}{extra}"
        f"num_fewshot: {shots}\n"
    )
    tm = TaskManager(include_path=str(tmp), include_defaults=False)
    task = tm.load([f"bench_check_{name}"])["tasks"][f"bench_check_{name}"]
    task.set_config(key="num_fewshot", value=shots)
    task.build_all_requests(limit=N, rank=0, world_size=1)
    out: dict[int, list[tuple[str, str]]] = {}
    for inst in sorted(task.instances, key=lambda i: (i.doc_id, i.idx)):
        out.setdefault(inst.doc_id, []).append(tuple(inst.arguments))  # type: ignore[arg-type]
    return out


def _bench_requests(name: str) -> dict[int, list[tuple[str, str]]]:
    shots = CASES[name][3]
    spec = MCQTask(name=name, kind="mcq", dataset=name, split=CASES[name][1])
    task = MultipleChoice(spec, limit=N, num_fewshot=shots, seed=1234)
    out = {}
    for it in task.items():
        conts = [" " + c for c in it.record["choices"]]
        out[it.index] = list(zip(task.contexts(it), conts, strict=True))
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_bench_requests_equal_lm_eval_requests(name: str, lm_eval_env: Path) -> None:
    theirs = _lm_eval_requests(name, lm_eval_env)
    ours = _bench_requests(name)
    assert len(ours) == N and set(ours) == set(theirs)
    for doc_id in sorted(ours):
        assert ours[doc_id] == theirs[doc_id], f"{name} doc {doc_id}"
