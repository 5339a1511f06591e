"""The dashboard: every page through streamlit's AppTest on stores written by real bench runs
(the scripted fake backend through the real runner; one slow test with SmolLM2), checked against
the store itself and independent recomputations; and the data layer's numbers on hand-made frames.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

pytest.importorskip("streamlit", reason="needs the dashboard extra: pip install 'bench[dashboard]'")
pytest.importorskip("plotly", reason="needs the dashboard extra: pip install 'bench[dashboard]'")

from streamlit.testing.v1 import AppTest

from bench import dashboard_data as dd
from bench import store
from bench.config import parse_suite
from bench.runner import NullDisplay, execute, plan_run

APP = Path(__file__).resolve().parents[2] / "bench" / "dashboard" / "app.py"  # what `bench dashboard` serves
RUN1, RUN2 = "20260105T010000Z-aaa001", "20260106T010000Z-aaa002"
N_ITEMS = 40


# ---------------------------------------------------------------------- a store from real runs


def _suite(data: Path, small_accuracy: float) -> dict[str, Any]:
    fields = {"id": "id", "question": "q", "choices": "opts", "answer": "label"}
    return {
        "name": "nightly",
        "defaults": {"limit": None, "seed": 3, "batch_size": 8},
        "hardware": {"name": "test-box", "usd_per_hour": 3.6},
        "models": [
            {"name": "big", "backend": "fake", "accuracy": 0.95},
            {"name": "mid", "backend": "fake", "accuracy": 0.6, "fail_items": ["q05-gold:2"]},
            {"name": "small", "backend": "fake", "accuracy": small_accuracy},
        ],
        "tasks": [
            {"name": "custom", "kind": "mcq", "dataset": {"path": str(data)}, "fields": fields},
            {"name": "custom_b", "kind": "mcq", "dataset": {"path": str(data)}, "fields": fields},
        ],
    }


@pytest.fixture(scope="module")
def fake_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two nights of the same suite: three fake models on two tasks; `small` improves a lot."""
    d = tmp_path_factory.mktemp("dash")
    data = d / "items.jsonl"
    rows = [
        {
            "id": f"q{i:02d}-gold:{i % 3}",
            "q": f"What is item {i}?",
            "opts": ["a", "bb", "ccc"],
            "label": i % 3,
        }
        for i in range(N_ITEMS)
    ]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    root = d / "results"
    with pytest.MonkeyPatch.context() as mp:
        for run_id, acc in ((RUN1, 0.1), (RUN2, 0.95)):
            mp.setattr(store, "new_run_id", lambda now=None, rid=run_id: rid)
            execute(plan_run(parse_suite(_suite(data, acc)), root), NullDisplay(), executor="inline")
    return root


@pytest.fixture
def app(fake_store: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(fake_store))
    return AppTest.from_file(str(APP), default_timeout=60)


def _runs(root: Path) -> pd.DataFrame:
    return store.runs_dataset(root).to_table().to_pandas()


def _samples(root: Path) -> pd.DataFrame:
    return store.samples_dataset(root).to_table().to_pandas()


def _page(at: AppTest, page: str) -> AppTest:
    at.run()
    at.radio(key="page").set_value(page).run()
    assert not at.exception, at.exception
    return at


# ---------------------------------------------------------------------- leaderboard and Pareto


