"""Per-level figures from hand-made request rows, checked against independent recomputations:
achieved rate and concurrency, percentiles, goodput under an SLO, errors, cost, accuracy with
its interval, and the accuracy-changes-with-load test."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from bench.analysis import wilson
from bench.load.metrics import accuracy_vs_baseline, level_summary, slo_mask
from bench.load.records import REQUESTS_SCHEMA
from bench.specs.load import SLO


def _row(seq: int, start: float, ttft: float | None, e2e: float, tokens: int, **kw: Any) -> dict[str, Any]:
    gaps = [(e2e - ttft) / (tokens - 1)] * (tokens - 1) if ttft is not None and tokens > 1 else None
    r = {
        "level": "sync",
        "seq": seq,
        "item_id": f"i{seq}",
        "scheduled_s": start,
        "start_s": start,
        "first_token_s": None if ttft is None else start + ttft,
        "end_s": start + e2e,
        "ttft_s": ttft,
        "e2e_s": e2e,
        "tpot_s": (e2e - ttft) / (tokens - 1) if gaps else None,
        "itl_s": gaps,
        "input_tokens": 10,
        "output_tokens": tokens,
        "error": None,
        "timed_out": False,
        "score": 1.0,
    }
    r.update(kw)
    return r


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=REQUESTS_SCHEMA.names)


def test_a_level_of_ten_requests() -> None:
    # two at a time, each 1 s long (TTFT 0.2 s, 9 tokens): 10 requests over 5 s
    rows = [_row(k, start=(k // 2) * 1.0, ttft=0.2 + 0.01 * k, e2e=1.0, tokens=9) for k in range(10)]
    rows[9].update(error="HTTP 500", score=None, output_tokens=None, ttft_s=None, itl_s=None, tpot_s=None)
    rows[8].update(score=0.0)
    f = level_summary(_frame(rows), slo=SLO(ttft_s=0.25, e2e_s=2.0), usd_per_hour=3.6)
    assert f["duration_s"] == pytest.approx(5.0)
    assert f["requests_per_s"] == pytest.approx(9 / 5)
    assert f["achieved_concurrency"] == pytest.approx(2.0)  # Little's law: 10 s of requests in 5 s
    assert f["output_tokens_per_s"] == pytest.approx(9 * 9 / 5)
    assert f["error_rate"] == pytest.approx(0.1) and f["n_errors"] == 1 and f["n_timeouts"] == 0
    ttfts = [0.2 + 0.01 * k for k in range(9)]
    assert f["ttft_p50"] == pytest.approx(np.percentile(ttfts, 50))
    assert f["ttft_p99"] == pytest.approx(np.percentile(ttfts, 99))
    assert f["itl_p50"] == pytest.approx(np.median([(1.0 - t) / 8 for t in ttfts]))
    assert f["e2e_p90"] == pytest.approx(1.0)
    # TTFT <= 0.25: requests 0..5 (0.20 .. 0.25), the failed one never counts
    assert f["goodput_per_s"] == pytest.approx(6 / 5) and f["slo_share"] == pytest.approx(0.6)
    assert f["slo_met"] is False  # 60% < the default 90% attainment
    assert f["accuracy"] == pytest.approx(8 / 9) and f["n_scored"] == 9
    assert (f["accuracy_low"], f["accuracy_high"]) == pytest.approx(wilson(8, 9))
    assert f["cost_usd"] == pytest.approx(5.0 * 3.6 / 3600)
    assert f["usd_per_1k_requests"] == pytest.approx(f["cost_usd"] / 10 * 1000)
    assert f["usd_per_correct"] == pytest.approx(f["cost_usd"] / 8)


def test_no_slo_named_means_no_goodput() -> None:
    f = level_summary(_frame([_row(0, 0.0, 0.1, 0.5, 3)]), slo=SLO())
    assert math.isnan(f["goodput_per_s"]) and f["slo_met"] is None and f["slo"] is None


def test_slo_mask_applies_itl_to_tpot_and_lets_one_token_answers_pass() -> None:
    rows = _frame(
        [
            _row(0, 0.0, 0.1, 1.0, 10),  # TPOT 0.1 s: misses itl 0.05
            _row(1, 0.0, 0.1, 0.2, 3),  # TPOT 0.05: meets it
            _row(2, 0.0, 0.1, 0.1, 1),  # one token: no TPOT, cannot miss it
            _row(3, 0.0, 0.1, 0.2, 3, error="timed out", timed_out=True),
        ]
    )
    assert slo_mask(rows, SLO(itl_s=0.05)).tolist() == [False, True, True, False]
    f = level_summary(rows, slo=SLO(itl_s=0.05))
    assert f["n_timeouts"] == 1 and f["timeout_rate"] == pytest.approx(0.25)


def test_accuracy_moving_with_load_is_flagged_only_beyond_noise() -> None:
    n = 30
    base = [_row(k, k, 0.1, 0.5, 3, level="sync") for k in range(n)]
    same = [_row(k, k, 0.1, 0.5, 3, level="c4") for k in range(n)]
    one_flip = [_row(k, k, 0.1, 0.5, 3, level="c8", score=0.0 if k == 0 else 1.0) for k in range(n)]
    broken = [_row(k, k, 0.1, 0.5, 3, level="max", score=0.0 if k < 15 else 1.0) for k in range(n)]
    rows = _frame(base + same + one_flip + broken)
    got = accuracy_vs_baseline(["sync", "c4", "c8", "max"], rows)
    assert got["c4"]["diff"] == 0 and not got["c4"]["accuracy_changed"]
    assert got["c8"]["diff"] == pytest.approx(-1 / n) and not got["c8"]["accuracy_changed"]
    assert got["max"]["diff"] == pytest.approx(-0.5) and got["max"]["accuracy_changed"]
    assert got["max"]["p_value"] == pytest.approx(binomtest(0, 15, 0.5).pvalue)  # McNemar exact
    assert got["max"]["p_adjusted"] >= got["max"]["p_value"] and got["max"]["n_paired"] == n


def test_items_asked_twice_are_paired_by_their_first_answer() -> None:
    a = [_row(k, k, 0.1, 0.5, 3, level="sync", item_id=f"i{k % 2}", score=float(k < 2)) for k in range(4)]
    b = [_row(k, k, 0.1, 0.5, 3, level="c2", item_id=f"i{k % 2}", score=1.0) for k in range(4)]
    got = accuracy_vs_baseline(["sync", "c2"], _frame(a + b))
    assert got["c2"]["n_paired"] == 2 and got["c2"]["diff"] == 0


def test_the_sweep_table_shows_every_level_and_flags_a_change() -> None:
    from rich.console import Console

    from bench.load.table import print_sweep

    rows = [_row(k, k, 0.1, 0.5, 3) for k in range(4)]
    f = level_summary(_frame(rows), slo=SLO(ttft_s=1.0))
    common = {"model": "m", "task": "t", "metric": "acc", "backend": "openai", "note": None}
    levels = pd.DataFrame(
        [
            {**f, **common, "level": "sync"},
            {**f, **common, "level": "c4", "accuracy_changed": True, "vs_level": "sync", "p_adjusted": 0.01},
        ]
    )
    out = io.StringIO()
    print_sweep(Console(file=out, width=250), levels)
    text = out.getvalue()
    assert "sync" in text and "c4" in text and "CHANGED vs sync (p_adj=0.01)" in text
    assert "met 100%" in text and "1.000 [0.51, 1.00] n=4" in text
