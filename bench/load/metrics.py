"""Per-level figures from the stored request rows: achieved load, latency percentiles, goodput,
accuracy with its interval, cost, and whether accuracy moved with load.

Definitions (the ones `vllm bench serve` uses, so the two can be compared):
- duration: first request sent to last request ended; req/s and tok/s are completed requests and
  their output tokens over it; achieved concurrency is the mean number in flight (sum of e2e / duration).
- TTFT: sent to first content piece; e2e: sent to last piece; TPOT: (e2e - TTFT) / (tokens - 1);
  ITL: every gap between content pieces, pooled over the level's requests.
- goodput: requests/s that succeeded and met every target the SLO names (TPOT against itl_s);
  a level meets the SLO when that share of all its requests is at least `attainment`.
- accuracy: the task's primary metric over the answered requests, with bench.analysis's interval;
  cost: the level's wall time at the machine's $/hour plus token prices (bench.analysis.cost).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bench.analysis import adjust_pvalues, cost_usd, metric_interval, paired, per_1k_items, per_correct
from bench.metrics.stats import percentiles
from bench.specs.load import SLO

QS = (50, 90, 95, 99)
LATENCIES = ("ttft", "itl", "tpot", "e2e")


def slo_mask(rows: pd.DataFrame, slo: SLO) -> pd.Series:
    """Which requests succeeded and met every named target."""
    ok = rows["error"].isna()
    for name, limit in slo.named().items():
        col = {"ttft_s": "ttft_s", "itl_s": "tpot_s", "e2e_s": "e2e_s"}[name]
        # a one-token answer has no TPOT: it cannot miss an inter-token target
        vals = rows[col].astype(float)
        ok &= (vals <= limit) | (vals.isna() & (col == "tpot_s"))
    return ok


def level_summary(
    rows: pd.DataFrame,
    *,
    slo: SLO,
    usd_per_hour: float = 0.0,
    price: tuple[float, float] | None = None,
    seed: int = 1234,
) -> dict[str, Any]:
    """One level's figures from its request rows (columns of bench.load.records.REQUESTS_SCHEMA)."""
    n = len(rows)
    ok = rows["error"].isna() if n else pd.Series([], dtype=bool)
    done = rows[ok]
    duration = float(rows["end_s"].max() - rows["start_s"].min()) if n else math.nan
    per_s = (lambda x: x / duration) if duration and duration > 0 else (lambda x: math.nan)
    out: dict[str, Any] = {
        "n_requests": n,
        "n_errors": int((~ok).sum()),
        "n_timeouts": int(rows["timed_out"].fillna(False).astype(bool).sum()) if n else 0,
        "duration_s": duration,
        "requests_per_s": per_s(len(done)),
        "output_tokens_per_s": per_s(float(done["output_tokens"].fillna(0).sum())),
        "achieved_concurrency": per_s(float((rows["end_s"] - rows["start_s"]).sum())),
        "error_rate": (1 - len(done) / n) if n else math.nan,
        "timeout_rate": (rows["timed_out"].fillna(False).astype(bool).mean()) if n else math.nan,
        "schedule_lag_p99_s": percentiles(rows["start_s"] - rows["scheduled_s"], (99,))["p99"],
    }
    pooled_itl = np.concatenate(
        [np.asarray(x, dtype=np.float64) for x in done["itl_s"] if x is not None] or [np.zeros(0)]
    )
    series = {"ttft": done["ttft_s"], "tpot": done["tpot_s"], "e2e": done["e2e_s"], "itl": pooled_itl}
    for name in LATENCIES:
        vals = np.asarray(series[name], dtype=np.float64)
        for k, v in percentiles(vals, QS).items():
            out[f"{name}_{k}"] = v
        out[f"{name}_mean"] = float(np.nanmean(vals)) if np.isfinite(vals).any() else math.nan
    named = slo.named()
    good = int(slo_mask(rows, slo).sum()) if n else 0
    out["slo"] = ",".join(f"{k}<={v:g}" for k, v in named.items()) or None
    out["goodput_per_s"] = per_s(good) if named else math.nan
    out["slo_share"] = good / n if named and n else math.nan
    out["slo_met"] = bool(good / n >= slo.attainment) if named and n else None
    scores = done["score"].dropna().to_numpy(dtype=np.float64)
    if scores.size:
        iv = metric_interval(scores, seed=seed)
        out.update(accuracy=iv.mean, accuracy_low=iv.ci_low, accuracy_high=iv.ci_high, ci_method=iv.method)
    else:
        out.update(accuracy=math.nan, accuracy_low=math.nan, accuracy_high=math.nan, ci_method=None)
    out["n_scored"] = int(scores.size)
    cost = float(
        cost_usd(
            duration if n else 0.0,
            usd_per_hour,
            float(done["input_tokens"].fillna(0).sum()),
            float(done["output_tokens"].fillna(0).sum()),
            price,
        )
    )
    correct = float(scores.sum()) if scores.size else math.nan
    out.update(
        usd_per_hour=usd_per_hour,
        cost_usd=cost,
        usd_per_1k_requests=per_1k_items(cost, n),
        usd_per_correct=per_correct(cost, correct),
    )
    return out


def first_scores(rows: pd.DataFrame) -> pd.Series:
    """Each item's score at a level: its first answered request (requests cycle through items)."""
    scored = rows[rows["error"].isna() & rows["score"].notna()].sort_values("seq")
    return scored.drop_duplicates("item_id").set_index("item_id")["score"].astype(float)


def accuracy_vs_baseline(
    levels: Sequence[str], rows: pd.DataFrame, *, alpha: float = 0.05, seed: int = 1234
) -> dict[str, dict[str, Any]]:
    """Each level against the first one on the items both answered: the paired test of
    bench.analysis (McNemar's exact test for 0/1 scores), Benjamini-Hochberg over the levels.
    `changed` is True when accuracy moved beyond noise; batching can change greedy outputs."""
    if not levels:
        return {}
    base = first_scores(rows[rows["level"] == levels[0]])
    found: dict[str, dict[str, Any]] = {}
    for lv in levels[1:]:
        here = first_scores(rows[rows["level"] == lv])
        shared = base.index.intersection(here.index)
        if len(shared) == 0:
            found[lv] = {"vs_level": levels[0], "diff": math.nan, "p_value": math.nan, "n_paired": 0}
            continue
        r = paired(here[shared].to_numpy(), base[shared].to_numpy(), seed=seed)
        found[lv] = {"vs_level": levels[0], "diff": r.diff, "p_value": r.p_value, "n_paired": len(shared)}
    adj = adjust_pvalues([v["p_value"] for v in found.values()])
    for v, p in zip(found.values(), adj, strict=True):
        v["p_adjusted"] = float(p)
        v["accuracy_changed"] = bool(p < alpha)
    return found