def test_leaderboard_equals_the_runs_table_with_ci_ties(app: AppTest, fake_store: Path) -> None:
    app.run()
    assert not app.exception, app.exception
    assert any("Leaderboard" in h.value for h in app.header)
    board = app.dataframe[0].value
    r = _runs(fake_store)
    newest = r[(r["run_id"] == RUN2) & r["primary"]]
    assert sorted(board["model"]) == ["big", "mid", "small"]
    for _, row in newest.iterrows():
        b = board[board["model"] == row["model"]].iloc[0]
        assert b[row["task"]] == pytest.approx(row["value"])
        assert b[f"{row['task']} lo"] == pytest.approx(row["ci_low"])
        assert b[f"{row['task']} hi"] == pytest.approx(row["ci_high"])
        assert b["params"] == row["model_params"] and b["backend"] == "fake" and b["hardware"] == "test-box"
    for model, g in newest.groupby("model"):
        b = board[board["model"] == model].iloc[0]
        assert b["avg"] == pytest.approx(g["value"].mean())
        assert b["peak_rss_mb"] == pytest.approx(g["peak_rss_mb"].max())
        assert b["usd_per_1k_items"] == pytest.approx((g["usd_per_1k_items"] * g["n"]).sum() / g["n"].sum())
        assert b["errors"] == g["n_errors"].sum()
    # rank = 1 + models whose average CI lies entirely above; overlapping CIs tie
    ranks = board.set_index("model")["rank"]
    assert ranks["big"] == ranks["small"] == 1 and ranks["mid"] > 1  # big and small tie
    for _, b in board.iterrows():
        above = ((board["avg lo"] > b["avg hi"]) & (board["model"] != b["model"])).sum()
        assert b["rank"] == 1 + above
    # the Pareto plots: cost, latency, memory, parameters
    charts = app.get("plotly_chart")
    assert len(charts) == 4
    fig = json.loads(charts[0].proto.spec)
    assert fig["data"][0]["name"] == "Pareto front" and fig["data"][0]["mode"] == "lines"
    points = [t for t in fig["data"] if t.get("error_y")]
    assert sorted(x for t in points for x in t["text"]) == ["big", "mid", "small"]


def test_leaderboard_filters_change_the_table(app: AppTest, fake_store: Path) -> None:
    app.run()
    full = app.dataframe[0].value
    assert {"custom", "custom_b"} <= set(full.columns)

    app.multiselect(key="lb_tasks").set_value(["custom"]).run()
    one = app.dataframe[0].value
    assert "custom_b" not in one.columns
    r = _runs(fake_store)
    acc = r[(r["run_id"] == RUN2) & r["primary"] & (r["task"] == "custom")].set_index("model")["value"]
    assert one.set_index("model")["avg"].to_dict() == pytest.approx(acc.to_dict())

    app.multiselect(key="lb_tasks").set_value([])
    app.selectbox(key="lb_run").set_value(RUN1).run()
    old = app.dataframe[0].value.set_index("model")
    first = r[(r["run_id"] == RUN1) & r["primary"] & (r["task"] == "custom")].set_index("model")["value"]
    assert old.loc["small", "custom"] == pytest.approx(first["small"])
    assert old.loc["small", "custom"] != pytest.approx(full.set_index("model").loc["small", "custom"])

    # only the first night's dates: the newest result per model is then run 1's
    app.selectbox(key="lb_run").set_value("__newest__")
    app.date_input(key="lb_dates").set_value((date(2026, 1, 5), date(2026, 1, 5))).run()
    assert set(app.dataframe[0].value["run_id"]) == {RUN1}

    # fake models have 1M parameters: with the threshold below that they are all LLMs
    app.number_input(key="lb_threshold").set_value(1e5)
    app.multiselect(key="lb_size").set_value(["SLM"]).run()
    assert not app.exception
    assert not app.dataframe and "No results match" in app.warning[0].value
    app.multiselect(key="lb_size").set_value(["LLM"]).run()
    assert len(app.dataframe[0].value) == 3

    app.multiselect(key="lb_size").set_value([])
    app.multiselect(key="lb_backend").set_value(["fake"])
    app.multiselect(key="lb_hw").set_value(["test-box"]).run()
    assert len(app.dataframe[0].value) == 3


# ---------------------------------------------------------------------- is a small model enough?


def _independent_cascade(s: pd.DataFrame, slm: str, llm: str, t: float) -> tuple[float, float, int]:
    a = s[(s.model == slm) & s.error.isna()].set_index("item_id")
    b = s[(s.model == llm) & s.error.isna()].set_index("item_id")
    ids = a.index.intersection(b.index)
    use_slm = a.loc[ids, "confidence"] >= t
    acc = np.where(use_slm, a.loc[ids, "score"], b.loc[ids, "score"]).mean()
    return float(acc), float(1 - use_slm.mean()), len(ids)


