"""One stored run, every view: the runs rows, the terminal leaderboard, `bench compare`, nightly's
verdict.json and report.md, and the dashboard's data functions show the same interval bounds and
p-values, and recomputing them from the stored per-item scores gives the stored numbers.

The runs are real bench runs through the runner into real Parquet, with the scripted fake
backend (this tests the harness, not a model). Model `edge` always picks the answer the item id
names: right on every item of `custom`, wrong on every item of `custom_b` (whose ids name a wrong
choice), so both edges are covered: 0/10 must get an honest interval (Wilson: [0, 0.278]), not
the bootstrap's [0, 0].
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from scipy.stats import binomtest

from bench import analysis, store
from bench import dashboard_data as dd
from bench.display import print_leaderboard
from tests.conftest import fake_suite
from tests.unit.test_compare import _cli, _run

TASKS = ("custom", "custom_b")
CI = re.compile(r"\[(-?\d+\.\d+), (-?\d+\.\d+)\]")


def _suite(data: Path, good_accuracy: float) -> dict[str, Any]:
    d = fake_suite(
        data / "items.jsonl",
        models=[
            {"name": "good", "backend": "fake", "accuracy": good_accuracy},
            {"name": "edge", "backend": "fake", "accuracy": 1.0},
        ],
        limit=10,
    )
    task = d["tasks"][0]  # type: ignore[index]
    wrong = {**task["dataset"], "path": str(data / "wrong.jsonl")}  # type: ignore[index]
    d["tasks"] = [task, {**task, "name": "custom_b", "dataset": wrong}]  # type: ignore[dict-item]
    return d


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    d = tmp_path_factory.mktemp("same")
    for name, shift in (("items.jsonl", 0), ("wrong.jsonl", 1)):  # wrong: the id names a wrong choice
        rows = [
            {
                "id": f"q{i:02d}-gold:{(i + shift) % 3}",
                "q": f"item {i}?",
                "opts": ["a", "bb", "ccc"],
                "label": i % 3,
            }
            for i in range(23)
        ]
        (d / name).write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    root = d / "results"
    first = _run(_suite(d, 0.3), root)
    second = _run(_suite(d, 0.9), root)
    return root, first, second


def _stored(root: Path, run_id: str) -> pd.DataFrame:
    r = store.runs_dataset(root, [run_id]).to_table().to_pandas()
    return r[r["primary"]].set_index(["model", "task"])


def _scores(root: Path, run_id: str, model: str, task: str) -> pd.Series:
    s = store.samples_dataset(root, [run_id]).to_table().to_pandas()
    s = s[(s["model"] == model) & (s["task"] == task) & s["error"].isna()]
    return s.set_index("item_id")["score"].astype(float)


def _terminal(root: Path, run_id: str, width: int) -> dict[tuple[str, str], tuple[float, float]]:
    """(model, task or 'mean') -> the interval the terminal leaderboard prints."""
    buf = io.StringIO()
    print_leaderboard(Console(file=buf, width=width, no_color=True), root, run_id, "dir", None)
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for line in buf.getvalue().splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
        if len(cells) < 3 or cells[0].rstrip(" *") not in ("good", "edge"):
            continue
        model = cells[0].rstrip(" *")
        if cells[1] in (*TASKS, "mean"):  # one line per (model, task)
            ci = next(CI.search(c) for c in cells[2:] if CI.search(c))
            out[(model, cells[1])] = (float(ci[1]), float(ci[2]))
        else:  # the grid: one cell per task, then the mean
            found = [CI.search(c) for c in cells[1:] if CI.search(c)]
            if not found:
                continue  # the efficiency table
            for key, m in zip((*TASKS, "mean"), found, strict=True):
                out[(model, key)] = (float(m[1]), float(m[2]))  # type: ignore[index]
    return out


def test_every_view_shows_the_same_intervals_and_p_values(two_runs: tuple[Path, str, str]) -> None:
    root, first, second = two_runs
    stored = _stored(root, second)

    # 1. the stored rows are the analysis layer's interval of the stored per-item scores, and for
    #    0/1 scores that is the Wilson interval (scipy's, computed independently)
    for model in ("good", "edge"):
        for task in TASKS:
            x = _scores(root, second, model, task)
            row = stored.loc[(model, task)]
            iv = analysis.metric_interval(x.to_numpy())
            assert (row["ci_low"], row["ci_high"], row["value"]) == (iv.ci_low, iv.ci_high, iv.mean)
            w = binomtest(int(x.sum()), len(x)).proportion_ci(method="wilson")
            assert (row["ci_low"], row["ci_high"]) == pytest.approx((w.low, w.high), abs=1e-12)
            assert row["ci_method"] == "wilson" and row["n_scored"] == len(x) == 10
    assert stored.loc[("edge", "custom_b"), ["value", "ci_low"]].tolist() == [0.0, 0.0]
    assert stored.loc[("edge", "custom_b"), "ci_high"] > 0.27  # 0/10 is not [0, 0]
    assert stored.loc[("edge", "custom"), ["value", "ci_high"]].tolist() == [1.0, 1.0]
    assert stored.loc[("edge", "custom"), "ci_low"] < 0.73  # nor is 10/10 [1, 1]

    # 2. the dashboard's leaderboard (the functions its page calls) on the stored rows
    runs = dd.load_primary_runs(root, index=False)
    board = dd.leaderboard_table(dd.select_results(runs, dd.Filters(run_id=second))).set_index("model")

    # 3. the terminal, in both layouts: narrow (3 decimals) and the grid (2 decimals)
    narrow, grid = _terminal(root, second, 70), _terminal(root, second, 200)
    assert len(narrow) == len(grid) == 6
    for model in ("good", "edge"):
        for task in TASKS:
            lo, hi = stored.loc[(model, task), ["ci_low", "ci_high"]]
            assert (board.loc[model, f"{task} lo"], board.loc[model, f"{task} hi"]) == (lo, hi)
            assert narrow[(model, task)] == (round(lo, 3), round(hi, 3))
            assert grid[(model, task)] == (round(lo, 2), round(hi, 2))
        avg = (board.loc[model, "avg lo"], board.loc[model, "avg hi"])
        assert narrow[(model, "mean")] == tuple(round(v, 3) for v in avg)
        assert grid[(model, "mean")] == tuple(round(v, 2) for v in avg)
    assert board.loc["edge", "avg"] == 0.5 and board.loc["edge", "avg lo"] < 0.5 < board.loc["edge", "avg hi"]

    # 4. `bench compare` tonight against last night (every model): the same tests nightly makes
    r = _cli("compare", second, first, "--json", "-o", str(root))
    assert r.returncode == 0, r.stderr
    cmp = {(res["a"].split("@")[0], t["task"]): t for res in json.loads(r.stdout) for t in res["tasks"]}
    assert len(cmp) == 4
    raw = [cmp[k]["p_value"] for k in sorted(cmp)]
    assert [cmp[k]["p_adjusted"] for k in sorted(cmp)] == pytest.approx(list(analysis.adjust_pvalues(raw)))
    for (model, task), c in cmp.items():
        a, b = _scores(root, second, model, task), _scores(root, first, model, task)
        a, b = a.align(b, join="inner")
        n10, n01 = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
        assert c["p_value"] == pytest.approx(binomtest(n01, n01 + n10, 0.5).pvalue if n01 + n10 else 1.0)
        n11, n00 = int(((a == 1) & (b == 1)).sum()), int(((a == 0) & (b == 0)).sum())
        assert (c["ci_low"], c["ci_high"]) == analysis.newcombe_paired(n11, n10, n01, n00)
        significant = c["p_adjusted"] < 0.05
        assert c["verdict"] == ("A better" if significant and c["diff"] > 0 else "no significant difference")
    same = cmp[("edge", "custom")]  # 10/10 both nights: no difference, but not a [0, 0] interval
    assert same["diff"] == 0.0 and same["p_value"] == 1.0 and same["ci_low"] < -0.1 and same["ci_high"] > 0.1

    # 5. `bench nightly --no-run`: verdict.json holds the same intervals, raw and adjusted p-values
    suite_file, out = root.parent / "suite.yaml", root.parent / "nightly-out"
    suite_file.write_text(json.dumps(_suite(root.parent / "items.jsonl", 0.9)))  # JSON is YAML
    r = _cli(
        "nightly", str(suite_file), "--no-run", "--baseline", first, "-o", str(root), "--reports", str(out)
    )
    assert r.returncode in (0, 1), r.stderr
    verdict = json.loads((out / "verdict.json").read_text())
    acc = {(f["model"], f["task"]): f for f in verdict["findings"] if f["aspect"] == "accuracy"}
    assert set(acc) == set(cmp)
    for key, f in acc.items():
        c = cmp[key]
        assert (f["ci"][0], f["ci"][1], f["p_value"], f["p_adjusted"]) == (
            c["ci_low"],
            c["ci_high"],
            c["p_value"],
            c["p_adjusted"],
        )
        assert f["verdict"] == ("improved" if c["verdict"] == "A better" else "unchanged")
    # its Markdown leaderboard prints the terminal's intervals (2 decimals)
    md = (out / "report.md").read_text()
    for model in ("good", "edge"):
        line = next(x for x in md.splitlines() if x.startswith(f"| {model} |"))
        cells = [CI.search(c) for c in line.split("|") if CI.search(c)]
        assert [(float(m[1]), float(m[2])) for m in cells if m] == [
            grid[(model, t)] for t in (*TASKS, "mean")
        ]

    # 6. the dashboard's history page: the same raw p-value for tonight's change
    # ordered by the manifests' created_at, as the page does: both runs may start in one second
    hist = dd.history_table(runs, "good", "custom", dd.read_manifests(root, runs, [first, second]))
    sc = dd.read_samples(
        root, runs, [first, second], ["item_id", "score", "correct"], models=["good"], tasks=["custom"]
    )
    hc = dd.history_changes(hist, sc).set_index("run_id")
    assert hc.loc[second, "prev_run_id"] == first
    assert hc.loc[second, "p_value"] == cmp[("good", "custom")]["p_value"]
    assert hc.loc[second, "diff"] == pytest.approx(cmp[("good", "custom")]["diff"])

    # 7. the "is a small model enough?" page against `bench compare` of the two models tonight
    r = _cli("compare", second, "--models", "good,edge", "--json", "-o", str(root))
    assert r.returncode == 0, r.stderr
    within = {t["task"]: t for t in json.loads(r.stdout)[0]["tasks"]}
    prim = runs[(runs["run_id"] == second) & (runs["status"] == "ok")]
    items = dd.read_samples(root, runs, [second], ["item_id", "score", "correct", "error"])
    every = dd.good_enough_all(prim, items).set_index(["task", "model"])
    table = dd.small_model_table(prim, items).set_index("task")
    assert table["best"].to_dict() == {"custom": "edge", "custom_b": "good"}
    for task, other, sign in (("custom", "good", 1), ("custom_b", "edge", -1)):  # compare's A is good
        ge = every.loc[(task, other)]
        assert (ge["p_value"], ge["p_adjusted"]) == (within[task]["p_value"], within[task]["p_adjusted"])
        assert ge["diff"] == pytest.approx(sign * within[task]["diff"])
        worse_verdict = "B better" if other == "good" else "A better"
        assert bool(ge["enough"]) == (within[task]["verdict"] != worse_verdict)
    assert np.isfinite([within[t]["p_adjusted"] for t in TASKS]).all()
