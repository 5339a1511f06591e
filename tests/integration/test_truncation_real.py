"""Outputs cut by max_tokens, end to end on the real SmolLM2 model and real GSM8K items: llama.cpp's
finish reason is stored per item, its share is shown beside the accuracy, and the run warns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench import store

SUITE = """
name: truncation
defaults: {seed: 2, batch_size: 2}
models:
  - {name: smollm2-135m, n_ctx: 2048}
tasks:
  - {name: gsm_cut, kind: math, dataset: gsm8k, max_tokens: 4, chat: never, limit: 3}
  - {name: gsm, kind: math, dataset: gsm8k, chat: never, limit: 2}
"""


def test_a_tiny_max_tokens_is_stored_shown_and_warned_about(tmp_path: Path, smollm2_path: str) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    out = tmp_path / "results"
    p = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", str(suite), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    s = store.samples_dataset(out).to_table().to_pandas()
    assert s["error"].isna().all(), s["error"].dropna().tolist()
    cut, free = s[s.task == "gsm_cut"], s[s.task == "gsm"]
    assert len(cut) == 3 and (cut["finish_reason"] == "length").all() and (cut["output_tokens"] == 4).all()
    # the model finishes each worked answer by itself (a stop sequence), well inside 256 tokens
    assert (free["finish_reason"] == "stop").all() and (free["output_tokens"] < 256).all(), free
    assert (free["max_tokens"] == 256).all() and (cut["max_tokens"] == 4).all()

    r = store.runs_dataset(out).to_table().to_pandas()
    r = r[r.primary.astype(bool)].set_index("task")
    assert (r.loc["gsm_cut", "n_truncated"], r.loc["gsm_cut", "truncated_share"]) == (3, 1.0)
    assert (r.loc["gsm", "n_truncated"], r.loc["gsm", "truncated_share"]) == (0, 0.0)
    assert (r.loc["gsm_cut", "max_tokens"], r.loc["gsm", "max_tokens"]) == (4, 256)

    board = p.stdout
    assert "cut 100%" in board and "cut 0%" in board, board
    assert "gsm_cut: smollm2-135m: 3/3 outputs stopped at max_tokens=4; raise max_tokens" in board
    assert "gsm: smollm2-135m" not in board  # nothing to warn about
    # `bench report` of the stored run shows the same
    rep = subprocess.run(
        [sys.executable, "-m", "bench.cli", "report", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rep.returncode == 0 and "cut 100%" in rep.stdout and "3/3 outputs stopped" in rep.stdout
    # the task's progress line names it too
    assert "gsm_cut: exact_match_strict" in p.stderr and "cut 100%" in p.stderr
