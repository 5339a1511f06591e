"""bench builds exactly lm-eval 0.4.13's requests for the catalog datasets.

lm-eval's own task YAMLs (and their Python helpers: hellaswag's preprocessing, winogrande's partial
evaluation, MMLU's first-n shots from dev) are loaded with the dataset swapped for a local JSON file
of the same raw records that bench reads, and every (context, continuation) pair lm-eval would
score is compared with bench's. Identical requests + identical log-likelihoods = identical acc.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("lm_eval", reason="lm-eval is the reference here: pip install 'bench[lmeval]'")

from bench.specs.tasks import MCQSpec
from bench.tasks.mcq import MultipleChoice
from tests.integration.lm_eval_util import CASES, write_check_task

N = 25


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: pytest.MonkeyPatch) -> Path:
    d = tmp_path_factory.mktemp("lm_eval_tasks")
    monkeypatch_module.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch_module.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch_module.setenv("HF_DATASETS_CACHE", str(d / "hf-cache"))
    return d


def _lm_eval_requests(name: str, directory: Path) -> dict[int, list[tuple[str, str]]]:
    from lm_eval.tasks import TaskManager

    task_name = write_check_task(name, directory)
    tm = TaskManager(include_path=str(directory), include_defaults=False)
    task = tm.load([task_name])["tasks"][task_name]
    task.build_all_requests(limit=N, rank=0, world_size=1)
    out: dict[int, list[tuple[str, str]]] = {}
    for inst in sorted(task.instances, key=lambda i: (i.doc_id, i.idx)):
        out.setdefault(inst.doc_id, []).append(tuple(inst.arguments))  # type: ignore[arg-type]
    return out


def _bench_requests(name: str) -> dict[int, list[tuple[str, str]]]:
    _, split, _, shots = CASES[name]
    task = MultipleChoice(
        MCQSpec(name=name, kind="mcq", dataset=name, split=split), limit=N, num_fewshot=shots, seed=1
    )
    out = {}
    for it in task.items():
        conts = [" " + c for c in it.record["choices"]]
        out[it.index] = list(zip(task.contexts(it), conts, strict=True))
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_bench_requests_equal_lm_eval_requests(name: str, task_dir: Path) -> None:
    theirs = _lm_eval_requests(name, task_dir)
    ours = _bench_requests(name)
    assert len(ours) == N and set(ours) == set(theirs)
    for doc_id in sorted(ours):
        assert ours[doc_id] == theirs[doc_id], f"{name} doc {doc_id}"
