"""Per-task figures that must describe that task alone: its memory peak (not the worker's lifetime
high-water mark) and the share of its outputs cut by max_tokens (shown and warned about)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from bench import store
from bench.config import parse_suite
from bench.display import print_leaderboard
from bench.runner import NullDisplay, execute, plan_run
from tests.conftest import fake_suite

MCQ_FIELDS = {"id": "id", "question": "q", "choices": "opts", "answer": "label"}


def _runs(root: Path) -> pd.DataFrame:
    return store.runs_dataset(root).to_table().to_pandas()


def _run(suite: dict[str, Any], root: Path, executor: str) -> str:
    plan = plan_run(parse_suite(suite), root)
    result = execute(plan, NullDisplay(), executor=executor)  # type: ignore[arg-type]
    assert not result.model_errors, result.model_errors
    return plan.run_id


def _board(root: Path, run_id: str, width: int = 200) -> str:
    buf = io.StringIO()
    print_leaderboard(Console(file=buf, width=width, no_color=True), root, run_id, "dir", None)
    return buf.getvalue()


@pytest.mark.parametrize("executor", ["process", "inline"])
def test_a_light_task_after_a_heavy_one_reports_its_own_peak(
    tmp_path: Path, mcq_jsonl: Path, executor: str
) -> None:
    """The fake holds 400 MB while it scores a perplexity text and nothing for a multiple-choice
    item; both tasks run in one worker, the heavy one first."""
    suite = fake_suite(
        mcq_jsonl,
        models=[{"name": "m", "backend": "fake", "accuracy": 1.0, "hold_mb": {"rolling": 400}}],
        limit=3,
    )
    heavy = {"name": "heavy", "kind": "perplexity", "dataset": "squad", "limit": 3}
    suite["tasks"] = [heavy, *suite["tasks"]]  # type: ignore[misc]
    run_id = _run(suite, tmp_path, executor)
    r = _runs(tmp_path).drop_duplicates("task").set_index("task")
    heavy_mb, light_mb = r.loc["heavy", "peak_rss_mb"], r.loc["custom", "peak_rss_mb"]
    assert heavy_mb - light_mb > 300, (heavy_mb, light_mb)
    # the lifetime peak is kept, named as such: the light task's worker had already been that big
    assert (r["process_peak_rss_mb"] >= heavy_mb * 0.97).all(), r[["peak_rss_mb", "process_peak_rss_mb"]]
    assert light_mb <= r.loc["custom", "process_peak_rss_mb"] - 300
    # the efficiency table shows the model's largest task peak
    assert f"{heavy_mb:.0f}" in _board(tmp_path, run_id)


def test_runs_files_written_before_the_new_columns_still_read(tmp_path: Path, mcq_jsonl: Path) -> None:
    _run(fake_suite(mcq_jsonl, limit=2), tmp_path, "inline")
    f = next(tmp_path.rglob("runs-perfect-*.parquet"))
    new = ["process_peak_rss_mb", "n_truncated", "truncated_share", "max_tokens"]
    pq.write_table(pq.read_table(f).drop(new), f)  # as a runs file of an older bench
    r = _runs(tmp_path).set_index("model")
    assert r.loc["perfect", new].isna().all().all() and r.loc["perfect", "peak_rss_mb"].notna().all()
    assert r.loc["coin", "process_peak_rss_mb"].notna().all()


def _gen_suite(mcq_jsonl: Path, max_tokens: int) -> dict[str, Any]:
    suite = fake_suite(mcq_jsonl, models=[{"name": "fk", "backend": "fake"}], limit=5)
    suite["tasks"] = [  # type: ignore[assignment]
        {"name": "gsm", "kind": "math", "dataset": "gsm8k", "max_tokens": max_tokens, "chat": "never"},
        {"name": "mc", "kind": "mcq", "dataset": {"path": str(mcq_jsonl)}, "fields": MCQ_FIELDS},
    ]
    return suite


def test_outputs_cut_at_max_tokens_are_stored_shown_and_warned_about(tmp_path: Path, mcq_jsonl: Path) -> None:
    """The fake's answer is three tokens: max_tokens 2 cuts every one, 8 lets every one finish."""
    cut_id = _run(_gen_suite(mcq_jsonl, 2), tmp_path / "cut", "inline")
    s = store.samples_dataset(tmp_path / "cut").to_table().to_pandas()
    gen, mc = s[s.task == "gsm"], s[s.task == "mc"]
    assert (gen["finish_reason"] == "length").all() and (gen["max_tokens"] == 2).all() and len(gen) == 5
    assert mc["finish_reason"].isna().all() and mc["max_tokens"].isna().all()  # log-likelihood items
    r = _runs(tmp_path / "cut").drop_duplicates("task").set_index("task")
    assert (r.loc["gsm", "n_truncated"], r.loc["gsm", "truncated_share"], r.loc["gsm", "max_tokens"]) == (
        5,
        1.0,
        2,
    )
    assert pd.isna(r.loc["mc", "truncated_share"]) and pd.isna(r.loc["mc", "n_truncated"])
    wide = _board(tmp_path / "cut", cut_id)
    assert "cut 100%" in wide and wide.count("cut ") == 1  # beside the generative accuracy only
    assert "warning gsm: fk: 5/5 outputs stopped at max_tokens=2; raise max_tokens" in wide
    narrow = _board(tmp_path / "cut", cut_id, width=90)  # one line per (model, task)
    assert "exact_match_strict │ 0.000 cut 100%" in narrow and narrow.count("cut ") == 1

    ok_id = _run(_gen_suite(mcq_jsonl, 8), tmp_path / "ok", "inline")
    s = store.samples_dataset(tmp_path / "ok").to_table().to_pandas()
    assert (s[s.task == "gsm"]["finish_reason"] == "stop").all()
    r = _runs(tmp_path / "ok").drop_duplicates("task").set_index("task")
    assert (r.loc["gsm", "n_truncated"], r.loc["gsm", "truncated_share"]) == (0, 0.0)
    board = _board(tmp_path / "ok", ok_id)
    assert "cut 0%" in board and "warning" not in board
