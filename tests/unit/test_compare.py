"""`bench compare`: paired differences and p-values that an independent computation from the
stored per-item scores reproduces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from bench import store
from bench.config import parse_suite
from bench.runner import NullDisplay, execute, plan_run
from tests.conftest import fake_suite


def _run(suite_dict: dict[str, object], root: Path) -> str:
    plan = plan_run(parse_suite(suite_dict), root)
    execute(plan, NullDisplay(), executor="inline")
    return plan.run_id


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_compare_two_models_in_one_run_matches_independent_mcnemar(tmp_path: Path, mcq_jsonl: Path) -> None:
    models = [
        {"name": "good", "backend": "fake", "accuracy": 0.9},
        {"name": "weak", "backend": "fake", "accuracy": 0.2},
    ]
    run_id = _run(fake_suite(mcq_jsonl, models=models), tmp_path)
    r = _cli("compare", run_id[:14], "--models", "good,weak", "--json", "-o", str(tmp_path))
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)[0]
    assert (res["a"], res["b"]) == ("good", "weak")
    row = res["tasks"][0]

    s = store.samples_dataset(tmp_path).to_table().to_pandas()
    a = s[s.model == "good"].set_index("item_id")["score"]
    b = s[s.model == "weak"].set_index("item_id")["score"]
    a, b = a.align(b, join="inner")
    n01 = int(((a == 0) & (b == 1)).sum())
    n10 = int(((a == 1) & (b == 0)).sum())
    assert (row["n01"], row["n10"], row["n"]) == (n01, n10, len(a))
    assert row["p_value"] == pytest.approx(binomtest(n01, n01 + n10, 0.5).pvalue)
    assert row["diff"] == pytest.approx(float((a - b).mean()))
    assert row["ci_low"] <= row["diff"] <= row["ci_high"]
    assert row["verdict"] == ("A better" if row["p_value"] < 0.05 else "no significant difference")
    assert row["test"] == "mcnemar_exact"


def test_compare_two_runs_pairs_the_same_model_on_shared_items(tmp_path: Path, mcq_jsonl: Path) -> None:
    first = _run(fake_suite(mcq_jsonl, models=[{"name": "m", "backend": "fake", "accuracy": 1.0}]), tmp_path)
    second = _run(
        fake_suite(mcq_jsonl, models=[{"name": "m", "backend": "fake", "accuracy": 1.0}], limit=10), tmp_path
    )
    r = _cli("compare", first, second, "--json", "-o", str(tmp_path))
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)[0]["tasks"][0]
    assert row["n"] == 10  # only the items both runs answered
    assert row["diff"] == 0.0 and row["p_value"] == 1.0 and row["verdict"] == "no significant difference"
    table = _cli("compare", first, second, "-o", str(tmp_path))
    assert (
        table.returncode == 0
        and "no significant difference" in table.stdout
        and "mcnemar_exact" in table.stdout
    )


def test_compare_usage_errors_exit_2(tmp_path: Path, mcq_jsonl: Path) -> None:
    run_id = _run(fake_suite(mcq_jsonl), tmp_path)
    for args, msg in (
        ((run_id,), "compare two runs, or two models of one run"),
        ((run_id, "--models", "perfect"), "exactly two names"),
        (("nope",), "no run 'nope'"),
        ((run_id, "--models", "perfect,ghost"), "no results for model 'ghost'"),
    ):
        r = _cli("compare", *args, "-o", str(tmp_path))
        assert r.returncode == 2, (args, r.stderr)
        assert msg in r.stderr and "Traceback" not in r.stderr


def test_macro_average_in_the_leaderboard_is_the_mean_of_task_means(tmp_path: Path, mcq_jsonl: Path) -> None:
    d = fake_suite(mcq_jsonl, models=[{"name": "m", "backend": "fake", "accuracy": 0.5}])
    task = d["tasks"][0]  # type: ignore[index]
    d["tasks"] = [task, {**task, "name": "again", "limit": 7}]  # type: ignore[dict-item]
    run_id = _run(d, tmp_path)
    from bench.report import leaderboard

    board, tasks = leaderboard(tmp_path, run_id)
    s = store.samples_dataset(tmp_path).to_table().to_pandas()
    means = s.groupby("task")["score"].mean()
    assert tasks == ["custom", "again"]
    assert board.iloc[0]["mean"].mean == pytest.approx(float(np.mean(means.to_numpy())))
    assert isinstance(board, pd.DataFrame)