def test_small_model_page_and_cascade_match_the_samples(app: AppTest, fake_store: Path) -> None:
    at = _page(app, "Is a small model enough?")
    table = at.dataframe[0].value
    assert list(table["task"]) == ["custom", "custom_b"]
    assert set(table["best"]) == {"big"}
    # every verdict is a paired McNemar test against the best on the items both scored
    s = _samples(fake_store)
    s2 = s[s.run_id == RUN2]
    r = _runs(fake_store)
    for k, task in enumerate(("custom", "custom_b"), start=1):
        ge = at.dataframe[k].value.set_index("model")
        assert ge["best"].sum() == 1 and ge.loc["big", "best"]
        t = s2[(s2.task == task) & s2.error.isna()]
        big = t[t.model == "big"].set_index("item_id")["score"]
        for m in ("mid", "small"):
            other = t[t.model == m].set_index("item_id")["score"]
            ids = big.index.intersection(other.index)
            n10 = int(((other[ids] == 1) & (big[ids] == 0)).sum())
            n01 = int(((other[ids] == 0) & (big[ids] == 1)).sum())
            p = binomtest(n01, n01 + n10, 0.5).pvalue if n01 + n10 else 1.0
            assert ge.loc[m, "p_value"] == pytest.approx(p) and ge.loc[m, "n_shared"] == len(ids)
            assert ge.loc[m, "enough"] == (p >= 0.05 or other[ids].mean() >= big[ids].mean())
        assert not ge.loc["mid", "enough"]  # 0.6 vs 0.95 on 39 items
        enough = ge[ge["enough"]].index
        prim = r[(r.run_id == RUN2) & r.primary & (r.task == task)].set_index("model")
        cheapest = prim.loc[enough, "usd_per_1k_items"].idxmin()
        row = table[table["task"] == task].iloc[0]
        assert row["cheapest enough"] == cheapest and row["smallest enough"] in set(enough)

    # cascade: small answers, big takes the rest; numbers recomputed from the stored rows
    at.selectbox(key="cascade_task").set_value("custom")
    at.selectbox(key="cascade_slm").set_value("mid")
    at.selectbox(key="cascade_llm").set_value("big").run()
    assert not at.exception
    curve = at.dataframe[-1].value
    assert len(curve) == 21 and curve["threshold"].iloc[-1] == 1.0
    r = _runs(fake_store)
    prim = r[(r.run_id == RUN2) & r.primary & (r.task == "custom")].set_index("model")
    c_mid = prim.loc["mid", "cost_usd"] / prim.loc["mid", "n"]
    c_big = prim.loc["big", "cost_usd"] / prim.loc["big", "n"]
    t_items = s2[s2.task == "custom"]
    for _, row in curve.iterrows():
        acc, defer, n = _independent_cascade(t_items, "mid", "big", row["threshold"])
        assert row["accuracy"] == pytest.approx(acc)
        assert row["deferral_rate"] == pytest.approx(defer)
        assert row["n"] == n == N_ITEMS - 1  # mid failed one item
        assert row["cost_per_item"] == pytest.approx(c_mid + defer * c_big)
    assert curve["deferral_rate"].is_monotonic_increasing
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = [t["name"] for t in fig["data"]]
    assert names == ["cascade", "each model alone"]
    assert fig["data"][1]["y"] == pytest.approx(
        [
            _independent_cascade(t_items, "mid", "big", -1)[0],
            _independent_cascade(t_items, "mid", "big", 2)[0],
        ]
    )


# ---------------------------------------------------------------------- drill-down


