"""The Load page through streamlit's AppTest on a real sweep of two models (`bench load`'s own
run_sweep against two zero servers on 127.0.0.1, see tests/load_sweeps.py), checked against the
stored per-level Parquet and against the exit and crossover worked out here from those rows; and
the data layer's level order, SLO exits and crossovers on hand-made rows."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("streamlit", reason="needs the dashboard extra: pip install 'bench[dashboard]'")
pytest.importorskip("plotly", reason="needs the dashboard extra: pip install 'bench[dashboard]'")

from streamlit.testing.v1 import AppTest

from bench.dashboard.load import TABLE
from bench.dashboard_data import load as dl
from bench.fmt import format_params
from bench.load import records
from tests.load_sweeps import SLO, qa_items, two_model_sweep

APP = Path(__file__).resolve().parents[2] / "bench" / "dashboard" / "app.py"
ORDER = ["sync", "c2", "c8"]  # the sweep's levels by offered load


@pytest.fixture(scope="module")
def sweep_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("load")
    root = d / "results"
    result = two_model_sweep(root, qa_items(d / "items.jsonl"))
    assert not result.errors, result.errors
    return root


def _stored(root: Path) -> pd.DataFrame:
    return records.read_levels(root)


def _load_page(root: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(root))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.radio(key="page").set_value("Load").run()
    assert not at.exception, at.exception
    return at


def _text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def _arr(v: Any) -> list[float]:
    """A plotly JSON array: a list, or a typed array ({"dtype": "f8", "bdata": base64})."""
    if isinstance(v, dict):
        return list(np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).astype(float))
    return [float(x) for x in v]


def _figure(at: AppTest, key_part: str) -> dict[str, Any]:
    charts = [c for c in at.get("plotly_chart") if key_part in str(c.proto.id)]
    assert len(charts) == 1, [c.proto.id for c in at.get("plotly_chart")]
    return dict(json.loads(charts[0].proto.spec))


def test_the_table_holds_the_stored_level_rows(sweep_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _load_page(sweep_store, monkeypatch)
    assert [h.value for h in at.header] == ["Load"]
    (frame,) = at.dataframe
    shown = frame.value
    stored = _stored(sweep_store)
    assert len(stored) == 6 and set(stored["model"]) == {"small", "large"}
    assert list(shown.columns) == list(TABLE)
    for _, row in stored.iterrows():
        got = shown[(shown["model"] == row["model"]) & (shown["level"] == row["level"])]
        assert len(got) == 1, (row["model"], row["level"])
        for col in TABLE:
            a, b = got.iloc[0][col], row[col]
            if isinstance(b, float) and math.isnan(b):
                assert a is None or (isinstance(a, float) and math.isnan(a)), col
            else:
                assert a == b, (row["model"], row["level"], col, a, b)
    # the answers were scored: small answers "blue", large "red"; 16 requests cycle over 12 items,
    # every third of them blue
    blue = sum((k % 12) % 3 == 0 for k in range(16)) / 16
    for model, want in (("small", blue), ("large", 1 - blue)):
        assert list(stored.loc[stored["model"] == model, "accuracy"]) == pytest.approx([want] * 3)
    cost = stored["usd_per_1k_requests"]
    assert (cost > 0).all() and (stored["usd_per_correct"] > 0).all()


def test_slo_exit_and_crossover_as_the_stored_rows_say(
    sweep_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = _stored(sweep_store).set_index(["model", "level"])
    # worked out here from the Parquet: the first level (by offered load) that misses the SLO
    exits = {
        m: next((lv for lv in ORDER if not stored.loc[(m, lv), "slo_met"]), None) for m in ("small", "large")
    }
    # the fixture is built so that small's one slot queues 8 requests at c8 (TTFT >= 0.35 s)
    assert exits["small"] is not None
    g = {m: [stored.loc[(m, lv), "goodput_per_s"] for lv in ORDER] for m in ("small", "large")}
    leader = ["small" if s > b else "large" for s, b in zip(g["small"], g["large"], strict=True)]
    flips = [(ORDER[k - 1], ORDER[k]) for k in range(1, 3) if leader[k] != leader[k - 1]]
    assert flips, g  # at c8 large serves 8 at once while small's queue misses the SLO: they cross

    at = _load_page(sweep_store, monkeypatch)
    text = _text(at)
    assert f"**small** leaves its SLO at {exits['small']}: " in text or (
        exits["small"] == "sync" and "**small** misses its SLO already" in text
    ), text
    if exits["large"] is None:
        assert "**large** meets its SLO at every level" in text, text
    for below, at_level in flips:
        assert (
            f"up to {below} (" in text and f"from {at_level} on, **{leader[ORDER.index(at_level)]}**" in text
        )
    assert f"({format_params(135e6)}, SLM)" in text and f"({format_params(70e9)}, LLM)" in text, text

    fig = _figure(at, "load_goodput")
    cross = next(t for t in fig["data"] if t.get("name") == "leaves its SLO")
    row = stored.loc[("small", exits["small"])]
    assert _arr(cross["x"])[0] == pytest.approx(row["achieved_concurrency"])
    assert _arr(cross["y"])[0] == pytest.approx(row["goodput_per_s"])
    diamond = next(t for t in fig["data"] if t.get("name") == "ranking by goodput flips")
    assert len(_arr(diamond["x"])) == len(flips)
    lat = _figure(at, "load_latency")
    lines = sorted(s["y0"] for s in lat["layout"]["shapes"])
    assert lines == pytest.approx(sorted([SLO["ttft_s"] * 1000, SLO["e2e_s"]]))  # ms and s panels
    ttft = next(t for t in lat["data"] if t["name"] == "small p99")
    small = stored.loc["small"].sort_values("achieved_concurrency")
    assert _arr(ttft["y"]) == pytest.approx(list(small["ttft_p99"] * 1000))
    acc = _figure(at, "load_accuracy")
    small_acc = next(t for t in acc["data"] if t["name"] == "small")
    assert _arr(small_acc["y"]) == pytest.approx(list(small["accuracy"]))
    assert _arr(small_acc["error_y"]["array"]) == pytest.approx(
        list(small["accuracy_high"] - small["accuracy"])
    )


def test_the_load_axis_switches_to_the_request_rate(
    sweep_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _load_page(sweep_store, monkeypatch)
    at.radio(key="ld_axis").set_value("requests_per_s").run()
    assert not at.exception, at.exception
    fig = _figure(at, "load_goodput")
    stored = _stored(sweep_store)
    large = stored[stored["model"] == "large"].sort_values("requests_per_s")
    trace = next(t for t in fig["data"] if t["name"] == "large goodput")
    assert _arr(trace["x"]) == pytest.approx(list(large["requests_per_s"]))
    assert _arr(trace["y"]) == pytest.approx(list(large["goodput_per_s"]))
    assert fig["layout"]["xaxis"]["title"]["text"] == dl.LOAD_AXES["requests_per_s"]


def test_no_sweep_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.config import parse_suite
    from bench.runner import NullDisplay, execute, plan_run

    for root in (tmp_path / "empty", tmp_path / "runs-only"):
        root.mkdir()
        if root.name == "runs-only":  # a store with an ordinary run and no sweep
            data = tmp_path / "mcq.jsonl"
            rows = [{"id": f"q{i}-gold:0", "q": "?", "opts": ["a", "b"], "label": 0} for i in range(4)]
            data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
            fields = {"id": "id", "question": "q", "choices": "opts", "answer": "label"}
            suite = {
                "name": "plain",
                "models": [{"name": "f", "backend": "fake"}],
                "tasks": [{"name": "t", "kind": "mcq", "dataset": {"path": str(data)}, "fields": fields}],
            }
            execute(plan_run(parse_suite(suite), root), NullDisplay(), executor="inline")
        at = _load_page(root, monkeypatch)
        assert [i.value for i in at.info] == [
            f"No load sweeps under `{root}` yet: `bench load SUITE -o {root}` runs one."
        ]
        assert not at.get("plotly_chart") and not at.dataframe


# ---------------------------------------------------------------------- the data layer, hand-made rows


def _levels(rows: list[tuple[str, str, str, float | None, float, bool | None]]) -> pd.DataFrame:
    """(model, level, kind, value, goodput, slo_met) rows with the columns the data layer reads."""
    out = []
    for model, level, kind, value, goodput, met in rows:
        out.append(
            {
                "model": model, "level": level, "level_kind": kind, "level_value": value,
                "goodput_per_s": goodput, "slo_met": met, "slo_share": 0.5,
                "requests_per_s": goodput + 1, "achieved_concurrency": 1.0,
            }
        )  # fmt: skip
    return pd.DataFrame(out)


SWEEP = [
    ("a", "c8", "concurrency", 8.0, 1.0, False),
    ("a", "sync", "synchronous", None, 5.0, True),
    ("a", "c2", "concurrency", 2.0, 6.0, True),
    ("a", "r4", "rate", 4.0, 3.0, False),
    ("a", "r1", "rate", 1.0, 1.0, True),
    ("a", "max", "max", None, 0.5, False),
    ("b", "c8", "concurrency", 8.0, 9.0, True),
    ("b", "sync", "synchronous", None, 2.0, True),
    ("b", "c2", "concurrency", 2.0, 6.0, True),  # a tie: neither ranks first at c2
    ("b", "r4", "rate", 4.0, 3.5, True),
    ("b", "r1", "rate", 1.0, 0.9, True),
    ("b", "max", "max", None, 9.5, True),
]


def test_levels_are_ordered_by_offered_load_per_family() -> None:
    assert dl.families(_levels(SWEEP)) == {
        "concurrency": ["sync", "c2", "c8", "max"],
        "rate": ["sync", "r1", "r4", "max"],
    }
    only_sync = _levels([("a", "sync", "synchronous", None, 1.0, True)])
    assert dl.families(only_sync) == {"concurrency": ["sync"]}


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (SWEEP, {("a", "concurrency"): ("leaves", "c8", "c2"), ("a", "rate"): ("leaves", "r4", "r1")}),
        (
            [("a", "sync", "synchronous", None, 1.0, False), ("a", "c2", "concurrency", 2.0, 1.0, True)],
            {("a", "concurrency"): ("missed from the start", "sync", None)},
        ),
        (
            [("a", "sync", "synchronous", None, 1.0, True), ("a", "c2", "concurrency", 2.0, 1.0, True)],
            {("a", "concurrency"): ("met throughout", None, None)},
        ),
        (
            [("a", "sync", "synchronous", None, math.nan, None)],
            {("a", "concurrency"): ("no SLO", None, None)},
        ),
    ],
)
def test_slo_exits(
    rows: list[Any], expected: dict[tuple[str, str], tuple[str, str | None, str | None]]
) -> None:
    found = {(e.model, e.family): (e.status, e.exit_level, e.last_met) for e in dl.slo_exits(_levels(rows))}
    assert {k: found[k] for k in expected} == expected
    assert all(found[("b", f)][0] == "met throughout" for f in ("concurrency", "rate") if ("b", f) in found)


def test_crossovers_skip_ties_and_name_the_levels() -> None:
    found = dl.crossovers(_levels(SWEEP), "a", "b")
    # concurrency: a leads at sync (5 vs 2), c2 ties, b leads at c8 (9 vs 1) and max;
    # rate: a leads at sync and r1 (1.0 vs 0.9), b at r4 (3.5 vs 3.0) and max
    assert [(c.family, c.below, c.at, c.leader_before, c.leader_after) for c in found] == [
        ("concurrency", "sync", "c8", "a", "b"),
        ("rate", "r1", "r4", "a", "b"),
    ]
    assert found[0].goodput_before == (5.0, 2.0) and found[0].goodput_after == (9.0, 1.0)
    words = dl.crossover_words(_levels(SWEEP), "a", "b", {"a": 1.35e8})
    assert words.startswith(
        "By concurrency, **a** (135M, SLM) has the higher goodput up to sync (5.00 vs 2.00"
    )
    flat = [r for r in SWEEP if r[0] == "b" or r[1] == "sync"]
    none = dl.crossover_words(_levels(flat), "a", "b")
    assert none == "No crossover: **a** has the higher goodput at every level both ran."


def test_a_one_model_rate_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Open-loop levels and `max`: plotted against the achieved request rate, no crossover section."""
    from bench.config import parse_suite
    from bench.load.sweep import run_sweep
    from tests.load_sweeps import sweep_suite, zero_server

    root = tmp_path / "results"
    load = {"rates": [20.0, 5.0], "max": True, "requests": 6, "slo": {"ttft_s": 0.05}, "timeout_s": 10}
    with zero_server(0.01, 0.005) as url:
        suite = sweep_suite(
            "rates", qa_items(tmp_path / "items.jsonl", n=6), [{"name": "m", "base_url": url}], load
        )
        assert not run_sweep(parse_suite(suite), root).errors
    at = _load_page(root, monkeypatch)
    assert at.radio(key="ld_axis").value == "requests_per_s"
    assert [h.value for h in at.subheader] == ["Where each model leaves its SLO", "Per level"]
    (frame,) = at.dataframe
    assert list(frame.value["level"]) == ["sync", "r20", "r5", "max"]  # sweep order
    stored = _stored(root).set_index("level")
    fig = _figure(at, "load_goodput")
    trace = next(t for t in fig["data"] if t["name"] == "m goodput")
    by_rate = stored.sort_values("requests_per_s")
    assert _arr(trace["x"]) == pytest.approx(list(by_rate["requests_per_s"]))
    met = [lv for lv in ["sync", "r5", "r20", "max"] if not stored.loc[lv, "slo_met"]]
    words = _text(at)
    if met:  # offered-load order: sync, r5, r20, max
        assert f"**m** leaves its SLO at {met[0]}: " in words or "misses its SLO already" in words
    else:
        assert "**m** meets its SLO at every level (by request rate)." in words
