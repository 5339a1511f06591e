"""`bench rescore` driven by the scripted fake backend: a changed scoring rule in the code gives the
same numbers as a re-run, errors stay errors, efficiency is copied, a change of the requests skips the
task instead of copying it, and no backend is ever created."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest
from click.testing import CliRunner

import bench.backends
from bench import store
from bench.backends.fake import _unit
from bench.cli import app
from bench.config import parse_suite
from bench.errors import ConfigError
from bench.rescore import parse_set, rescore
from bench.runner import NullDisplay, execute, plan_run
from bench.schema import RUNS_SCHEMA
from tests.conftest import fake_suite

MODEL = "perfect"
FAIL = "m03"


@pytest.fixture
def suite_data(tmp_path: Path, mcq_jsonl: Path) -> dict[str, Any]:
    """mcq + math + perplexity on local files; the fake says 'answer N' and half the math references
    are its N, so the flexible match scores them and bench's strict rule ('The answer is N') does not."""
    math = tmp_path / "math.jsonl"
    rows = []
    for i in range(10):
        rid = f"m{i:02d}"
        said = int(_unit(MODEL, rid) * 100)
        rows.append({"id": rid, "question": f"What is {i} + 1?", "answer": said if i % 2 else said + 1})
    math.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cfg = fake_suite(
        mcq_jsonl, models=[{"name": MODEL, "backend": "fake", "accuracy": 0.6, "fail_items": [FAIL]}]
    )
    cfg["tasks"] = [  # type: ignore[index]
        *cfg["tasks"],  # type: ignore[misc]
        {"name": "math", "kind": "math", "dataset": {"path": str(math)}, "fields": {"id": "id"}},
        {"name": "ppl", "kind": "perplexity", "dataset": {"path": str(math)}, "text_field": "question"},
    ]
    return cfg


def _run(cfg: dict[str, Any], root: Path) -> str:
    plan = plan_run(parse_suite(cfg), root)
    execute(plan, NullDisplay(), executor="inline")
    return plan.run_id


def _samples(root: Path, run_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    rows = store.samples_dataset(root, [run_id]).to_table().to_pylist()
    return {(r["task"], r["item_id"]): r for r in rows}


def _runs(root: Path, run_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    files = store.runs_sources(Path(store.find_run(root, run_id)["path"]))
    rows = ds.dataset([str(f) for f in files], schema=RUNS_SCHEMA, format="parquet").to_table().to_pylist()
    return {(r["task"], r["metric"]): r for r in rows}


def _no_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("rescore created a backend")

    monkeypatch.setattr(bench.backends, "create_backend", refuse)


def test_a_changed_rule_in_the_code_rescores_as_a_rerun_scores(
    tmp_path: Path, suite_data: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import bench.metrics.gsm8k as gsm8k

    root = tmp_path / "res"
    src = _run(suite_data, root)
    # the new rule: "answer N" counts as a strict answer too
    monkeypatch.setattr(
        gsm8k, "_STRICT_ANSWER_IS_RE", __import__("re").compile(r"answer:? ?\$?" + gsm8k._NUM)
    )
    with monkeypatch.context() as m:
        _no_backends(m)
        res = rescore(root, src)
    rerun = _run(suite_data, root)

    by_task = {t.task: t for t in res.tasks}
    assert {t.status for t in res.tasks} == {"rescored"}
    assert set(by_task["math"].moved) == {"exact_match_strict"}
    assert by_task["math"].moved["exact_match_strict"]["before"] == 0.0
    assert by_task["custom"].moved == {} and by_task["ppl"].moved == {}
    a, b, s = _samples(root, res.run_id), _samples(root, rerun), _samples(root, src)
    assert set(a) == set(b) == set(s)
    for key, row in a.items():
        for col in ("scores", "extracted", "prediction", "correct", "score", "error", "pred_index"):
            assert row[col] == b[key][col], (key, col)
        for col in (
            "latency_s",
            "input_tokens",
            "output_tokens",
            "wall_s",
            "attempt",
            "started_at",
            "raw_output",
        ):
            assert row[col] == s[key][col], (key, col)
        assert row["run_id"] == res.run_id
    # the failed item stays failed, with its message, in every task
    for task in ("math", "ppl"):
        assert a[(task, FAIL)]["error"] == s[(task, FAIL)]["error"] == "fake failure"
        assert a[(task, FAIL)]["scores"] is None
    ra, rb, rs = _runs(root, res.run_id), _runs(root, rerun), _runs(root, src)
    assert set(ra) == set(rb)
    for key, row in ra.items():
        for col in ("value", "ci_low", "ci_high", "n_scored", "n", "n_errors", "status"):
            assert row[col] == rb[key][col], (key, col)
        for col in ("latency_p50", "wall_s", "cost_usd", "usd_per_1k_items", "peak_rss_mb", "started_at"):
            assert row[col] == rs[key][col], (key, col)
    strict = ra[("math", "exact_match_strict")]
    assert strict["value"] == pytest.approx(4 / 9)  # 5 planted answers, one of them (m03) failed
    assert strict["usd_per_correct"] == pytest.approx(strict["cost_usd"] / 4)

    m = store.find_run(root, res.run_id)
    assert m["derived_from"]["run_id"] == src and m["run_id"] == res.run_id
    assert m["derived_from"]["source_git_sha"] == store.find_run(root, src)["git_sha"]
    assert (Path(m["path"]) / store.SUMMARY_FILE).exists()


def test_a_change_of_the_requests_skips_the_task_in_one_line(
    tmp_path: Path, suite_data: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "res"
    src = _run(suite_data, root)
    _no_backends(monkeypatch)
    r = CliRunner().invoke(app, ["rescore", src, "-o", str(root), "--set", "tasks.math.max_tokens=7"])
    assert r.exit_code == 1, r.output
    line = next(x for x in r.output.splitlines() if x.startswith("skipped"))
    assert "perfect · math: needs the model" in line and "max_tokens is 7" in line
    new = next(x["run_id"] for x in store.list_runs(root) if x["run_id"] != src)
    runs = _runs(root, new)
    assert {t for t, _ in runs} == {"custom", "ppl"}  # skipped, not copied
    tasks = {t["task"]: t for t in store.find_run(root, new)["derived_from"]["tasks"]}
    assert tasks["math"]["status"] == "skipped"


def test_tasks_option_and_bad_settings(tmp_path: Path, suite_data: dict[str, Any]) -> None:
    root = tmp_path / "res"
    src = _run(suite_data, root)
    res = rescore(root, src, tasks=["ppl"])
    assert [t.task for t in res.tasks] == ["ppl"]
    assert [t["name"] for t in store.find_run(root, res.run_id)["suite_config"]["tasks"]] == ["ppl"]
    with pytest.raises(ConfigError, match=r"no tasks entry 'maht'; did you mean 'math'\?"):
        rescore(root, src, sets=["tasks.maht.max_tokens=3"])
    with pytest.raises(ConfigError, match=r"tasks\[1\]\.answer_regexx: unknown field"):
        rescore(root, src, sets=["tasks.math.answer_regexx=x"])
    with pytest.raises(ConfigError, match="write PATH=VALUE"):
        parse_set("tasks.math")
    assert parse_set("tasks.math.max_tokens=64") == (["tasks", "math", "max_tokens"], 64)
    assert parse_set("tasks.m.stop=['\\n', 'Q:']")[1] == ["\\n", "Q:"]