@pytest.fixture
def captured_downloads(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """What st.download_button hands to the media store (AppTest keeps it in memory)."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    seen: list[bytes] = []
    orig = MemoryMediaFileStorage.load_and_get_id

    def spy(self: Any, path_or_data: Any, mimetype: str, kind: Any, filename: str | None = None) -> str:
        if isinstance(path_or_data, bytes) and mimetype == "text/csv":
            seen.append(path_or_data)
        return orig(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)
    return seen


def test_drilldown_pair_filter_and_csv_export(
    app: AppTest, fake_store: Path, captured_downloads: list[bytes]
) -> None:
    at = _page(app, "Drill-down")
    at.selectbox(key="dd_run").set_value(RUN1)
    at.selectbox(key="dd_task").set_value("custom").run()
    at.selectbox(key="dd_a").set_value("small")
    at.selectbox(key="dd_b").set_value("big")
    at.radio(key="dd_mode").set_value("a_wrong_b_right").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    s = _samples(fake_store)
    s = s[(s.run_id == RUN1) & (s.task == "custom")]
    a = s[s.model == "small"].set_index("item_id")
    b = s[s.model == "big"].set_index("item_id")
    ids = a.index.intersection(b.index)
    want = sorted(i for i in ids if not a.loc[i, "correct"] and b.loc[i, "correct"])
    assert sorted(table["item_id"]) == want and len(want) > 10
    assert (table["small correct"] == False).all() and (table["big correct"] == True).all()  # noqa: E712
    assert table["prompt"].str.startswith("Question: What is item").all()
    for m in ("small", "mid", "big"):
        assert {f"{m} output", f"{m} extracted", f"{m} latency_s", f"{m} in_tok", f"{m} out_tok"} <= set(
            table
        )
    row = table.iloc[0]
    assert row["big output"] == row["reference"] == b.loc[row["item_id"], "reference"]
    # the item's detail: each model's facts in words, nothing the task does not have (no "nan")
    facts = {
        m.value.split("**")[1]: m.value for m in at.markdown if m.value.startswith("**") and " — " in m.value
    }
    assert "correct: no" in facts["small"] and "correct: yes" in facts["big"], facts
    assert all("nan" not in f and "extracted" not in f for f in facts.values()), facts
    lat = float(a.loc[row["item_id"], "latency_s"])
    assert f"latency {lat:.3g} s" in facts["small"]

    exported = pd.read_csv(pd.io.common.BytesIO(captured_downloads[-1]))
    assert sorted(exported["item_id"]) == want
    assert list(exported.columns) == list(table.columns)

    at.radio(key="dd_mode").set_value("a_right_b_wrong").run()
    back = at.dataframe[0].value
    rev = sorted(i for i in ids if a.loc[i, "correct"] and not b.loc[i, "correct"])
    assert sorted(back["item_id"]) == rev
    # an item `mid` failed is in no pair filter that involves mid
    at.selectbox(key="dd_a").set_value("mid")
    at.radio(key="dd_mode").set_value("disagree").run()
    assert "q05-gold:2" not in set(at.dataframe[0].value["item_id"])


# ---------------------------------------------------------------------- history


def test_history_marks_the_significant_change(app: AppTest, fake_store: Path) -> None:
    at = _page(app, "History")
    at.selectbox(key="hi_model").set_value("small")
    at.selectbox(key="hi_task").set_value("custom").run()
    assert not at.exception, at.exception
    hist = at.dataframe[0].value  # newest first
    assert list(hist["run_id"]) == [RUN2, RUN1]
    assert bool(hist.iloc[0]["changed"]) and hist.iloc[0]["diff"] > 0.5 and hist.iloc[0]["p_value"] < 1e-4
    assert not bool(hist.iloc[1]["changed"])
    r = _runs(fake_store).query("model == 'small' and task == 'custom' and primary").set_index("run_id")
    assert hist.set_index("run_id")["value"].to_dict() == pytest.approx(r["value"].to_dict())
    assert (hist["git_sha"] == r["git_sha"].iloc[0]).all() and (hist["bench_version"] == "0.1.0").all()
    assert hist["created_at"].notna().all()
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    marks = [t for t in fig["data"] if str(t.get("name", "")).startswith("significant change")]
    assert len(marks[0]["x"]) == 1

    at.selectbox(key="hi_model").set_value("big").run()  # deterministic fake model: no change
    assert not at.dataframe[0].value["changed"].any()


def test_missing_and_empty_stores_say_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path / "nope"))
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception and "does not exist" in at.error[0].value
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path))
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception and "No runs" in at.info[0].value


def test_a_new_run_shows_up_without_restarting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache key follows the store: a run written after the first render is on the next one."""
    data = tmp_path / "items.jsonl"
    data.write_text(json.dumps({"id": "q0-gold:0", "q": "?", "opts": ["a", "b"], "label": 0}) + "\n")
    root = tmp_path / "results"
    suite = _suite(data, 0.5)
    suite["models"] = suite["models"][:1]
    execute(plan_run(parse_suite(suite), root), NullDisplay(), executor="inline")
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(root))
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert list(at.dataframe[0].value["model"]) == ["big"]
    suite["models"] = [{"name": "newcomer", "backend": "fake", "accuracy": 1.0}]
    execute(plan_run(parse_suite(suite), root), NullDisplay(), executor="inline")
    at.run()
    assert sorted(at.dataframe[0].value["model"]) == ["big", "newcomer"]


