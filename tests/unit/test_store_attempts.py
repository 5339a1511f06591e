"""Retried items: a resume re-runs the items stored with an error, and every reader sees one row
per (run, model, task, item), its latest attempt, with the attempt count kept. Files written
before the `attempt` column existed still read (as attempt 1)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console

from bench import dashboard_data as dd
from bench import store
from bench.config import parse_suite
from bench.coverage import coverage
from bench.display import print_leaderboard
from bench.runner import NullDisplay, RunPlan, execute, plan_run
from tests.conftest import fake_suite

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BASE = {"run_id": "r1", "model": "m", "task": "t"}


def _row(item: str, attempt: int | None, error: str | None, at: int, score: float = 1.0) -> dict[str, Any]:
    return {**BASE, "item_id": item, "attempt": attempt, "error": error, "score": score,
            "started_at": T0 + timedelta(seconds=at)}  # fmt: skip


def _opt(x: Any) -> Any:
    """A cell as Python: None for a missing value (pandas writes it as None or NaN)."""
    return None if pd.isna(x) else int(x) if isinstance(x, float) else x


def _raw(directory: Path) -> pd.DataFrame:
    """What pandas sees reading the files directly, bypassing bench's reader."""
    files = sorted(directory.glob("samples-*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def test_the_latest_attempt_wins_in_every_reader_and_old_files_read_as_attempt_1(tmp_path: Path) -> None:
    d = tmp_path / "s" / "2026-12-01" / "r1"
    d.mkdir(parents=True)
    (d / "run.json").write_text('{"run_id": "r1", "suite": "s"}')
    # a part from before the attempt column: its schema lacks it
    old = store.rows_to_table(
        [_row("a", None, "HTTP 500", 0, 0.0), _row("b", None, None, 0)], store.SAMPLES_SCHEMA
    )
    pq.write_table(old.drop_columns(["attempt"]), d / "samples-m-t-000000-old.parquet")
    w = store.RunWriter(d, "m", "t")
    assert w.attempts() == {"a": (1, False), "b": (1, True)}
    assert w.done_items() == {"b"}  # the failed item is not done: a resume re-runs it
    w.append([_row("a", 2, None, 10, 1.0), _row("c", 1, "timeout", 10, 0.0)])
    w.append([_row("c", 2, "timeout", 20, 0.0)])

    want = {"a": (2, None, 1.0), "b": (None, None, 1.0), "c": (2, "timeout", 0.0)}
    views = {
        "writer": w.read_samples().to_pandas(),
        "store": store.samples_dataset(tmp_path).to_table().to_pandas(),
        "filtered": store.samples_dataset(tmp_path, ["r1"])
        .to_table(columns=["item_id", "attempt", "error", "score"], filter=pa.dataset.field("model") == "m")
        .to_pandas(),
    }
    runs = pd.DataFrame({"run_id": ["r1"], "_dir": ["s/2026-12-01/r1"]})
    views["dashboard"] = dd.read_samples(tmp_path, runs, ["r1"], ["item_id", "attempt", "error", "score"])
    for name, df in views.items():
        got = {r.item_id: (_opt(r.attempt), _opt(r.error), r.score) for r in df.itertuples()}
        assert got == want, name
    assert w.attempts() == {"a": (2, True), "b": (1, True), "c": (2, False)}
    assert len(_raw(d)) == 5  # every attempt is still in the files until they are compacted

    assert w.drop_superseded() == 2
    raw = _raw(d)
    assert sorted(raw["item_id"]) == ["a", "b", "c"]  # the files alone now hold one row per item
    assert set(zip(raw.item_id, raw.attempt.fillna(1), strict=True)) == {("a", 2), ("b", 1), ("c", 2)}
    assert len(w.sample_files()) == 3  # a part left empty stays, as an empty file
    assert w.drop_superseded() == 0


def _resume(plan: RunPlan, suite: dict[str, Any]) -> RunPlan:
    """The same run resumed after the failure went away. The fake's failures are part of its spec
    (and so of the suite hash), so the plan is built here rather than found by `plan_run`."""
    return RunPlan(parse_suite(suite), plan.root, plan.run_id, plan.dir, True, plan.manifest)


def test_resume_reruns_failed_items_and_recomputes_the_summary(tmp_path: Path, mcq_jsonl: Path) -> None:
    flaky = [f"q{i:02d}-gold:{i % 3}" for i in (0, 4, 5, 17)]

    def suite(failing: list[str]) -> dict[str, Any]:
        return fake_suite(
            mcq_jsonl, models=[{"name": "m", "backend": "fake", "accuracy": 1.0, "fail_items": failing}]
        )

    def primary(source: list[Path]) -> tuple[int, int, float]:
        r = pd.concat([pd.read_parquet(f) for f in source]).query("primary")
        return r["n"].item(), r["n_errors"].item(), r["value"].item()

    plan = plan_run(parse_suite(suite(flaky)), tmp_path)
    execute(plan, NullDisplay(), executor="inline")
    assert primary(sorted(plan.dir.glob("runs-*.parquet"))) == (23, 4, 1.0)

    # resumed while one item still fails: that one stays an error, with its attempt counted
    shown = NullDisplay()
    execute(_resume(plan, suite(flaky[:1])), shown, executor="inline")
    start = next(e for e in shown.events if e["type"] == "task_start")
    assert (start["done"], start["retry"]) == (19, 4)
    s = store.samples_dataset(tmp_path).to_table().to_pandas().set_index("item_id")
    assert s.loc[flaky[0], "attempt"] == 2 and s.loc[flaky[0], "error"] == "fake failure"
    assert primary(sorted(plan.dir.glob("runs-*.parquet"))) == (23, 1, 1.0)

    # resumed once the failure is gone: no holes, one row per item, every attempt counted
    execute(_resume(plan, suite([])), NullDisplay(), executor="inline")
    s = store.samples_dataset(tmp_path).to_table().to_pandas()
    assert len(s) == 23 and s["item_id"].is_unique and s["error"].isna().all()
    tries = {i: 3 if i == flaky[0] else 2 if i in flaky else 1 for i in s.item_id}
    assert dict(zip(s.item_id, s.attempt, strict=True)) == tries
    assert len(_raw(plan.dir)) == 23  # the files themselves: the failed attempts were dropped
    for source in (sorted(plan.dir.glob("runs-*.parquet")), [plan.dir / store.SUMMARY_FILE]):
        assert primary(source) == (23, 0, 1.0), source


def test_leaderboard_shows_coverage_and_flags_low_coverage(tmp_path: Path, mcq_jsonl: Path) -> None:
    failing = [f"q{i:02d}-gold:{i % 3}" for i in range(20)]  # 20 of 23 fail: 3/23 answered
    models = [
        {"name": "good", "backend": "fake", "accuracy": 1.0},
        {"name": "flaky", "backend": "fake", "accuracy": 1.0, "fail_items": failing},
    ]
    plan = plan_run(parse_suite(fake_suite(mcq_jsonl, models=models)), tmp_path)
    execute(plan, NullDisplay(), executor="inline")
    for width in (200, 60):  # the grid and the one-line-per-task layout
        out = io.StringIO()
        print_leaderboard(Console(file=out, width=width), tmp_path, plan.run_id, str(plan.dir), None)
        text = out.getvalue()
        assert "23/23" in text and "23/23!" not in text, text
        assert "3/23!" in text, text


def test_coverage_counts() -> None:
    assert str(coverage(8, 6)) == "2/8" and coverage(8, 6).low
    assert str(coverage(10, 1)) == "9/10" and not coverage(10, 1).low
    assert str(coverage(float("nan"), None)) == "0/0" and coverage(0, 0).low