def test_switching_suite_restarts_the_choices_that_depend_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A selection kept from another suite (a run, a model) must not leave a page empty or stale."""
    data = tmp_path / "items.jsonl"
    rows = [{"id": f"q{i}-gold:{i % 2}", "q": "?", "opts": ["a", "b"], "label": i % 2} for i in range(12)]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    root = tmp_path / "results"
    fields = {"id": "id", "question": "q", "choices": "opts", "answer": "label"}
    for name, rid, models in (("alpha", RUN1, ["m1", "m2"]), ("beta", RUN2, ["m3"])):
        monkeypatch.setattr(store, "new_run_id", lambda now=None, rid=rid: rid)
        suite = {
            "name": name,
            "hardware": {"name": "box", "usd_per_hour": 1.0},
            "models": [{"name": m, "backend": "fake", "accuracy": 0.5} for m in models],
            "tasks": [{"name": f"t-{name}", "kind": "mcq", "dataset": {"path": str(data)}, "fields": fields}],
        }
        execute(plan_run(parse_suite(suite), root), NullDisplay(), executor="inline")
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(root))
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert list(at.dataframe[0].value["model"]) == ["m3"]  # the newest run's suite
    at.selectbox(key="lb_suite").set_value("alpha").run()
    assert sorted(at.dataframe[0].value["model"]) == ["m1", "m2"]
    at.radio(key="page").set_value("Drill-down").run()
    at.selectbox(key="dd_suite").set_value("beta").run()
    at.radio(key="dd_mode").set_value("all").run()
    assert len(at.dataframe[0].value) == 12 and "m3 output" in at.dataframe[0].value
    at.selectbox(key="dd_suite").set_value("alpha").run()
    assert {"m1 output", "m2 output"} <= set(at.dataframe[0].value) and not at.info
    at.radio(key="page").set_value("Is a small model enough?").run()
    at.selectbox(key="se_suite").set_value("beta").run()
    assert "no run with two or more models" in at.info[0].value
    at.selectbox(key="se_suite").set_value("alpha").run()
    assert not at.exception and list(at.dataframe[0].value["task"]) == ["t-alpha"]
    assert len(at.dataframe[-1].value) == 21  # the cascade curve


# ---------------------------------------------------------------------- launching


def test_launch_runs_streamlit_on_the_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    assert dd.launch(str(tmp_path), "127.0.0.1", 8765, True) == 0
    cmd = calls[0]
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"] and Path(cmd[4]) == APP
    i = cmd.index("--")
    assert cmd[i + 1 :] == ["--results", str(tmp_path.resolve())]
    opts = dict(zip(cmd[5:i:2], cmd[6:i:2], strict=True))
    assert opts["--server.address"] == "127.0.0.1" and opts["--server.port"] == "8765"
    assert opts["--server.headless"] == "true"


# ---------------------------------------------------------------------- data layer on hand-made frames


def test_tie_ranks_share_ranks_inside_the_noise() -> None:
    # a clearly best; b and c overlap each other (tie); d overlaps c but not b or a
    mean = [0.9, 0.6, 0.55, 0.4, math.nan]
    lo = [0.85, 0.5, 0.45, 0.3, math.nan]
    hi = [0.95, 0.7, 0.65, 0.48, math.nan]
    assert tie_list(dd.tie_ranks(mean, lo, hi)) == [1, 2, 2, 3, None]
    # lower is better (perplexity): the smallest wins
    assert tie_list(
        dd.tie_ranks([1.0, 2.0, 2.1], [0.9, 1.8, 1.9], [1.1, 2.2, 2.3], higher_is_better=False)
    ) == [
        1,
        2,
        2,
    ]


def tie_list(s: pd.Series) -> list[int | None]:
    return [None if pd.isna(v) else int(v) for v in s]


def test_cascade_curve_by_hand() -> None:
    slm = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d", "e"],
            "score": [1.0, 0.0, 1.0, 0.0, 1.0],
            "confidence": [0.9, 0.4, 0.6, None, 0.95],
        }
    )
    llm = pd.DataFrame({"item_id": ["a", "b", "c", "d", "x"], "score": [1.0, 1.0, 0.0, 1.0, 1.0]})
    c = dd.cascade_curve(slm, llm, 0.001, 0.01, [0.0, 0.5, 0.7, 1.0])
    # shared items a-d; 'e' and 'x' are only on one side; d has no confidence, so it always defers
    assert list(c["n"]) == [4] * 4
    assert list(c["accuracy"]) == pytest.approx(
        [(1 + 0 + 1 + 1) / 4, (1 + 1 + 1 + 1) / 4, (1 + 1 + 0 + 1) / 4, 3 / 4]
    )
    assert list(c["deferral_rate"]) == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert list(c["cost_per_item"]) == pytest.approx([0.001 + f * 0.01 for f in (0.25, 0.5, 0.75, 1.0)])
    assert list(c["usd_per_1k_items"]) == pytest.approx(list(c["cost_per_item"] * 1000))
    with pytest.raises(ValueError, match="duplicate"):
        dd.cascade_curve(pd.concat([slm, slm]), llm, 0, 0, [0.5])


def test_pareto_points_mark_the_front() -> None:
    board = pd.DataFrame(
        {
            "label": ["cheap", "mid", "dominated", "best", "no-cost"],
            "model": ["cheap", "mid", "dominated", "best", "no-cost"],
            "avg": [0.5, 0.7, 0.6, 0.9, 0.99],
            "avg lo": [0.4, 0.6, 0.5, 0.8, 0.9],
            "avg hi": [0.6, 0.8, 0.7, 1.0, 1.0],
            "usd_per_1k_items": [0.1, 1.0, 2.0, 5.0, math.nan],
        }
    )
    pts = dd.pareto_points(board, "usd_per_1k_items")
    assert list(pts["label"]) == ["cheap", "mid", "dominated", "best"]  # sorted by cost, NaN dropped
    assert list(pts["on_front"]) == [True, True, False, True]


def test_history_changes_mark_significant_paired_differences() -> None:
    ids = [f"i{k}" for k in range(30)]
    scores = pd.concat(
        [
            pd.DataFrame({"run_id": "r1", "item_id": ids, "score": [1.0] * 15 + [0.0] * 15}),
            pd.DataFrame({"run_id": "r2", "item_id": ids, "score": [1.0] * 15 + [0.0] * 15}),  # same
            pd.DataFrame({"run_id": "r3", "item_id": ids, "score": [1.0] * 29 + [0.0]}),  # 14 fixed
            pd.DataFrame({"run_id": "r4", "item_id": ["other"], "score": [1.0]}),  # nothing shared
        ]
    )
    hist = pd.DataFrame({"run_id": ["r1", "r2", "r3", "r4"], "value": [0.5, 0.5, 29 / 30, 1.0]})
    out = dd.history_changes(hist, scores)
    assert list(out["changed"]) == [False, False, True, False]
    assert out.loc[2, "p_value"] == pytest.approx(binomtest(0, 14, 0.5).pvalue)
    assert out.loc[2, "diff"] == pytest.approx(14 / 30)
    assert pd.isna(out.loc[0, "prev_run_id"]) and list(out["prev_run_id"][1:]) == ["r1", "r2", "r3"]
    assert out.loc[3, "n_shared"] == 0 and math.isnan(out.loc[3, "p_value"])


def test_good_enough_uses_paired_tests_against_the_best() -> None:
    ids = [f"i{k}" for k in range(40)]
    best = [1.0] * 36 + [0.0] * 4
    close = [1.0] * 34 + [0.0] * 6  # 2 discordant items: not significantly worse
    poor = [1.0] * 10 + [0.0] * 30
    scores = pd.concat(
        pd.DataFrame({"model": m, "item_id": ids, "score": s})
        for m, s in (("L", best), ("S", close), ("P", poor))
    )
    primary = pd.DataFrame(
        {
            "model": ["L", "S", "P"],
            "task": "t",
            "value": [0.9, 0.85, 0.25],
            "higher_is_better": True,
            "model_params": [70e9, 1e8, 5e7],
            "usd_per_1k_items": [1.0, 0.01, 0.001],
        }
    )
    ge = dd.good_enough(primary, scores).set_index("model")
    assert ge.loc["L", "best"] and ge.loc["S", "enough"] and not ge.loc["P", "enough"]
    assert ge.loc["S", "p_value"] == pytest.approx(binomtest(0, 2, 0.5).pvalue)
    t = dd.small_model_table(primary, scores.assign(task="t"))
    assert t.iloc[0]["smallest enough"] == "S" and t.iloc[0]["cheapest enough"] == "S"


def test_small_model_verdicts_use_p_values_adjusted_over_every_task() -> None:
    """On t1 S loses 6 discordant items to L (McNemar p = 2/2^6 = 0.03125 alone); t2 is a tie. The
    page tests both tasks at once: Benjamini-Hochberg gives t1 0.03125 * 2 / 1 = 0.0625, so S is
    enough once the family is counted, though not on t1 alone."""
    ids = [f"i{k}" for k in range(20)]
    rows = []
    for task, small in (("t1", [0.0] * 6 + [1.0] * 14), ("t2", [1.0] * 20)):
        rows += [{"task": task, "model": "L", "item_id": i, "score": 1.0} for i in ids]
        rows += [
            {"task": task, "model": "S", "item_id": i, "score": s} for i, s in zip(ids, small, strict=True)
        ]
    scores = pd.DataFrame(rows)
    means = scores.groupby(["task", "model"])["score"].mean()
    primary = pd.DataFrame(
        [
            {"task": t, "model": m, "value": means[(t, m)], "higher_is_better": True, "model_params": p,
             "usd_per_1k_items": c}
            for t in ("t1", "t2")
            for m, p, c in (("L", 7e10, 1.0), ("S", 1e8, 0.01))
        ]
    )  # fmt: skip
    alone = dd.good_enough(primary[primary.task == "t1"], scores[scores.task == "t1"]).set_index("model")
    assert alone.loc["S", "p_value"] == pytest.approx(binomtest(0, 6, 0.5).pvalue) == pytest.approx(0.03125)
    assert alone.loc["S", "p_adjusted"] == pytest.approx(0.03125) and not alone.loc["S", "enough"]
    every = dd.good_enough_all(primary, scores).set_index(["task", "model"])
    assert every.loc[("t1", "S"), "p_value"] == pytest.approx(0.03125)
    assert every.loc[("t1", "S"), "p_adjusted"] == pytest.approx(0.0625) and every.loc[("t1", "S"), "enough"]
    assert every.loc[("t2", "S"), "p_adjusted"] == pytest.approx(1.0)
    table = dd.small_model_table(primary, scores).set_index("task")
    assert table.loc["t1", "smallest enough"] == "S" and table.loc["t1", "smallest p adj"] == pytest.approx(
        0.0625
    )


def test_pair_filter_and_errors() -> None:
    s = pd.DataFrame(
        {
            "model": ["A"] * 4 + ["B"] * 4,
            "item_id": ["1", "2", "3", "4"] * 2,
            "correct": [False, True, False, None, True, False, False, True],
            "score": [0.0, 1.0, 0.0, None, 1.0, 0.0, 0.0, 1.0],
            "error": [None, None, None, "boom", None, None, None, None],
        }
    )
    assert dd.pair_filter(s, "A", "B", "a_wrong_b_right") == ["1"]
    assert dd.pair_filter(s, "A", "B", "a_right_b_wrong") == ["2"]
    assert dd.pair_filter(s, "A", "B", "disagree") == ["1", "2"]
    assert dd.pair_filter(s, "A", "B", "all") == ["1", "2", "3", "4"]


def test_leaderboard_average_and_newest_result_per_task() -> None:
    base = {
        "suite": "s",
        "hardware": "h",
        "backend": "fake",
        "status": "ok",
        "error": None,
        "metric": "acc",
        "higher_is_better": True,
        "n": 100,
        "n_errors": 0,
        "model_params": 1e8,
        "quant": "q",
        "latency_p50": 1.0,
        "latency_p95": 2.0,
        "tokens_per_s": 10.0,
        "peak_rss_mb": 100.0,
        "cost_usd": 0.1,
        "usd_per_1k_items": 1.0,
    }
    rows = [
        {**base, "run_id": "20260101T000000Z-a", "model": "m", "task": "t1", "value": 0.2, "stderr": 0.04},
        {**base, "run_id": "20260102T000000Z-b", "model": "m", "task": "t1", "value": 0.6, "stderr": 0.03},
        {**base, "run_id": "20260101T000000Z-a", "model": "m", "task": "t2", "value": 0.8, "stderr": 0.04},
        {**base, "run_id": "20260101T000000Z-a", "model": "m", "task": "ppl", "value": 3.0, "stderr": 0.1}
        | {"higher_is_better": False},
    ]
    runs = pd.DataFrame(rows).assign(ci_low=lambda d: d.value - 0.1, ci_high=lambda d: d.value + 0.1)
    runs["run_time"] = pd.to_datetime(runs["run_id"].str.slice(0, 16), format="%Y%m%dT%H%M%SZ", utc=True)
    sel = dd.select_results(runs, dd.Filters(suite="s"))
    board = dd.leaderboard_table(sel)
    row = board.iloc[0]
    assert row["t1"] == 0.6 and row["t2"] == 0.8 and row["ppl"] == 3.0  # newest t1 wins
    assert row["avg"] == pytest.approx(0.7)  # perplexity is not averaged in
    se = math.sqrt(0.03**2 + 0.04**2) / 2
    assert row["avg lo"] == pytest.approx(0.7 - dd.Z95 * se) and row["runs"] == 2


def test_runs_index_rereads_only_changed_run_folders(fake_store: Path, tmp_path: Path) -> None:
    index = tmp_path / "index.parquet"
    first = dd.load_primary_runs(fake_store, index=index)
    assert index.is_file() and set(first["run_id"]) == {RUN1, RUN2}
    plain = dd.load_primary_runs(fake_store, index=False)
    key = ["run_id", "model", "task"]
    pd.testing.assert_frame_equal(
        first.sort_values(key).reset_index(drop=True), plain.sort_values(key).reset_index(drop=True)
    )
    pytest.importorskip("duckdb")
    with pytest.MonkeyPatch.context() as mp:  # the bulk path for many files: duckdb
        mp.setattr(dd.reading, "DUCKDB_MIN_FILES", 1)
        bulk = dd.load_primary_runs(fake_store, index=False)
    pd.testing.assert_frame_equal(
        bulk.sort_values(key).reset_index(drop=True), plain.sort_values(key).reset_index(drop=True)
    )
    # a stale index entry is replaced once its folder changes
    again = dd.load_primary_runs(fake_store, index=index)
    assert len(again) == len(first) == 2 * 3 * 2
    d = fake_store / first.loc[first["run_id"] == RUN1, "_dir"].iloc[0]
    os.utime(d, ns=(d.stat().st_atime_ns, d.stat().st_mtime_ns + 1_000_000_000))
    assert len(dd.load_primary_runs(fake_store, index=index)) == len(first)


# ---------------------------------------------------------------------- a real model (slow)


@pytest.fixture(scope="module")
def real_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    pytest.importorskip("llama_cpp", reason="needs the cpu extra: pip install 'bench[cpu]'")
    d = tmp_path_factory.mktemp("real")
    suite = d / "tiny.yaml"
    suite.write_text(
        "name: tiny\ndefaults: {limit: 4, seed: 5}\nmodels:\n  - {name: smollm2-135m, n_ctx: 2048}\n"
        "tasks:\n  - {name: arc_easy, kind: mcq, dataset: arc_easy}\n"
    )
    out = d / "results"
    r = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", str(suite), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    yield out


@pytest.mark.slow
def test_every_page_on_a_real_smollm2_run(real_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(real_store))
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception, at.exception
    board = at.dataframe[0].value
    r = _runs(real_store).query("primary")
    assert list(board["model"]) == ["smollm2-135m"]
    assert board.iloc[0]["arc_easy"] == pytest.approx(r.iloc[0]["value"])
    assert board.iloc[0]["params"] == r.iloc[0]["model_params"] > 1e8
    assert board.iloc[0]["quant"] == r.iloc[0]["quant"] and board.iloc[0]["backend"] == "llamacpp"
    assert len(at.get("plotly_chart")) == 4
    for page in ("Is a small model enough?", "Drill-down", "History"):
        at.radio(key="page").set_value(page).run()
        assert not at.exception, (page, at.exception)
    at.radio(key="page").set_value("Drill-down").run()
    at.radio(key="dd_mode").set_value("all").run()
    table = at.dataframe[0].value
    s = _samples(real_store)
    assert sorted(table["item_id"]) == sorted(s["item_id"]) and len(table) == 4
    assert list(table["smollm2-135m correct"]) == list(
        s.set_index("item_id").loc[table["item_id"], "correct"]
    )
